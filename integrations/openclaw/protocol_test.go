package openclaw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/coder/websocket"
)

// operatorGateway starts an agentfed gateway with an operator token, an echo
// agent, a peer that is down, and a tick every tickIntervalMs.
func operatorGateway(t *testing.T, token string) *tstest.Gateway {
	t.Helper()
	return serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation:
  enabled: true
  serverId: proto-server
  peers:
    - {id: gone, name: Gone, url: "ws://127.0.0.1:1", agentId: x}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
  tickIntervalMs: %d
agents:
  - {id: echo-agent, capabilities: [echoing], handler: {type: echo}}
storage: {dir: %q}
`, tickIntervalMs, t.TempDir()), "OP_TOKEN="+token)
}

// tickIntervalMs is the operator gateway's tick interval: short, so that
// a test sees ticks.
const tickIntervalMs = 200

// rawConn is a WebSocket to an agentfed gateway that keeps every frame as
// the gateway sent it.
type rawConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &rawConn{t: t, ws: ws}
}

func (c *rawConn) read() json.RawMessage {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return data
}

// event reads until the event name arrives and returns its frame.
func (c *rawConn) event(name string) json.RawMessage {
	c.t.Helper()
	for {
		f := c.read()
		var head struct{ Type, Event string }
		json.Unmarshal(f, &head)
		if head.Type == "event" && head.Event == name {
			return f
		}
	}
}

// call sends a request and returns the raw response frame.
func (c *rawConn) call(id, method string, params any) json.RawMessage {
	c.t.Helper()
	req, _ := json.Marshal(map[string]any{"type": "req", "id": id, "method": method, "params": params})
	if err := c.ws.Write(context.Background(), websocket.MessageText, req); err != nil {
		c.t.Fatal(err)
	}
	for {
		f := c.read()
		var head struct{ Type, ID string }
		json.Unmarshal(f, &head)
		if head.Type == "res" && head.ID == id {
			return f
		}
	}
}

// connectParams are what OpenClaw's CLI sends: client "cli", operator with
// the admin scopes, and a token.
func connectParams(token string) map[string]any {
	return map[string]any{
		"minProtocol": 4, "maxProtocol": 4,
		"client": map[string]any{"id": "cli", "mode": "cli", "version": "2026.9.6", "platform": "linux"},
		"role":   "operator", "scopes": []string{"operator.admin", "operator.read", "operator.write"},
		"caps": []string{"tool-events"}, "auth": map[string]any{"token": token},
	}
}

type check struct {
	Name   string          `json:"name"`
	Schema string          `json:"schema"`
	Value  json.RawMessage `json:"value"`
}

// TestFramesValidateAgainstOpenClawSchemas: every frame an agentfed gateway
// sends an OpenClaw operator client (challenge, hello-ok, responses, errors,
// a refused connect, and every event hello-ok announces: tick) validates
// against the schemas the pinned openclaw ships, checked by openclaw's own
// ajv.
func TestFramesValidateAgainstOpenClawSchemas(t *testing.T) {
	tl := needOpenClaw(t)
	token := randomHex(16)
	g := operatorGateway(t, token)

	var checks []check
	add := func(name, schema string, v json.RawMessage) {
		checks = append(checks, check{name, schema, v})
	}
	payload := func(f json.RawMessage) json.RawMessage {
		var r struct{ Payload json.RawMessage }
		json.Unmarshal(f, &r)
		return r.Payload
	}

	c := dialRaw(t, g.URL)
	add("connect.challenge", "EventFrameSchema", c.read())
	hello := c.call("connect", "connect", connectParams(token))
	add("hello-ok frame", "ResponseFrameSchema", hello)
	add("hello-ok", "HelloOkSchema", payload(hello))
	var announced struct {
		Features struct{ Events []string }
		Policy   struct{ TickIntervalMs int64 }
	}
	json.Unmarshal(payload(hello), &announced)
	if announced.Policy.TickIntervalMs != tickIntervalMs {
		t.Errorf("hello-ok policy.tickIntervalMs = %d; want gateway.tickIntervalMs, %d", announced.Policy.TickIntervalMs, tickIntervalMs)
	}
	// Each event the gateway may send, and openclaw's schema for its payload.
	eventSchemas := map[string]string{"tick": "TickEventSchema"}
	for _, name := range announced.Features.Events {
		schema, ok := eventSchemas[name]
		if !ok {
			t.Errorf("hello-ok announces the event %q, which this test does not check; add it to eventSchemas", name)
			continue
		}
		f := c.event(name)
		add(name+" frame", "EventFrameSchema", f)
		add(name, schema, payload(f))
	}
	health := c.call("h", "health", nil)
	add("health frame", "ResponseFrameSchema", health)
	add("health", "Health", payload(health))
	for _, call := range []struct {
		name, method string
		params       any
	}{
		{"status", "status", nil},
		{"federation.tool list_peers", "federation.tool", map[string]any{"action": "list_peers"}},
		{"federation.tool send to a down peer", "federation.tool", map[string]any{"action": "send", "peerId": "gone", "message": "hi", "timeoutMs": 2000}},
		{"federation.capabilities", "federation.capabilities", nil},
		{"federation.health", "federation.health", nil},
		{"unknown method", "nosuch.method", nil},
		{"bad params", "federation.tool", map[string]any{"action": "send"}},
		{"unknown action", "federation.tool", map[string]any{"action": "teleport"}},
		{"peer-only method", "federation.relay", map[string]any{}},
		{"cancel of nothing", "request.cancel", map[string]any{"id": "none"}},
	} {
		add(call.name, "ResponseFrameSchema", c.call(call.name, call.method, call.params))
	}

	refused := dialRaw(t, g.URL)
	refused.read()
	add("refused connect", "ResponseFrameSchema", refused.call("connect", "connect", connectParams("wrong-token")))

	for _, r := range validate(t, tl, checks) {
		if !r.OK {
			t.Errorf("%s does not validate against openclaw's schema: %v", r.Name, r.Errors)
		}
	}
	if !strings.Contains(string(c.call("u", "nosuch.method", nil)), `"code":"INVALID_REQUEST","message":"unknown method: nosuch.method"`) {
		t.Error("an unknown method is not answered as OpenClaw answers it")
	}
}

type validation struct {
	Name   string   `json:"name"`
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
}

// validate runs testdata/validate.mjs on checks.
func validate(t *testing.T, tl tools, checks []check) []validation {
	t.Helper()
	var in strings.Builder
	for _, c := range checks {
		b, _ := json.Marshal(c)
		in.Write(b)
		in.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.node, "testdata/validate.mjs", tl.openclaw)
	cmd.Stdin = strings.NewReader(in.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("validate.mjs: %v\n%s", err, out)
	}
	var results []validation
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r validation
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("validate.mjs printed %q: %v", line, err)
		}
		results = append(results, r)
	}
	if len(results) != len(checks) {
		t.Fatalf("validate.mjs checked %d frames, want %d", len(results), len(checks))
	}
	return results
}

// TestOpenClawCLIAgainstAgentfed: OpenClaw's own CLI calls an agentfed
// gateway: health answers, an unknown method fails as it does on OpenClaw,
// and federation.tool runs an action.
func TestOpenClawCLIAgainstAgentfed(t *testing.T) {
	tl := needOpenClaw(t)
	token := randomHex(16)
	g := operatorGateway(t, token)
	home := t.TempDir()

	cli := func(args ...string) (map[string]any, string, int) {
		t.Helper()
		cmd := exec.Command(tl.node, append([]string{tl.openclaw, "gateway", "call"}, append(args, "--url", g.URL, "--token", token, "--json")...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "OPENCLAW_HOME="+home, "OPENCLAW_STATE_DIR="+home, "TMPDIR="+home)
		out, _ := cmd.Output()
		var res map[string]any
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("openclaw gateway call %v: output is not JSON (%v):\n%s", args, err, out)
		}
		return res, string(out), cmd.ProcessState.ExitCode()
	}

	health, out, code := cli("health")
	if code != 0 || health["ok"] != true {
		t.Errorf("openclaw gateway call health: exit %d\n%s", code, out)
	}
	_, out, code = cli("nosuch.method")
	if code == 0 || !strings.Contains(out, `"code": "INVALID_REQUEST"`) || !strings.Contains(out, "unknown method: nosuch.method") {
		t.Errorf("openclaw gateway call nosuch.method: exit %d\n%s", code, out)
	}
	peers, out, code := cli("federation.tool", "--params", `{"action":"list_peers"}`)
	if code != 0 || peers["serverId"] != "proto-server" {
		t.Errorf("openclaw gateway call federation.tool list_peers: exit %d\n%s", code, out)
	}
}
