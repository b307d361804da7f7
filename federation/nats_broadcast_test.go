package federation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// broadcast over NATS is one publish on af.bcast.<sender>, answered by one
// gateway per site: every member gets its own result, an agent the
// sender's grant excludes answers FORBIDDEN, and a member that does not
// answer in time is a timeout. The gateways join an embedded server with
// the permissions derived from their grants.
func TestNATSBroadcastOnePublish(t *testing.T) {
	cfg := newConfig(t, "hub", "public", "search")
	cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "secret", Capabilities: []string{"vault"}, Handler: federation.HandlerConfig{Type: "echo"}})
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{
		{ServerID: "site-b", Token: "token-b", AllowAgents: []string{"public"}},
		{ServerID: "site-c", Token: "token-c"}, {ServerID: "site-d", Token: "token-d"}, {ServerID: "site-t", Token: "token-t"},
	}
	cfg.Federation.Transport = federation.TransportNATS
	cfg.NATS.Embedded = &federation.NATSEmbeddedConfig{Listen: "127.0.0.1:0"}
	hub := start(t, cfg, listen(t), nil)
	url := hub.NATSClientURL()

	member := func(serverID, token, agent string, h federation.Handler) *gw {
		c := newConfig(t, serverID, agent)
		c.Federation.Transport = federation.TransportNATS
		c.NATS.URL, c.NATS.Token = url, token
		var extra map[string]federation.Handler
		if h != nil {
			extra = map[string]federation.Handler{agent: h}
		}
		return start(t, c, listen(t), extra)
	}
	b := member("site-b", "token-b", "", nil)
	member("site-c", "token-c", "helper", nil)
	member("site-d", "token-d", "slow", federation.HandlerFunc(func(ctx context.Context, _ *federation.Message) (*federation.Answer, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}))

	// site-t, a gateway of the system with no agents, counts the publishes.
	nc, err := nats.Connect(url, nats.UserInfo("site-t", "token-t"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	seen, err := nc.QueueSubscribeSync("af.bcast.*", "af.gw.site-t")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{"public@hub": "", "secret@hub": gateway.CodeForbidden, "helper@site-c": "", "slow@site-d": gateway.CodeTimeout}
	tstest.WaitFor(t, 10*time.Second, func() error { return knows(b, want) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	results, err := b.Broadcast(ctx, federation.BroadcastRequest{Message: "all", MessageOptions: federation.MessageOptions{TimeoutMs: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("broadcast took %v; want about its 1 s timeout", d)
	}
	if len(results) != len(want) {
		t.Fatalf("results %+v; want one per member of %v", results, want)
	}
	for _, r := range results {
		got := ""
		if r.Error != nil {
			got = r.Error.Code
		}
		if c, ok := want[r.PeerID]; !ok || got != c || (c == "" && (r.Status != federation.StatusOK || r.Response == nil)) ||
			(c == gateway.CodeTimeout && r.Status != federation.StatusTimeout) {
			t.Errorf("result for %s: status %s, error %v; want code %q", r.PeerID, r.Status, r.Error, want[r.PeerID])
		}
	}
	if _, err := seen.NextMsg(time.Second); err != nil {
		t.Fatalf("no publish on af.bcast.*: %v", err)
	}
	if m, err := seen.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("a second publish on %s; want the broadcast as one", m.Subject)
	}
}

// knows says whether g lists every peer in want.
func knows(g *gw, want map[string]string) error {
	have := map[string]bool{}
	for _, p := range g.ListPeers().Peers {
		have[p.ID] = true
	}
	for id := range want {
		if !have[id] {
			return fmt.Errorf("%s not among the peers %v", id, have)
		}
	}
	return nil
}
