package federation_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// Attacks by a hostile peer on what a gateway keeps and echoes: each test
// plays one against real gateways on loopback.

// TestWireIdentifiersBounded: every identifier a relay carries has a
// length limit and a character set, and the error names the field
// without echoing the whole value.
func TestWireIdentifiersBounded(t *testing.T) {
	g := guarded(t, nil)
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("i", 3<<20)
	for _, tt := range []struct {
		field string
		tune  func(m *federation.Message, p *federation.RelayParams)
	}{
		{"message.messageId", func(m *federation.Message, _ *federation.RelayParams) { m.MessageID = huge }},
		{"message.correlationId", func(m *federation.Message, _ *federation.RelayParams) { m.CorrelationID = huge }},
		{"message.fromAgent", func(m *federation.Message, _ *federation.RelayParams) { m.FromAgent = "a b" }},
		{"message.toAgent", func(m *federation.Message, _ *federation.RelayParams) { m.ToAgent = "public\n" }},
		{"message.fromServer", func(m *federation.Message, _ *federation.RelayParams) { m.FromServer = huge[:1<<20] }},
		{"targetAgent", func(_ *federation.Message, p *federation.RelayParams) { p.TargetAgent = huge[:200] }},
		{"message.signature", func(m *federation.Message, _ *federation.RelayParams) { m.Signature = huge[:1<<20] }},
	} {
		t.Run(tt.field, func(t *testing.T) {
			m := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "hi")
			p := federation.RelayParams{TargetAgent: "public", Message: m}
			tt.tune(m, &p)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Call(ctx, federation.MethodRelay, p, nil)
			if code(err) != gateway.CodeInvalidParams || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v; want INVALID_PARAMS naming %s", truncated(err), tt.field)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("the error is %d bytes: it echoes the input", len(err.Error()))
			}
		})
	}
	// UUIDs and the seed's names pass.
	m := federation.NewMessage(federation.TypeRequest, "main-server", "agent-research-01", "public", "hi")
	m.CorrelationID = "user@host:18789.session_1"
	if err := relayMsg(t, c, m, "public"); err != nil {
		t.Fatalf("a well-formed message: %v", err)
	}
}

func truncated(err error) string {
	s := errString(err)
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// restarted stops g and starts a gateway on the same config and storage.
func restarted(t *testing.T, g *gw) *gw {
	t.Helper()
	g.stop(t)
	return start(t, g.cfg, listen(t), nil)
}

// TestReplayRefusedAfterRestart: messages captured before a restart,
// plain, signed and sealed, or a sync, are refused after it; new ones are
// served.
func TestReplayRefusedAfterRestart(t *testing.T) {
	sender := mustIdentity(t, t.TempDir())
	g := guarded(t, func(c *federation.PeerCredential) { c.PublicKey = sender.Public().SigningKey })
	receiverKey := encryptionKey(t, mustIdentity(t, g.cfg.Storage.Dir))
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	newMsg := func(typ federation.MessageType, sealed bool) *federation.Message {
		m := federation.NewMessage(typ, "main-server", "a", "public", "run me once")
		if typ == federation.TypeSync {
			m.Context = map[string]any{"step": 1.0}
		}
		if sealed {
			if _, err := m.Seal(receiverKey); err != nil {
				t.Fatal(err)
			}
		}
		if err := sender.Sign(m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	captured := map[string]*federation.Message{
		"signed":        newMsg(federation.TypeRequest, false),
		"signed sealed": newMsg(federation.TypeRequest, true),
		"sync":          newMsg(federation.TypeSync, false),
	}
	for name, m := range captured {
		if err := relayMsg(t, c, m, "public"); err != nil {
			t.Fatalf("%s: first delivery: %v", name, err)
		}
	}
	g = restarted(t, g)
	c, err = dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range captured {
		if err := relayMsg(t, c, m, "public"); code(err) != federation.CodeReplayed {
			t.Errorf("%s replayed after a restart: %v; want REPLAYED", name, err)
		}
	}
	if err := relayMsg(t, c, newMsg(federation.TypeRequest, true), "public"); err != nil {
		t.Fatalf("a new message after the restart: %v", err)
	}
}

// TestUnauthenticatedFloodKeepsPinnedReplayState: with requireAuth false,
// a flood of throw-away sender names fills its own pool, which then
// refuses them, and never makes a pinned peer's captured message
// acceptable again; the pinned peer is served throughout.
func TestUnauthenticatedFloodKeepsPinnedReplayState(t *testing.T) {
	g := guarded(t, nil)
	federation.SetUnauthenticatedReplayPool(g.Node, 1<<20, 40)
	pinned, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	captured := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "once")
	if err := relayMsg(t, pinned, captured, "public"); err != nil {
		t.Fatal(err)
	}
	overloaded := 0
	for i := range 60 {
		name := fmt.Sprint("throwaway-", i)
		c, err := dialPeer(t, g, name, "")
		if err != nil {
			t.Fatal(err)
		}
		err = relayMsg(t, c, federation.NewMessage(federation.TypeRequest, name, "a", "public", "flood"), "public")
		switch code(err) {
		case "":
		case federation.CodeOverloaded:
			overloaded++
		default:
			t.Fatalf("flood message %d: %v", i, err)
		}
		c.Close()
		if err := relayMsg(t, pinned, federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "still here"), "public"); err != nil {
			t.Fatalf("the pinned peer during the flood: %v", err)
		}
	}
	if overloaded != 20 {
		t.Errorf("%d of 60 throw-away senders refused; want the 20 beyond the pool's 40", overloaded)
	}
	if err := relayMsg(t, pinned, captured, "public"); code(err) != federation.CodeReplayed {
		t.Fatalf("the pinned peer's captured message after the flood: %v; want REPLAYED", err)
	}
}

// TestSenderNameLookalikes: names that differ from a configured peer only
// in case or whitespace are refused, as are malformed names.
func TestSenderNameLookalikes(t *testing.T) {
	cfg := newConfig(t, "victim", "public")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "signer", Token: "signer-token"}}
	g := start(t, cfg, listen(t), nil)
	for _, name := range []string{"signer", "signer ", "Signer", " SIGNER", "sig\tner", strings.Repeat("s", 4096)} {
		_, err := dialPeer(t, g, name, "")
		if code(err) != gateway.CodeUnauthorized && code(err) != gateway.CodeInvalidRequest || len(errString(err)) > 400 {
			t.Errorf("unauthenticated %q (%d bytes): %v; want UNAUTHORIZED or INVALID_REQUEST, bounded", truncated(fmt.Errorf("%s", name)), len(name), truncated(err))
		}
	}
	if _, err := dialPeer(t, g, "someone-else", ""); err != nil {
		t.Fatalf("an unrelated unauthenticated name: %v", err)
	}
}

// TestWholeRequestSize: maxMessageBytes counts the whole request, ids and
// seal included, not only content and context.
func TestWholeRequestSize(t *testing.T) {
	g := guarded(t, func(c *federation.PeerCredential) { c.MaxMessageBytes = 2000 })
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("i", federation.MaxIDBytes)
	m := federation.NewMessage(federation.TypeRequest, "main-server", id, "public", strings.Repeat("x", 1800))
	m.CorrelationID = id
	if err := relayMsg(t, c, m, "public"); code(err) != gateway.CodeTooLarge || !strings.Contains(err.Error(), "maxMessageBytes") {
		t.Fatalf("1,800 bytes of content in a ~2,300-byte request: %v; want TOO_LARGE naming maxMessageBytes", err)
	}
	if err := relayMsg(t, c, federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "small"), "public"); err != nil {
		t.Fatalf("a small message after: %v", err)
	}
}

// TestSyncedContextBounded: synced context has a per-session and a
// per-sender total; a sync over one is TOO_LARGE, the session keeps what
// it had, and the connection goes on serving.
func TestSyncedContextBounded(t *testing.T) {
	g := guarded(t, nil)
	federation.SetContextLimits(g.Node, 100<<10, 250<<10)
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	sync := func(session string, i int) error {
		m := federation.NewMessage(federation.TypeSync, "main-server", "a", "public", "")
		m.CorrelationID = session
		m.Context = map[string]any{fmt.Sprint("k", i): strings.Repeat("v", 30<<10)}
		return relayMsg(t, c, m, "public")
	}
	var err1 error
	n := 0
	for n = range 10 {
		if err1 = sync("s1", n); err1 != nil {
			break
		}
	}
	if code(err1) != gateway.CodeTooLarge || n != 3 {
		t.Fatalf("sync %d of 30 KiB into one session: %v; want the 4th TOO_LARGE", n+1, err1)
	}
	// The session still reaches the agent as it was, on the same connection.
	m := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "what do you know")
	m.CorrelationID = "s1"
	var reply federation.Message
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: "public", Message: m}, &reply); err != nil {
		t.Fatalf("a request in the session after: %v", err)
	}
	if _, ok := reply.Context["k2"]; !ok || reply.Context["k3"] != nil {
		t.Fatalf("the session after a refused sync holds %d keys; want k0-k2", len(reply.Context))
	}
	for i := range 10 {
		if err = sync(fmt.Sprint("other-", i), i); err != nil {
			break
		}
	}
	if code(err) != gateway.CodeTooLarge || !strings.Contains(err.Error(), "per sender") {
		t.Fatalf("sessions beyond the sender's total: %v; want TOO_LARGE per sender", err)
	}
}

// TestOversizedReplyFailsOneCall: a reply over the frame limit, and a
// request over the server's, fail that call with TOO_LARGE; the
// connection goes on serving.
func TestOversizedReplyFailsOneCall(t *testing.T) {
	cfg := newConfig(t, "victim", "public")
	cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "big", Handler: federation.HandlerConfig{Type: "echo"}})
	big := federation.HandlerFunc(func(context.Context, *federation.Message) (*federation.Answer, error) {
		return &federation.Answer{Content: strings.Repeat("x", 5<<20)}, nil
	})
	g := start(t, cfg, listen(t), map[string]federation.Handler{"big": big})
	c, err := dialPeer(t, g, "caller", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := relayMsg(t, c, federation.NewMessage(federation.TypeRequest, "caller", "a", "big", "hi"), "big"); code(err) != gateway.CodeTooLarge {
		t.Fatalf("a 5 MiB reply: %v; want TOO_LARGE", err)
	}
	if err := relayMsg(t, c, federation.NewMessage(federation.TypeRequest, "caller", "a", "public", strings.Repeat("x", 5<<20)), "public"); code(err) != gateway.CodeTooLarge {
		t.Fatalf("a 5 MiB request: %v; want TOO_LARGE", err)
	}
	if err := relayMsg(t, c, federation.NewMessage(federation.TypeRequest, "caller", "a", "public", "small"), "public"); err != nil {
		t.Fatalf("the same connection after: %v", err)
	}
}

// TestDynamicPeerLimits: register_peer's fields have length limits and
// the number of dynamic peers is capped (federation.maxDynamicPeers).
func TestDynamicPeerLimits(t *testing.T) {
	cfg := newConfig(t, "main", "")
	cfg.Federation.MaxDynamicPeers = 3
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "")
	reg := func(id, extra string) error {
		_, err := tool(t, op, fmt.Sprintf(`{"action":"register_peer","peerId":%q,"peerName":"n","peerUrl":"ws://127.0.0.1:1","peerAgentId":"a"%s}`, id, extra))
		return err
	}
	long := strings.Repeat("x", 32<<10)
	for _, tt := range []struct{ name, id, extra, field string }{
		{"long id", long, "", "peerId"},
		{"id with a space", "a b", "", "peerId"},
		{"long name", "p", fmt.Sprintf(`,"peerName":%q`, long), "peerName"},
		{"long description", "p", fmt.Sprintf(`,"peerDescription":%q`, long), "peerDescription"},
		{"long capability", "p", fmt.Sprintf(`,"peerCapabilities":[%q]`, long), "peerCapabilities[0]"},
		{"many capabilities", "p", `,"peerCapabilities":[` + strings.Repeat(`"c",`, 100) + `"c"]`, "peerCapabilities"},
		{"long token", "p", fmt.Sprintf(`,"peerToken":%q`, long), "peerToken"},
		{"long agent id", "p", fmt.Sprintf(`,"peerAgentId":%q`, long), "peerAgentId"},
		{"long url", "p", fmt.Sprintf(`,"peerUrl":"ws://127.0.0.1:1/%s"`, long), "peerUrl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := reg(tt.id, tt.extra)
			if code(err) != gateway.CodeInvalidParams || !strings.Contains(err.Error(), tt.field) || len(err.Error()) > 600 {
				t.Fatalf("got %v; want a bounded INVALID_PARAMS naming %s", truncated(err), tt.field)
			}
		})
	}
	for i := range 3 {
		if err := reg(fmt.Sprint("peer-", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg("peer-3", ""); err == nil || !strings.Contains(err.Error(), "maxDynamicPeers") {
		t.Fatalf("a 4th dynamic peer with maxDynamicPeers 3: %v; want a refusal naming federation.maxDynamicPeers", err)
	}
	mustTool(t, op, `{"action":"unregister_peer","peerId":"peer-0"}`)
	if err := reg("peer-3", ""); err != nil {
		t.Fatalf("after unregistering one: %v", err)
	}
}

// TestDurableRedeliveryAfterRestart: a durable message handled before a
// restart, redelivered after it with a new stamp as an outbox does, gets
// its kept reply without running the agent again; replayed verbatim, it is
// refused.
func TestDurableRedeliveryAfterRestart(t *testing.T) {
	cfg := newConfig(t, "victim", "")
	cfg.Agents = []federation.AgentConfig{{ID: "counter", Handler: federation.HandlerConfig{Type: "echo"}}}
	var runs atomic.Int64
	counter := federation.HandlerFunc(func(_ context.Context, m *federation.Message) (*federation.Answer, error) {
		return &federation.Answer{Content: fmt.Sprint("run ", runs.Add(1))}, nil
	})
	g := start(t, cfg, listen(t), map[string]federation.Handler{"counter": counter})
	deliver := func(g *gw, m *federation.Message) (*federation.Message, error) {
		c, err := dialPeer(t, g, "sender", "")
		if err != nil {
			t.Fatal(err)
		}
		var reply federation.Message
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: "counter", Message: m, Durable: true}, &reply)
		return &reply, err
	}
	m := federation.NewMessage(federation.TypeRequest, "sender", "a", "counter", "once")
	first, err := deliver(g, m)
	if err != nil {
		t.Fatal(err)
	}
	g = restarted(t, g)
	if _, err := deliver(g, m); code(err) != federation.CodeReplayed {
		t.Errorf("the durable message replayed verbatim after a restart: %v; want REPLAYED", err)
	}
	again := *m
	again.Timestamp = time.Now().UnixMilli()
	for again.Timestamp <= m.Timestamp { // a redelivery is stamped when it is sent
		again.Timestamp = time.Now().UnixMilli()
	}
	reply, err := deliver(g, &again)
	if err != nil || reply.MessageID != first.MessageID || reply.Content != "run 1" || runs.Load() != 1 {
		t.Fatalf("redelivery after a restart: %v, reply %q %q, %d runs; want the kept reply %q and 1 run", err, reply.MessageID, reply.Content, runs.Load(), first.MessageID)
	}
}
