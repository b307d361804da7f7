package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
)

// gatewayFor starts a real gateway on ln serving cfg's agents, built by
// New, until the test ends.
func gatewayFor(t *testing.T, cfg *federation.Config, ln net.Listener) *federation.Node {
	t.Helper()
	cfg.Storage.Dir = t.TempDir()
	cfg.Federation.Enabled = true
	cfg.ApplyDefaults()
	handlers := map[string]federation.Handler{}
	for _, a := range cfg.Agents {
		h, err := New(a)
		if err != nil {
			t.Fatal(err)
		}
		handlers[a.ID] = h
	}
	n, err := federation.New(cfg, federation.Options{Handlers: handlers})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Serve(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

func loopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func wsURL(ln net.Listener) string { return "ws://" + ln.Addr().String() }

// llmFederation is three gateways: gw-c, whose operator sends to the llm
// agent "planner" on gw-a; gw-a, which grants gw-c the actions granted;
// and gw-b, whose exec agent "worker" has the capability shell and answers
// with the name of the agent that sent it the task.
type llmFederation struct {
	a, b, c *federation.Node
	aDir    string // gw-a's storage.dir
	llm     *scriptedLLM
}

func newLLMFederation(t *testing.T, allow, granted []string) *llmFederation {
	f := &llmFederation{llm: newScriptedLLM(t)}
	lnA, lnB, lnC := loopback(t), loopback(t), loopback(t)
	f.b = gatewayFor(t, &federation.Config{
		Federation: federation.FederationConfig{ServerID: "gw-b"},
		Agents: []federation.AgentConfig{{ID: "worker", Capabilities: []string{"shell"}, Handler: federation.HandlerConfig{
			Type: "exec", Command: sh(`printf 'done by %s' "$(sed -n 's/.*"fromAgent":"\([^"]*\)".*/\1/p')"`)}}},
	}, lnB)
	cfgA := &federation.Config{
		Federation: federation.FederationConfig{ServerID: "gw-a", Peers: []federation.PeerConfig{
			{ID: "worker-b", Name: "B", URL: wsURL(lnB), AgentID: "worker", Capabilities: []string{"shell"}}}},
		Gateway: federation.GatewayConfig{Auth: federation.AuthConfig{Peers: []federation.PeerCredential{
			{ServerID: "gw-c", Token: "c-token", AllowActions: granted}}}},
		Agents: []federation.AgentConfig{{ID: "planner", Handler: federation.HandlerConfig{
			Type: "llm", BaseURL: f.llm.URL + "/v1", Model: "planner-model", APIKey: "sk-test", System: "You plan work.",
			Tools: federation.LLMToolsConfig{AllowActions: allow}}}},
	}
	f.a, f.aDir = gatewayFor(t, cfgA, lnA), cfgA.Storage.Dir
	f.c = gatewayFor(t, &federation.Config{
		Federation: federation.FederationConfig{ServerID: "gw-c", Peers: []federation.PeerConfig{
			{ID: "planner-a", Name: "A", URL: wsURL(lnA), Token: "c-token", AgentID: "planner"}}},
	}, lnC)
	return f
}

// ask sends content to the planner from gw-c and returns its answer.
func (f *llmFederation) ask(t *testing.T, content string, mctx map[string]any) *federation.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := f.c.Send(ctx, federation.SendRequest{PeerID: "planner-a", Message: content,
		MessageOptions: federation.MessageOptions{Context: mctx, CorrelationID: "job-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != federation.StatusOK {
		t.Fatalf("send to the planner: %s: %v", res.Status, res.Error)
	}
	return res.Response
}

// toolResults are the contents of a conversation's tool messages.
func toolResults(req chatRequest) []string {
	var out []string
	for _, m := range req.Messages {
		if m.Role == "tool" && m.Content != nil {
			out = append(out, *m.Content)
		}
	}
	return out
}

func TestLLMDelegatesByCapability(t *testing.T) {
	f := newLLMFederation(t, []string{"delegate"}, []string{"delegate"})
	f.llm.script("planner-model", func(req chatRequest, _ int) (int, map[string]string, any) {
		if res := lastTool(req); res != "" {
			var r federation.DelegateResult
			json.Unmarshal([]byte(res), &r)
			return completion(fmt.Sprintf("%s answered: %s", r.PeerID, r.Response.Content))
		}
		return completion("", `{"action":"delegate","requiredCapabilities":["shell"],"task":"run the sub-task"}`)
	})
	answer := f.ask(t, "Plan the job", map[string]any{"project": "apollo"})
	if answer.Content != "worker-b answered: done by planner" {
		t.Errorf("answer = %q, want the worker's result relayed by the planner", answer.Content)
	}
	if d := cmp.Diff(map[string]any{"model": "planner-model", "steps": float64(2),
		"usage": map[string]any{"model": "planner-model", "promptTokens": float64(20), "completionTokens": float64(10), "totalTokens": float64(30)}},
		answer.Context); d != "" {
		t.Errorf("answer context (-want +got):\n%s", d)
	}

	reqs := f.llm.requests("planner-model")
	if len(reqs) != 2 {
		t.Fatalf("the model got %d requests, want 2 (the task, then the tool result)", len(reqs))
	}
	first := reqs[0]
	if len(first.Tools) != 1 || first.Tools[0].Function.Name != federation.ToolName ||
		!jsonEqual(first.Tools[0].Function.Parameters, federation.ToolSchema()) {
		t.Errorf("tools offered = %+v, want agent_federation with agentfed schema", first.Tools)
	}
	if sys := text(first, "system"); !strings.Contains(sys, "You plan work.") || !strings.Contains(sys, `gateway "gw-c"`) ||
		!strings.Contains(sys, `"project":"apollo"`) || !strings.Contains(sys, `correlationId "job-1"`) {
		t.Errorf("system messages = %q, want the prompt, the sender, the correlationId and the context", sys)
	}
	if user := text(first, "user"); user != "Plan the job\n" {
		t.Errorf("user message = %q", user)
	}
	if got := toolResults(reqs[1]); len(got) != 1 || !strings.Contains(got[0], `"content":"done by planner"`) {
		t.Errorf("tool results = %q, want the delegate result with the worker's answer", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.a.Shutdown(ctx) // flushes the audit log
	audit, err := os.ReadFile(filepath.Join(f.aDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), "model=planner-model promptTokens=20 completionTokens=10 totalTokens=30") ||
		!strings.Contains(string(audit), `"dir":"agent","kind":"tool"`) {
		t.Errorf("audit log lacks the planner's tool call and token usage:\n%s", audit)
	}
}

func TestLLMCannotExceedCallerGrant(t *testing.T) {
	f := newLLMFederation(t, []string{"delegate", "broadcast"}, []string{"delegate"})
	f.llm.script("planner-model", func(req chatRequest, _ int) (int, map[string]string, any) {
		if res := toolResults(req); len(res) > 0 {
			return completion("tools said: " + strings.Join(res, " | "))
		}
		return completion("", `{"action":"broadcast","message":"everyone, stop"}`,
			`{"action":"register_peer","peerId":"x","peerName":"x","peerUrl":"ws://127.0.0.1:1","peerAgentId":"x"}`)
	})
	answer := f.ask(t, "Tell everyone", nil)
	for _, want := range []string{
		`FORBIDDEN`,
		`may not run broadcast on behalf of \"gw-c\": gateway.auth.peers[serverId=gw-c].allowActions is [delegate]`,
		`may not run register_peer (its handler.tools.allowActions is [delegate broadcast])`,
	} {
		if !strings.Contains(answer.Content, want) {
			t.Errorf("answer %q lacks %q", answer.Content, want)
		}
	}
	if peers := f.a.ListPeers(); peers.TotalPeers != 1 {
		t.Errorf("gw-a has %d peers after a refused register_peer, want 1", peers.TotalPeers)
	}
}

func TestLLMRetries(t *testing.T) {
	llm := newScriptedLLM(t)
	llm.script("m", func(_ chatRequest, n int) (int, map[string]string, any) {
		switch n {
		case 1:
			return 429, map[string]string{"Retry-After": "0"}, map[string]any{"error": map[string]any{"message": "slow down"}}
		case 2:
			return 503, nil, map[string]any{"error": map[string]any{"message": "overloaded"}}
		}
		return completion("fine")
	})
	l := &LLM{BaseURL: llm.URL + "/v1/", Model: "m", APIKey: "sk-secret"}
	ans, err := l.Handle(context.Background(), testMessage("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if ans.Content != "fine" || len(llm.requests("m")) != 3 {
		t.Errorf("answer %q after %d requests, want fine after 3", ans.Content, len(llm.requests("m")))
	}
	if got := llm.got[0].header.Get("Authorization"); got != "Bearer sk-secret" {
		t.Errorf("Authorization = %q, want the API key as bearer", got)
	}
}

func TestLLMErrors(t *testing.T) {
	llm := newScriptedLLM(t)
	llm.script("bad-request", func(chatRequest, int) (int, map[string]string, any) {
		return 400, nil, map[string]any{"error": map[string]any{"message": "unknown parameter"}}
	})
	llm.script("always-500", func(chatRequest, int) (int, map[string]string, any) {
		return 500, nil, map[string]any{"error": "boom"}
	})
	llm.script("tool-forever", func(chatRequest, int) (int, map[string]string, any) {
		return completion("", `{"action":"list_peers"}`)
	})
	llm.script("silent", func(chatRequest, int) (int, map[string]string, any) { return completion("") })
	for _, tt := range []struct {
		model, want, public string
		requests            int
	}{
		{"bad-request", `status 400 Bad Request; body: "{\"error\":{\"message\":\"unknown parameter\"}}"`, "got 400 Bad Request from its model endpoint", 1},
		{"always-500", "status 500 Internal Server Error", "got 500 Internal Server Error from its model endpoint", 2},
		{"tool-forever", "no answer within 3 model calls (handler.maxSteps)", "had no answer within 3 model calls (maxSteps)", 3},
		{"silent", "answered with neither text nor a tool call", "got neither text nor a tool call from the model", 1},
		{"no-such-model", "status 404", "got 404 Not Found from its model endpoint", 1},
	} {
		t.Run(tt.model, func(t *testing.T) {
			l := &LLM{BaseURL: llm.URL + "/v1", Model: tt.model, APIKey: "sk-secret", MaxSteps: 3, MaxTries: 2}
			_, err := l.Handle(context.Background(), testMessage("hi"))
			if !errors.Is(err, federation.ErrAgentFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want AGENT_ERROR with %q", err, tt.want)
			}
			// The caller is told only the public part; the rest (the
			// endpoint, the body) stays in the gateway's log.
			if ae := (*federation.AgentError)(nil); !errors.As(err, &ae) || ae.Public != tt.public {
				t.Errorf("public part of %v: want %q", err, tt.public)
			}
			if err != nil && strings.Contains(err.Error(), "sk-secret") {
				t.Errorf("the error shows the API key: %v", err)
			}
			if n := len(llm.requests(tt.model)); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
	// The caller's deadline ends the retries.
	l := &LLM{BaseURL: llm.URL + "/v1", Model: "always-500", MaxTries: 100}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := l.Handle(ctx, testMessage("hi")); gateway.CodeOf(err) != gateway.CodeTimeout {
		t.Errorf("err = %v, want the caller's deadline (TIMEOUT)", err)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
}

// Two llm agents that delegate every task to each other stop at
// federation.maxHops, and the error that ends the chain shows its path and
// the loop.
func TestLLMDelegationLoopStopsAtHopLimit(t *testing.T) {
	llm := newScriptedLLM(t)
	lnA, lnB, lnC := loopback(t), loopback(t), loopback(t)
	pingPong := func(id, model, capability string, ln, other net.Listener, otherAgent string, callers ...string) *federation.Config {
		cfg := &federation.Config{
			Federation: federation.FederationConfig{ServerID: id, Peers: []federation.PeerConfig{
				{ID: "other", Name: "other", URL: wsURL(other), Token: id + "-token", AgentID: otherAgent, Capabilities: []string{capability}}}},
			Agents: []federation.AgentConfig{{ID: model, Capabilities: []string{model}, Handler: federation.HandlerConfig{
				Type: "llm", BaseURL: llm.URL + "/v1", Model: model, Tools: federation.LLMToolsConfig{AllowActions: []string{"delegate"}}}}},
		}
		for _, c := range callers {
			cfg.Gateway.Auth.Peers = append(cfg.Gateway.Auth.Peers, federation.PeerCredential{ServerID: c, Token: c + "-token", AllowActions: []string{"delegate"}})
		}
		return cfg
	}
	for _, model := range []string{"ping", "pong"} {
		other := map[string]string{"ping": "pong", "pong": "ping"}[model]
		llm.script(model, func(req chatRequest, _ int) (int, map[string]string, any) {
			if res := lastTool(req); res != "" {
				var r struct {
					Response struct{ Content string } `json:"response"`
					Error    struct{ Message string } `json:"error"`
				}
				json.Unmarshal([]byte(res), &r)
				return completion(model + " passes on: " + r.Response.Content + r.Error.Message)
			}
			return completion("", fmt.Sprintf(`{"action":"delegate","requiredCapabilities":[%q],"task":"keep going"}`, other))
		})
	}
	gatewayFor(t, pingPong("gw-a", "ping", "pong", lnA, lnB, "pong", "gw-c", "gw-b"), lnA)
	gatewayFor(t, pingPong("gw-b", "pong", "ping", lnB, lnA, "ping", "gw-a"), lnB)
	c := gatewayFor(t, &federation.Config{Federation: federation.FederationConfig{ServerID: "gw-c", Peers: []federation.PeerConfig{
		{ID: "a", Name: "A", URL: wsURL(lnA), Token: "gw-c-token", AgentID: "ping"}}}}, lnC)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Send(ctx, federation.SendRequest{PeerID: "a", Message: "start"})
	if err != nil || res.Status != federation.StatusOK {
		t.Fatalf("send: %v %+v", err, res)
	}
	answer := res.Response.Content
	for _, want := range []string{
		// gw-c's message is relay 1; the agent on gw-b that would send
		// relay 9 is refused before sending.
		`ping passes on: pong passes on: ping passes on: pong passes on: ping passes on: pong passes on: ping passes on: pong passes on: ` +
			`federation: hop limit: relay 9 along gw-c → gw-a → gw-b → gw-a → gw-b → gw-a → gw-b → gw-a → gw-b → peer "other" ` +
			`is past federation.maxHops (8) of gateway "gw-b"`,
		`the chain loops: gw-a → gw-b → gw-a`,
	} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
	pong := llm.requests("pong")
	if !slices.ContainsFunc(pong, func(r chatRequest) bool { return strings.HasPrefix(lastTool(r), `{"error":{"code":"HOP_LIMIT"`) }) {
		t.Errorf("the refused delegate did not reach the model as a HOP_LIMIT tool result")
	}
	if n, m := len(llm.requests("ping")), len(pong); n != 8 || m != 8 {
		t.Errorf("model calls: ping %d, pong %d; want 8 each (4 handled messages each, two calls per message)", n, m)
	}
}

// A sender granted nothing gets an llm agent without the tool.
func TestLLMWithoutGrantHasNoTool(t *testing.T) {
	f := newLLMFederation(t, []string{"delegate"}, nil)
	f.llm.script("planner-model", func(req chatRequest, _ int) (int, map[string]string, any) {
		return completion(fmt.Sprintf("%d tools", len(req.Tools)))
	})
	if answer := f.ask(t, "Plan the job", nil); answer.Content != "0 tools" {
		t.Errorf("answer = %q, want the model offered no tool", answer.Content)
	}
}
