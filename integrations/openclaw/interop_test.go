package openclaw_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"os/exec"
	"strings"
	"testing"
	"time"

	agentfed "github.com/agentfed/agentfed/federation"
	"github.com/google/go-cmp/cmp"
)

// federation starts three agentfed gateways around the OpenClaw gateway:
// echo (C) hosts an echo agent with capability "echoing"; claw (B), on the
// address the plugin inside OpenClaw calls, hosts the agent "claw" of kind
// openclaw and has echo as its peer; main (A) has claw as its peer.
func federation(t *testing.T, o *openClaw) (main, claw, echo *tstest.Gateway) {
	t.Helper()
	echo = serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation: {enabled: true, serverId: echo-server}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
agents:
  - {id: echo-agent, capabilities: [echoing], handler: {type: echo}}
storage: {dir: %q}
`, t.TempDir()), "OP_TOKEN="+opToken)
	claw = serve(t, o.pluginGateway, fmt.Sprintf(`
federation:
  enabled: true
  serverId: claw-server
  peers:
    - {id: echo-peer, name: Echo, url: %q, agentId: echo-agent, capabilities: [echoing]}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
agents:
  - id: claw
    capabilities: [openclaw]
    handler: {type: openclaw, url: %q, token: "${OPENCLAW_TOKEN}", agentId: main}
storage: {dir: %q}
`, echo.URL, o.url, t.TempDir()), "OP_TOKEN="+opToken, "OPENCLAW_TOKEN="+o.token)
	main = serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation:
  enabled: true
  serverId: main-server
  peers:
    - {id: claw-peer, name: OpenClaw, url: %q, agentId: claw, capabilities: [openclaw], timeoutMs: 60000}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
storage: {dir: %q}
`, claw.URL, t.TempDir()), "OP_TOKEN="+opToken)
	return main, claw, echo
}

// TestSendToOpenClawAgent: agentfed send from A to B, whose agent is a real
// OpenClaw agent, brings back the scripted model's answer with the
// correlationId and priority kept; the message's context and the session's
// synced context reach the OpenClaw agent.
func TestSendToOpenClawAgent(t *testing.T) {
	o := oc.get(t)
	main, _, _ := federation(t, o)

	var synced sendResult
	if code := agentfedJSON(t, &synced, "sync", "claw-peer", "--gateway", main.URL,
		"--data", `{"projectId":"proj-synced-77"}`, "--correlation-id", "corr-openclaw-1"); code != 0 {
		t.Fatalf("sync: exit %d: %+v", code, synced)
	}
	var got sendResult
	code := agentfedJSON(t, &got, "send", "claw-peer", "[[answer]] What is the status?", "--gateway", main.URL,
		"--priority", "high", "--correlation-id", "corr-openclaw-1", "--context", `{"ticket":"T-4242"}`)
	if code != 0 || got.Status != "ok" || got.Response == nil {
		t.Fatalf("send: exit %d, result %+v (error %+v)", code, got, got.Error)
	}
	r := got.Response
	if r.Content != scriptedAnswer || r.CorrelationID != "corr-openclaw-1" || r.Priority != "high" || r.Type != "response" || r.FromAgent != "claw" {
		t.Errorf("response = %+v; want content %q, correlationId corr-openclaw-1, priority high, from claw", *r, scriptedAnswer)
	}
	reqs := o.model.requestsWith("[[answer]] What is the status?")
	if len(reqs) == 0 {
		t.Fatal("the model never saw the message")
	}
	var prompt strings.Builder
	for _, m := range reqs[0].Messages {
		prompt.WriteString(m.text())
	}
	for _, want := range []string{"T-4242", "proj-synced-77", "corr-openclaw-1", "main-server"} {
		if !strings.Contains(prompt.String(), want) {
			t.Errorf("the OpenClaw agent's model request lacks %q", want)
		}
	}
}

// TestOpenClawAgentTimeout: a turn that outlasts the caller's deadline is
// a TIMEOUT.
func TestOpenClawAgentTimeout(t *testing.T) {
	o := oc.get(t)
	main, _, _ := federation(t, o)

	var got sendResult
	agentfedJSON(t, &got, "send", "claw-peer", "[[stall]] take your time", "--gateway", main.URL,
		"--timeout-ms", "3000", "--correlation-id", "corr-stall")
	if got.Status != "timeout" || got.Error == nil || got.Error.Code != "TIMEOUT" {
		t.Fatalf("send = %+v (error %+v); want status timeout, code TIMEOUT", got, got.Error)
	}
}

// TestOpenClawAgentCancelAborts: when the caller gives up, the OpenClaw run
// is aborted (its model stream is closed) long before its own timeout.
func TestOpenClawAgentCancelAborts(t *testing.T) {
	o := oc.get(t)
	main, _, _ := federation(t, o)

	before := o.model.closedStalls()
	send := exec.Command(bin, "send", "claw-peer", "[[stall]] cancel me", "--gateway", main.URL,
		"--timeout-ms", "120000", "--correlation-id", "corr-cancel", "--token", opToken)
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, 60*time.Second, func() error {
		if len(o.model.requestsWith("[[stall]] cancel me")) == 0 {
			return errors.New("the model has not seen the message")
		}
		return nil
	})
	send.Process.Kill() // the operator's connection drops: the call is cancelled
	send.Wait()
	tstest.WaitFor(t, 15*time.Second, func() error {
		if o.model.closedStalls() == before {
			return errors.New("the OpenClaw run's model stream is still open")
		}
		return nil
	})
}

// TestPluginToolSend: the scripted model inside OpenClaw calls the
// agent_federation tool (send to an agentfed peer's echo agent); the plugin
// forwards it to the agentfed gateway, the result reaches the model as the
// tool result, and the OpenClaw agent's final answer contains it.
func TestPluginToolSend(t *testing.T) {
	o := oc.get(t)
	main, _, _ := federation(t, o)

	var got sendResult
	code := agentfedJSON(t, &got, "send", "claw-peer", "[[fed-send]] ask the echo peer", "--gateway", main.URL,
		"--correlation-id", "corr-plugin-send")
	if code != 0 || got.Status != "ok" || got.Response == nil {
		t.Fatalf("send: exit %d, result %+v (error %+v)", code, got, got.Error)
	}
	answer := got.Response.Content
	for _, want := range []string{"federation said: ", `"status":"ok"`, `"content":"ping from openclaw"`, `"fromAgent":"echo-agent"`, `"correlationId":"tool-send-1"`} {
		if !strings.Contains(answer, want) {
			t.Errorf("final answer lacks %s:\n%s", want, answer)
		}
	}
	checkToolSchema(t, o.model.requestsWith("[[fed-send]] ask the echo peer"))
}

// TestPluginToolDelegate: as TestPluginToolSend, with delegate by
// capability.
func TestPluginToolDelegate(t *testing.T) {
	o := oc.get(t)
	main, _, _ := federation(t, o)

	var got sendResult
	code := agentfedJSON(t, &got, "send", "claw-peer", "[[fed-delegate]] find someone who echoes", "--gateway", main.URL,
		"--correlation-id", "corr-plugin-delegate")
	if code != 0 || got.Status != "ok" || got.Response == nil {
		t.Fatalf("send: exit %d, result %+v (error %+v)", code, got, got.Error)
	}
	answer := got.Response.Content
	for _, want := range []string{"federation said: ", `"peerId":"echo-peer"`, `"content":"delegated by openclaw"`, `"strategy":"round-robin"`} {
		if !strings.Contains(answer, want) {
			t.Errorf("final answer lacks %s:\n%s", want, answer)
		}
	}
}

// checkToolSchema: the model was offered agent_federation with exactly
// agentfed's schema.
func checkToolSchema(t *testing.T, reqs []chatRequest) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("the model never saw the message")
	}
	for _, tool := range reqs[0].Tools {
		if tool.Function.Name != "agent_federation" {
			continue
		}
		var got, want any
		json.Unmarshal(tool.Function.Parameters, &got)
		json.Unmarshal(agentfed.ToolSchema(), &want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the tool's parameters as the model sees them differ from agentfed schema (-want +got):\n%s", diff)
		}
		return
	}
	t.Errorf("the model was not offered agent_federation")
}

// TestPeerEntryPointedAtOpenClaw: shipped OpenClaw refuses the peer role.
// An agentfed peer entry pointed at it is refused, not redialled every few
// seconds: it shows the refused state, and the reason says to reach
// OpenClaw agents with the openclaw agent kind.
func TestPeerEntryPointedAtOpenClaw(t *testing.T) {
	o := oc.get(t)
	g := serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation:
  enabled: true
  serverId: lost-server
  peers:
    - {id: claw-gw, name: OpenClaw, url: %q, token: "${OPENCLAW_TOKEN}", agentId: main}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
storage: {dir: %q}
`, o.url, t.TempDir()), "OPENCLAW_TOKEN="+o.token, "OP_TOKEN="+opToken)

	var got sendResult
	agentfedJSON(t, &got, "send", "claw-gw", "hello", "--gateway", g.URL)
	if got.Status != "error" || got.Error == nil || !strings.Contains(got.Error.Message, "refused the handshake") ||
		!strings.Contains(got.Error.Message, "handler type openclaw") {
		t.Fatalf("send to OpenClaw as a peer = %+v (error %+v); want a refusal that points to the openclaw agent kind", got, got.Error)
	}
	t.Logf("OpenClaw as a peer: %s", got.Error.Message)
	var peers struct {
		Peers []struct {
			Health struct{ State, LastError string } `json:"health"`
		} `json:"peers"`
	}
	agentfedJSON(t, &peers, "peers", "--gateway", g.URL)
	if len(peers.Peers) != 1 || peers.Peers[0].Health.State != "refused" {
		t.Errorf("peers = %+v; want claw-gw refused", peers)
	}
}

// TestOpenClawAgentErrors: what OpenClaw refuses comes back as AGENT_ERROR:
// an agent id it does not have, a wrong token.
func TestOpenClawAgentErrors(t *testing.T) {
	o := oc.get(t)
	claw := serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation: {enabled: true, serverId: claw-errors}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
agents:
  - {id: ghost, handler: {type: openclaw, url: %q, token: "${OPENCLAW_TOKEN}", agentId: no-such-agent}}
  - {id: stale, handler: {type: openclaw, url: %q, token: "not-the-token"}}
storage: {dir: %q}
`, o.url, o.url, t.TempDir()), "OP_TOKEN="+opToken, "OPENCLAW_TOKEN="+o.token)
	main := serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation:
  enabled: true
  serverId: main-errors
  peers:
    - {id: ghost, name: Ghost, url: %q, agentId: ghost}
    - {id: stale, name: Stale, url: %q, agentId: stale}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
storage: {dir: %q}
`, claw.URL, claw.URL, t.TempDir()), "OP_TOKEN="+opToken)

	for _, peer := range []string{"ghost", "stale"} {
		var got sendResult
		agentfedJSON(t, &got, "send", peer, "[[answer]] hello", "--gateway", main.URL, "--timeout-ms", "30000")
		if got.Status != "error" || got.Error == nil || got.Error.Code != "AGENT_ERROR" {
			t.Errorf("send to %s = %+v (error %+v); want AGENT_ERROR", peer, got, got.Error)
		}
	}
	// The details stay in the gateway's log (its "agent failed" lines are
	// rate-limited, so only the first is certain to be there).
	if logs := claw.Logs.String(); !strings.Contains(logs, `unknown agent id \"no-such-agent\"`) {
		t.Errorf("the claw gateway's log lacks OpenClaw's reason:\n%s", logs)
	}
}
