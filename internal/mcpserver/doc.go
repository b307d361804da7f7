// Package mcpserver is agentfed's Model Context Protocol front door: an MCP
// server (github.com/modelcontextprotocol/go-sdk) with one tool,
// agent_federation, whose input schema is exactly the tool's JSON Schema,
// and read-only resources for the peers and the durable outbox.
//
// It holds no action logic. Every call goes to a Backend: the local Node
// when the gateway serves MCP over streamable HTTP at /mcp, or an operator
// connection to the gateway when `agentfed mcp` serves it on stdio. A
// successful action is returned as structured content plus a short text
// rendering; an action that fails, or a single delivery whose status is
// not ok, is a tool result with isError set, carrying the stable error code
// and message.
//
// The servers New returns are safe for concurrent use by many sessions.
package mcpserver
