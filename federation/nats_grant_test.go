package federation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// grantedHub is a gateway "hub" embedding nats-server, with agents public
// (search) and secret (vault), and gateway.auth.peers grants for site-b
// (allowAgents public) and site-c (everything).
func grantedHub(t *testing.T, embedded bool, url string) (*gw, string) {
	t.Helper()
	if embedded {
		url = ""
	}
	cfg := natsConfig(t, url, "hub", "public", "search")
	cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "secret", Capabilities: []string{"vault"}, Handler: federation.HandlerConfig{Type: "echo"}})
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{
		{ServerID: "site-b", Token: "token-b", AllowAgents: []string{"public"}},
		{ServerID: "site-c", Token: "token-c"},
	}
	g := start(t, cfg, listen(t), nil)
	return g, g.NATSClientURL()
}

// natsMemberToken joins the NATS system at url as serverId with token.
func natsMemberToken(t *testing.T, url, serverID, token string) *gw {
	t.Helper()
	cfg := natsConfig(t, url, serverID, "")
	cfg.NATS.Token = token
	return start(t, cfg, listen(t), nil)
}

// sendCode is the error code of a send (from the error or the result).
func sendCode(t *testing.T, g *gw, peerID string, durable bool) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := g.Send(ctx, federation.SendRequest{PeerID: peerID, Message: "hi", MessageOptions: federation.MessageOptions{Durable: durable, TimeoutMs: 8000}})
	switch {
	case err != nil:
		return code(err), err.Error()
	case r.Error != nil:
		return r.Error.Code, r.Error.Message
	}
	return "", r.Status
}

// The grants of gateway.auth.peers hold over NATS with the refusal a
// WebSocket peer gets: on an embedded server through the NATS users and
// subject permissions derived from them (the request never reaches the
// agent), on a NATS system without them by the receiving gateway itself,
// which knows the sender from the subject.
func TestNATSGrantsHold(t *testing.T) {
	// Over WebSocket, for comparison.
	ws := guarded(t, func(c *federation.PeerCredential) { c.AllowAgents = []string{"public"} })
	c, err := dialPeer(t, ws, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	wsErr := relayMsg(t, c, federation.NewMessage(federation.TypeRequest, "main-server", "a", "secret", "x"), "secret")
	if code(wsErr) != gateway.CodeForbidden {
		t.Fatalf("over WebSocket: %v; want FORBIDDEN", wsErr)
	}

	t.Run("embedded server permissions", func(t *testing.T) {
		_, url := grantedHub(t, true, "")
		b := natsMemberToken(t, url, "site-b", "token-b")
		cg := natsMemberToken(t, url, "site-c", "token-c")
		if got, msg := sendCode(t, b, "public@hub", false); got != "" {
			t.Fatalf("site-b to a granted agent: %s %s; want ok", got, msg)
		}
		for _, durable := range []bool{false, true} {
			if got, msg := sendCode(t, b, "secret@hub", durable); got != code(wsErr) || !strings.Contains(msg, "allowAgents") {
				t.Errorf("site-b to an agent not granted (durable %v): %s %q; want %s naming allowAgents, as over WebSocket", durable, got, msg, code(wsErr))
			}
		}
		if got, msg := sendCode(t, cg, "secret@hub", false); got != "" {
			t.Errorf("site-c, granted everything: %s %s; want ok", got, msg)
		}
	})

	t.Run("receiving gateway", func(t *testing.T) {
		// hub joins an open NATS system: nothing but hub enforces its grants.
		_, url := natsHub(t, "relay", "")
		grantedHub(t, false, url)
		b := natsMemberToken(t, url, "site-b", "")
		if got, msg := sendCode(t, b, "public@hub", false); got != "" {
			t.Fatalf("site-b to a granted agent: %s %s; want ok", got, msg)
		}
		if got, msg := sendCode(t, b, "secret@hub", false); got != code(wsErr) || !strings.Contains(msg, "allowAgents") {
			t.Errorf("site-b to an agent not granted: %s %q; want %s naming allowAgents, as over WebSocket", got, msg, code(wsErr))
		}
	})
}

// On an embedded server with grants, a gateway can neither publish under
// another's name nor take another's work: it may subscribe to its own
// agents' subjects only in its own queue group; a connection without a
// configured user is refused.
func TestNATSSubjectPermissions(t *testing.T) {
	_, url := grantedHub(t, true, "")
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("a connection without a user was accepted")
	}
	nc, err := nats.Connect(url, nats.UserInfo("site-c", "token-c"), nats.PermissionErrOnSubscribe(true), nats.CustomInboxPrefix("_INBOX_site-c"),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the violations are checked below, not printed
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	for _, tt := range []struct{ subject, queue string }{
		{"af.agent.hub.public.*", "af.gw.hub"}, // hub's work, in hub's queue group
		{"af.agent.hub.>", ""},                 // hub's requests, all of them
		{"af.agent.site-c.>", "af.gw.hub"},     // its own subjects, in another group
		{"af.agent.site-c.>", ""},              // its own subjects outside its group
		{"_INBOX.>", ""},                       // others' replies
		{"$JS.API.CONSUMER.MSG.NEXT.AF_DURABLE_hub.*", ""},
	} {
		sub, err := nc.QueueSubscribeSync(tt.subject, tt.queue)
		if err == nil {
			_, err = sub.NextMsg(2 * time.Second)
		}
		if err == nil || !strings.Contains(err.Error(), "ermissions") {
			t.Errorf("site-c subscribing %q queue %q: %v; want a permissions violation", tt.subject, tt.queue, err)
		}
	}
	own, err := nc.QueueSubscribeSync("af.agent.site-c.>", "af.gw.site-c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.NextMsg(200 * time.Millisecond); err != nats.ErrTimeout {
		t.Errorf("site-c subscribing its own subjects in its own group: %v; want allowed (a timeout)", err)
	}

	// Publishing under site-b's name is refused by the server.
	nc2, _, errs := rawNATS(t, url, "site-c", "token-c")
	if err := nc2.Publish("af.agent.hub.public.site-b", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), `Publish to "af.agent.hub.public.site-b"`) {
			t.Errorf("publishing as site-b: %v; want a publish permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("publishing as site-b was not refused")
	}
}
