package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"

	"github.com/agentfed/agentfed/federation"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPServer is an MCP server whose tools an [LLM]'s model may call, as
// Name__TOOL: a program on stdio (Command, with an exec agent's
// environment: [BaseEnv] and Env) or a streamable HTTP endpoint (URL, with
// Headers).
type MCPServer struct {
	Name    string
	Command []string
	Env     map[string]string
	URL     string
	Headers map[string]string
	// Client sends the HTTP requests; nil means http.DefaultClient.
	Client *http.Client
}

// mcpTools are one message's sessions with the agent's MCP servers and the
// tools they offer the model.
type mcpTools struct {
	sessions []*mcp.ClientSession
	byName   map[string]mcpTool // the model's name for it
	offered  []chatTool
}

type mcpTool struct {
	session *mcp.ClientSession
	server  string
	name    string
}

// connectMCP starts a session with every server and lists its tools. On
// error the sessions already made are closed.
func connectMCP(ctx context.Context, servers []MCPServer) (*mcpTools, error) {
	m := &mcpTools{byName: map[string]mcpTool{}}
	client := mcp.NewClient(&mcp.Implementation{Name: "agentfed", Version: federation.Version}, nil)
	for _, srv := range servers {
		s, err := client.Connect(ctx, srv.transport(ctx), nil)
		if err != nil {
			m.close()
			return nil, failed(fmt.Sprintf("could not connect to MCP server %q", srv.Name), "%w: connect to MCP server %q: %w", federation.ErrAgentFailed, srv.Name, err)
		}
		m.sessions = append(m.sessions, s)
		for tool, err := range s.Tools(ctx, nil) {
			if err != nil {
				m.close()
				return nil, failed(fmt.Sprintf("could not list the tools of MCP server %q", srv.Name), "%w: list the tools of MCP server %q: %w", federation.ErrAgentFailed, srv.Name, err)
			}
			m.add(s, srv.Name, tool)
		}
	}
	return m, nil
}

// add offers tool to the model as SERVER__TOOL, its name cut to the 64
// characters of [a-zA-Z0-9_-] that Chat Completions accepts.
func (m *mcpTools) add(s *mcp.ClientSession, server string, tool *mcp.Tool) {
	name := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '_'
	}, server+"__"+tool.Name)
	name = name[:min(len(name), 64)]
	if _, taken := m.byName[name]; taken || name == federation.ToolName {
		return
	}
	schema, err := json.Marshal(tool.InputSchema)
	if err != nil || string(schema) == "null" {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	var ct chatTool
	ct.Type = "function"
	ct.Function.Name, ct.Function.Description, ct.Function.Parameters = name, tool.Description, schema
	m.offered = append(m.offered, ct)
	m.byName[name] = mcpTool{session: s, server: server, name: tool.Name}
}

// call runs a model's call of an MCP tool and returns what the model sees:
// the structured result as JSON, else the text contents; a failure as
// {"error": {"code", "message"}}.
func (m *mcpTools) call(ctx context.Context, t mcpTool, args string) string {
	var in map[string]any
	if err := json.Unmarshal([]byte(args), &in); err != nil {
		return toolError("INVALID_PARAMS", "the arguments are not a JSON object: "+err.Error())
	}
	res, err := t.session.CallTool(ctx, &mcp.CallToolParams{Name: t.name, Arguments: in})
	if err != nil {
		return toolError("TOOL_ERROR", fmt.Sprintf("MCP server %q, tool %q: %v", t.server, t.name, err))
	}
	var text []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	switch {
	case res.IsError:
		return toolError("TOOL_ERROR", strings.Join(text, "\n"))
	case res.StructuredContent != nil:
		b, err := json.Marshal(res.StructuredContent)
		if err == nil {
			return string(b)
		}
	}
	return strings.Join(text, "\n")
}

// lookup finds the MCP tool the model called by name.
func (m *mcpTools) lookup(name string) (mcpTool, bool) {
	if m == nil {
		return mcpTool{}, false
	}
	t, ok := m.byName[name]
	return t, ok
}

func toolError(code, msg string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return string(b)
}

func (m *mcpTools) close() {
	if m == nil {
		return
	}
	for _, s := range m.sessions {
		s.Close() // a server that exits uncleanly after its work is not the message's failure
	}
}

// transport is how to reach the server; a stdio server lives as long as
// ctx (one message).
func (srv MCPServer) transport(ctx context.Context) mcp.Transport {
	if srv.URL != "" {
		client := srv.Client
		if client == nil {
			client = http.DefaultClient
		}
		if len(srv.Headers) > 0 {
			next := client.Transport
			if next == nil {
				next = http.DefaultTransport
			}
			c := *client
			c.Transport = withHeaders{headers: srv.Headers, next: next}
			client = &c
		}
		return &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: client, DisableStandaloneSSE: true}
	}
	cmd := exec.CommandContext(ctx, srv.Command[0], srv.Command[1:]...)
	cmd.Env = environ(srv.Env)
	return &mcp.CommandTransport{Command: cmd}
}

// withHeaders sets headers on every request.
type withHeaders struct {
	headers map[string]string
	next    http.RoundTripper
}

func (h withHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header.Set(k, v)
	}
	return h.next.RoundTrip(r)
}
