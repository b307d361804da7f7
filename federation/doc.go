// Package federation is agentfed's public Go API: a Node is one member of an
// agent federation. It hosts local agents (Handlers), listens for peer
// gateways and operators over the gateway protocol (package gateway), and
// carries the agent_federation tool's eight actions to its peers: Send,
// Delegate, Broadcast, ListPeers, RegisterPeer, UnregisterPeer, SyncContext
// and QueryCapabilities. Tool runs the same actions from their JSON form,
// and ToolSchema describes that form for an LLM host. The node's listener
// serves the same Tool to MCP hosts at MCPPath (streamable HTTP, operator
// token), and ToolFor gives a Handler the Tool to use while it handles a
// message: on behalf of the message's sender, never beyond that sender's
// grant (allowActions), and within federation.maxHops (Message.Hops).
//
// Config is the whole configuration file; its federation section is the
// seed's. Load one with internal/config (or build it in Go), then call
// ApplyDefaults and pass it to New.
//
// Guarantees: an action that cannot be attempted (unknown or disabled peer,
// bad parameters) returns an error carrying a stable code (see
// gateway.CodeOf); an attempt that fails is a Result with status "error" or
// "timeout". Every delivery is bounded by the call's, the peer's or the
// default timeout, and the remote gateway is told that deadline. One
// connection per peer is dialled on first use and reused.
//
// A Node's methods are safe for concurrent use. Shutdown drains requests in
// flight and returns when every goroutine the node started has finished.
package federation
