package mcpserver

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/agentfed/agentfed/gateway"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Backend runs what the MCP server is asked for. Errors should carry a
// stable code (see gateway.CodeOf); others are reported as INTERNAL.
type Backend interface {
	// CallTool runs one agent_federation action object and returns its
	// JSON result.
	CallTool(ctx context.Context, input json.RawMessage) (json.RawMessage, error)
	// ListOutbox returns the durable outbox listing (federation.outbox
	// list) as JSON.
	ListOutbox(ctx context.Context) (json.RawMessage, error)
}

// Tool describes the one tool the server offers.
type Tool struct {
	Name        string          // agent_federation
	Description string          // for the model
	InputSchema json.RawMessage // the tool's JSON Schema, served unchanged
}

// Options configure New.
type Options struct {
	// Name and Version identify the server in the MCP handshake.
	Name, Version string
	Tool          Tool
	// Logger receives the SDK's logs. Default: discard.
	Logger *slog.Logger
}

// Resource URIs.
const (
	PeersURI  = "agentfed://peers"
	OutboxURI = "agentfed://outbox"
)

const instructions = "agentfed connects this host to an agent federation: agents on other servers, reached " +
	"through the local agentfed gateway. Use the agent_federation tool: list_peers to see who is there, send " +
	"to talk to one peer's agent, delegate to hand a task to any peer with the required capabilities."

// New returns an MCP server whose tool and resources are served by b.
func New(b Backend, opts Options) *mcp.Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: opts.Name, Version: opts.Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: log})
	s.AddTool(&mcp.Tool{
		Name:        opts.Tool.Name,
		Description: opts.Tool.Description,
		InputSchema: opts.Tool.InputSchema,
		Annotations: &mcp.ToolAnnotations{Title: "Agent federation", OpenWorldHint: new(true)},
	}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return callTool(ctx, b, req.Params.Arguments), nil
	})
	s.AddResource(&mcp.Resource{
		URI: PeersURI, Name: "peers", MIMEType: "application/json",
		Description: "The gateway's peers: static and dynamic, their capabilities, connection state and health (list_peers).",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return readJSON(PeersURI, func() (json.RawMessage, error) {
			return b.CallTool(ctx, json.RawMessage(`{"action":"list_peers"}`))
		})
	})
	s.AddResource(&mcp.Resource{
		URI: OutboxURI, Name: "outbox", MIMEType: "application/json",
		Description: "The durable outbox: messages sent with durable=true, their state (queued, delivered, failed, dead) and answers.",
	}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return readJSON(OutboxURI, func() (json.RawMessage, error) { return b.ListOutbox(ctx) })
	})
	return s
}

// callTool runs one call and shapes its outcome as a tool result.
func callTool(ctx context.Context, b Backend, args any) *mcp.CallToolResult {
	input, _ := args.(json.RawMessage)
	if len(input) == 0 || string(input) == "null" {
		input = json.RawMessage("{}")
	}
	out, err := b.CallTool(ctx, input)
	if err != nil {
		return errorResult(gateway.ToError(err))
	}
	return successResult(out)
}

func readJSON(uri string, read func() (json.RawMessage, error)) (*mcp.ReadResourceResult, error) {
	out, err := read()
	if err != nil {
		e := gateway.ToError(err)
		return nil, &resourceError{code: e.Code, msg: e.Message}
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(out)}}}, nil
}

type resourceError struct{ code, msg string }

func (e *resourceError) Error() string { return e.code + ": " + e.msg }
