package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/mcpserver"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPPath is where the gateway's listener serves the Model Context
// Protocol over streamable HTTP, to operators.
const MCPPath = "/mcp"

// maxMCPBody bounds one MCP request body, as the frame limit bounds one
// gateway-protocol frame.
const maxMCPBody = 4 << 20

// mcpServerOptions describe agentfed's MCP server: its name and version and
// the agent_federation tool. `agentfed mcp` (stdio) and /mcp share them.
func mcpServerOptions() mcpserver.Options {
	return mcpserver.Options{Name: "agentfed", Version: Version, Tool: mcpserver.Tool{
		Name: ToolName, Description: ToolDescription, InputSchema: ToolSchema()}}
}

// mcpFront is the /mcp front door: operator authentication in front of
// the SDK's streamable HTTP handler, onto the same Tool as federation.tool.
type mcpFront struct {
	n      *Node
	server *mcp.Server
	http   *mcp.StreamableHTTPHandler

	mu      sync.Mutex // guards closing
	closing bool
}

func newMCPFront(n *Node) *mcpFront {
	opts := mcpServerOptions()
	opts.Logger = n.log
	f := &mcpFront{n: n, server: mcpserver.New(nodeBackend{n}, opts)}
	f.http = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return f.server }, &mcp.StreamableHTTPOptions{
		Logger:              n.log,
		MaxRequestBodyBytes: maxMCPBody,
		// Sessions nobody uses any more end like idle connections do.
		SessionTimeout: time.Duration(n.cfg.Gateway.IdleTimeoutMs) * time.Millisecond,
		// Host and Origin are the listener's rules, checked for every
		// surface alike (see Node.Serve), not the SDK's own.
		DisableLocalhostProtection: true,
	})
	return f
}

// ServeHTTP authenticates the operator by its bearer token (or, without
// gateway.auth.operatorToken, by coming from loopback) and serves MCP.
func (f *mcpFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	closing := f.closing
	f.mu.Unlock()
	if closing {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "gateway shutting down", http.StatusServiceUnavailable)
		return
	}
	if _, err := f.n.authenticateOperator(r, bearerToken(r)); err != nil {
		e := gateway.ToError(err)
		f.n.audit.refuse(auditEvent{Dir: "in", Kind: "auth", Remote: r.RemoteAddr, Method: "mcp", Outcome: e.Code}, time.Now())
		if d, _ := e.Details.(map[string]string); d["code"] == "AUTH_TOKEN_MISSING" || d["code"] == "AUTH_TOKEN_MISMATCH" {
			// The WebSocket's advice names the CLI's flags; say what an
			// MCP host must send instead.
			e.Message = "MCP at " + MCPPath + " needs this gateway's operator token (gateway.auth.operatorToken) " +
				"in the header Authorization: Bearer TOKEN"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentfed"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(refusalStatus(w, err))
		json.NewEncoder(w).Encode(map[string]any{"error": e})
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" && f.sessions() >= maxMCPSessions {
		// A new session (an initialize request); each one holds memory until
		// it ends or idles out.
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("this gateway already has %d MCP sessions open (the most it keeps); end one (DELETE with its Mcp-Session-Id) or wait for an idle one to time out", maxMCPSessions),
			http.StatusServiceUnavailable)
		return
	}
	f.http.ServeHTTP(w, r.WithContext(withRemote(r.Context(), r.RemoteAddr)))
}

// maxMCPSessions bounds the MCP sessions open at once at /mcp.
const maxMCPSessions = 64

// sessions counts the open MCP sessions.
func (f *mcpFront) sessions() int {
	n := 0
	for range f.server.Sessions() {
		n++
	}
	return n
}

// close refuses new requests and ends every session, so that streams held
// open (SSE) let the HTTP server shut down.
func (f *mcpFront) close() {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	for ss := range f.server.Sessions() {
		ss.Close()
	}
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN"
// header, or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

type remoteKey struct{}

func withRemote(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

// nodeBackend runs MCP calls on the node, exactly as federation.tool and
// federation.outbox do for a WebSocket operator.
type nodeBackend struct{ n *Node }

func (b nodeBackend) CallTool(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
	remote, _ := ctx.Value(remoteKey{}).(string)
	out, err := b.n.operatorTool(ctx, remote, input)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

func (b nodeBackend) ListOutbox(ctx context.Context) (json.RawMessage, error) {
	out, err := b.n.serveOutbox(json.RawMessage(`{"op":"list"}`))
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}
