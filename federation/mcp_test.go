package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// bearer adds an operator token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func mcpURL(g *gw) string { return "http://" + g.Addr().String() + federation.MCPPath }

// mcpSession connects the go-sdk's MCP client to g's /mcp.
func mcpSession(t *testing.T, g *gw, token string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearer{token, http.DefaultTransport.(*http.Transport).Clone()}}
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mcpURL(g), HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", mcpURL(g), err)
	}
	t.Cleanup(func() {
		s.Close()
		hc.CloseIdleConnections()
	})
	return s
}

func callMCP(t *testing.T, s *mcp.ClientSession, args string) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: federation.ToolName, Arguments: json.RawMessage(args)})
	if err != nil {
		t.Fatalf("tools/call %s: %v", args, err)
	}
	return res
}

func TestMCPOverHTTP(t *testing.T) {
	lnB, lnA := listen(t), listen(t)
	start(t, newConfig(t, "gw-b", "echo-b", "echo"), lnB, nil)
	cfgA := newConfig(t, "gw-a", "")
	cfgA.Federation.Peers = []federation.PeerConfig{peerConf("peer-b", "echo-b", lnB, "echo")}
	cfgA.Gateway.Auth.OperatorToken = "op-secret"
	a := start(t, cfgA, lnA, nil)
	s := mcpSession(t, a, "op-secret")
	ctx := context.Background()

	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != federation.ToolName {
		t.Fatalf("tools/list = %+v, want the one agent_federation tool", tools.Tools)
	}
	var want, got any
	json.Unmarshal(federation.ToolSchema(), &want)
	b, _ := json.Marshal(tools.Tools[0].InputSchema)
	json.Unmarshal(b, &got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("inputSchema differs from agentfed schema (-want +got):\n%s", d)
	}

	res := callMCP(t, s, `{"action":"send","peerId":"peer-b","message":"hello over mcp"}`)
	if res.IsError {
		t.Fatalf("send isError: %+v", res.Content)
	}
	if c := at(res.StructuredContent, "response", "content"); c != "hello over mcp" {
		t.Errorf("structuredContent.response.content = %v, want the echo", c)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; !strings.HasPrefix(text, "peer-b answered: hello over mcp") {
		t.Errorf("text = %q, want a summary line first", text)
	}

	res = callMCP(t, s, `{"action":"fly"}`)
	if !res.IsError || at(res.StructuredContent, "error", "code") != "UNKNOWN_ACTION" {
		t.Errorf("bad action: isError=%v structured=%v, want isError with UNKNOWN_ACTION", res.IsError, res.StructuredContent)
	}
	res = callMCP(t, s, `{"action":"send","peerId":"nobody","message":"x"}`)
	if !res.IsError || at(res.StructuredContent, "error", "code") != "UNKNOWN_PEER" {
		t.Errorf("unknown peer: isError=%v structured=%v, want isError with UNKNOWN_PEER", res.IsError, res.StructuredContent)
	}
	// The code once, then what is wrong: not "UNKNOWN_PEER: federation: unknown peer: ...".
	if text := res.Content[0].(*mcp.TextContent).Text; !strings.HasPrefix(text, `UNKNOWN_PEER: no peer named "nobody"`) ||
		!strings.HasPrefix(fmt.Sprint(at(res.StructuredContent, "error", "message")), `no peer named "nobody"`) {
		t.Errorf("unknown peer: text %q, structured %v; want the code once and the message without restating it", text, res.StructuredContent)
	}

	res = callMCP(t, s, `{"action":"broadcast","message":"all"}`)
	if res.IsError || at(res.StructuredContent, "results", 0, "status") != "ok" {
		t.Errorf("broadcast: structured=%v, want {results: [{status: ok}]}", res.StructuredContent)
	}

	peers, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: "agentfed://peers"})
	if err != nil {
		t.Fatal(err)
	}
	var list any
	json.Unmarshal([]byte(peers.Contents[0].Text), &list)
	if at(list, "peers", 0, "id") != "peer-b" {
		t.Errorf("agentfed://peers = %s, want peer-b listed", peers.Contents[0].Text)
	}
	if _, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: "agentfed://outbox"}); err != nil {
		t.Errorf("agentfed://outbox: %v", err)
	}
}

func TestMCPNeedsOperatorToken(t *testing.T) {
	cfg := newConfig(t, "gw", "")
	cfg.Gateway.Auth.OperatorToken = "op-secret"
	g := start(t, cfg, listen(t), nil)
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	for _, tt := range []struct{ name, auth, detail string }{
		{"none", "", "AUTH_TOKEN_MISSING"},
		{"wrong", "Bearer nope", "AUTH_TOKEN_MISMATCH"},
		{"not bearer", "Basic b3A6b3Atc2VjcmV0", "AUTH_TOKEN_MISSING"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", mcpURL(g), strings.NewReader(initialize))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"UNAUTHORIZED"`)) || !bytes.Contains(body, []byte(tt.detail)) {
				t.Errorf("status %d body %s, want 401 UNAUTHORIZED %s", resp.StatusCode, body, tt.detail)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// A session with its event stream open must not hold up Shutdown.
func TestMCPShutdownWithOpenSession(t *testing.T) {
	cfg := newConfig(t, "gw", "")
	cfg.Gateway.Auth.OperatorToken = "op-secret"
	g := start(t, cfg, listen(t), nil)
	s := mcpSession(t, g, "op-secret")
	if err := s.Ping(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begun := time.Now()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an MCP session open: %v", err)
	}
	if d := time.Since(begun); d > 3*time.Second {
		t.Errorf("shutdown took %v with an MCP session open", d)
	}
}

// /mcp answers to the listener's rules: a browser origin not in
// gateway.allowedOrigins is refused, whatever the token, and a body over
// the frame limit is too large.
func TestMCPSharesTheListenersRules(t *testing.T) {
	cfg := newConfig(t, "gw", "")
	cfg.Gateway.Auth.OperatorToken = "op-secret"
	cfg.Gateway.AllowedOrigins = []string{"https://dash.example.com"}
	g := start(t, cfg, listen(t), nil)
	post := func(origin string, body string) (int, string) {
		req, _ := http.NewRequest("POST", mcpURL(g), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer op-secret")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	if code, body := post("https://evil.example", initialize); code != http.StatusForbidden || !strings.Contains(body, "gateway.allowedOrigins") {
		t.Errorf("foreign origin: %d %s, want 403 naming gateway.allowedOrigins", code, body)
	}
	if code, body := post("https://dash.example.com", initialize); code != http.StatusOK {
		t.Errorf("allowed origin: %d %s, want 200", code, body)
	}
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 4<<20) + `"}}`
	if code, _ := post("", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 4 MiB: %d, want 413", code)
	}
}

// TestMCPSessionsBounded: /mcp keeps at most 64 sessions open; the next
// initialize is refused with 503 saying so, and a session that ends makes
// room for a new one.
func TestMCPSessionsBounded(t *testing.T) {
	cfg := newConfig(t, "gw", "")
	cfg.Gateway.Auth.OperatorToken = "op-secret"
	g := start(t, cfg, listen(t), nil)
	do := func(method, session, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, mcpURL(g), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer op-secret")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	var first string
	for i := range 64 {
		resp := do(http.MethodPost, "", initialize)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("session %d: HTTP %d; want 200", i+1, resp.StatusCode)
		}
		if i == 0 {
			first = resp.Header.Get("Mcp-Session-Id")
		}
	}
	resp := do(http.MethodPost, "", initialize)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a 65th session: HTTP %d; want 503 with Retry-After", resp.StatusCode)
	}
	if resp := do(http.MethodDelete, first, ""); resp.StatusCode >= 300 {
		t.Fatalf("ending session %s: HTTP %d", first, resp.StatusCode)
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		if resp := do(http.MethodPost, "", initialize); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("a new session after one ended: HTTP %d; want 200", resp.StatusCode)
		}
		return nil
	})
}
