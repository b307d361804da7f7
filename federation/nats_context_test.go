package federation_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// natsSite is the NATS system and the gateways of one test: receivers of
// site "site-r" serving agent "worker", and senders of site "site-s".
// With grants, the hub embeds the server with a NATS user per site and
// the derived permissions; without, the server is open.
type natsSite struct {
	t      *testing.T
	url    string
	grants bool
}

func newNATSSite(t *testing.T, grants bool) *natsSite {
	cfg := natsConfig(t, "", "hub", "")
	if grants {
		cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "site-r", Token: "token-r"}, {ServerID: "site-s", Token: "token-s"}}
	}
	hub := start(t, cfg, listen(t), nil)
	return &natsSite{t: t, url: hub.NATSClientURL(), grants: grants}
}

// gateway starts a gateway of serverId; a receiver serves "worker", whose
// answer names the gateway (name) and echoes the context it was given.
func (s *natsSite) gateway(serverID, name string) *gw {
	cfg := natsConfig(s.t, s.url, serverID, "")
	if s.grants {
		cfg.NATS.Token = "token-" + strings.TrimPrefix(serverID, "site-")
	}
	var extra map[string]federation.Handler
	if serverID == "site-r" {
		cfg.Agents = []federation.AgentConfig{{ID: "worker", Handler: federation.HandlerConfig{Type: "echo"}}}
		extra = map[string]federation.Handler{"worker": federation.HandlerFunc(func(_ context.Context, m *federation.Message) (*federation.Answer, error) {
			return &federation.Answer{Content: name, Context: m.Context}, nil
		})}
	}
	return start(s.t, cfg, listen(s.t), extra)
}

func syncCtx(t *testing.T, g *gw, session string, data map[string]any) *federation.SyncResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := g.SyncContext(ctx, federation.SyncRequest{PeerID: "worker@site-r", SyncData: data, MessageOptions: federation.MessageOptions{CorrelationID: session}})
	if err != nil {
		t.Fatalf("sync_context: %v", err)
	}
	return r
}

// seenBy sends in session until receiver name answers, and returns the
// context it handed its agent.
func seenBy(t *testing.T, g *gw, session, name string) map[string]any {
	t.Helper()
	var got map[string]any
	tstest.WaitFor(t, 10*time.Second, func() error {
		r, err := g.Send(context.Background(), federation.SendRequest{PeerID: "worker@site-r", Message: "what do you know",
			MessageOptions: federation.MessageOptions{CorrelationID: session, TimeoutMs: 5000}})
		if err != nil || r.Status != federation.StatusOK {
			return fmt.Errorf("send: %+v, %v", r, err)
		}
		if r.Response.Content != name {
			return fmt.Errorf("answered by %s, not %s", r.Response.Content, name)
		}
		got = r.Response.Context
		return nil
	})
	return got
}

// TestNATSSyncedContextShared: the context a site receives by
// sync_context is one, in its JetStream KV bucket: merged by whichever of
// its gateways takes each sync, its version the KV revision, handed to
// the agent by whichever gateway serves a later request, and still there
// when every gateway that received it has gone.
func TestNATSSyncedContextShared(t *testing.T) {
	for _, grants := range []bool{false, true} {
		t.Run(fmt.Sprintf("grants=%v", grants), func(t *testing.T) {
			s := newNATSSite(t, grants)
			r1 := s.gateway("site-r", "r1")
			r2 := s.gateway("site-r", "r2")
			sender := s.gateway("site-s", "")

			v1 := syncCtx(t, sender, "s1", map[string]any{"project": "p-1", "phase": "draft"})
			v2 := syncCtx(t, sender, "s1", map[string]any{"phase": "analysis", "files": []any{"a.csv"}})
			if v1.Status != federation.StatusOK || v2.Status != federation.StatusOK || v1.Version <= 0 || v2.Version <= v1.Version {
				t.Fatalf("two syncs: %+v then %+v; want ok with increasing versions", v1, v2)
			}
			want := map[string]any{"project": "p-1", "phase": "analysis", "files": []any{"a.csv"}}
			for _, name := range []string{"r1", "r2"} {
				if diff := cmp.Diff(want, seenBy(t, sender, "s1", name)); diff != "" {
					t.Errorf("context through %s (-want +got):\n%s", name, diff)
				}
			}

			// The version is the KV revision of the session's key.
			user, password := "", ""
			if s.grants {
				user, password = "site-r", "token-r"
			}
			_, js, _ := rawNATS(t, s.url, user, password)
			kv, err := js.KeyValue(context.Background(), "AF_CTX_site-r")
			if err != nil {
				t.Fatal(err)
			}
			e, err := kv.Get(context.Background(), "site-s.s1")
			if err != nil || e.Revision() != uint64(v2.Version) {
				t.Errorf("KV entry site-s.s1: %v, %v; want revision %d", e, err, v2.Version)
			}

			// Both receivers gone; a new one (its own empty storage.dir)
			// has the session.
			r1.stop(t)
			r2.stop(t)
			s.gateway("site-r", "r3")
			if diff := cmp.Diff(want, seenBy(t, sender, "s1", "r3")); diff != "" {
				t.Errorf("context after the restart (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNATSSyncedContextBounded: the per-sender bound holds for the site,
// whichever of its gateways takes each sync, with the refusal a
// WebSocket sender gets (TOO_LARGE); the session keeps what it had.
func TestNATSSyncedContextBounded(t *testing.T) {
	s := newNATSSite(t, false)
	r1 := s.gateway("site-r", "r1")
	r2 := s.gateway("site-r", "r2")
	for _, g := range []*gw{r1, r2} {
		federation.SetContextLimits(g.Node, 100<<10, 70<<10)
	}
	sender := s.gateway("site-s", "")
	big := strings.Repeat("v", 30<<10)
	for i := range 2 {
		if r := syncCtx(t, sender, fmt.Sprint("s", i), map[string]any{"k": big}); r.Status != federation.StatusOK {
			t.Fatalf("sync of 30 KiB into session s%d: %+v; want ok", i, r)
		}
	}
	r := syncCtx(t, sender, "s2", map[string]any{"k": big})
	if r.Error == nil || r.Error.Code != gateway.CodeTooLarge {
		t.Fatalf("a third 30 KiB session over the 70 KiB per sender: %+v; want TOO_LARGE", r)
	}
	for _, name := range []string{"r1", "r2"} {
		if got := seenBy(t, sender, "s2", name); len(got) != 0 {
			t.Errorf("refused session s2 through %s has context %v; want none", name, got)
		}
	}
}

// TestNATSSyncedContextConcurrent: syncs into one session that two
// gateways of the site merge at once all land (compare-and-swap, merged
// again on the winner's result).
func TestNATSSyncedContextConcurrent(t *testing.T) {
	s := newNATSSite(t, false)
	s.gateway("site-r", "r1")
	s.gateway("site-r", "r2")
	senders := []*gw{s.gateway("site-s", ""), s.gateway("site-s", "")}
	const each = 25
	var wg sync.WaitGroup
	for i, g := range senders {
		for j := range each {
			wg.Go(func() {
				r, err := g.SyncContext(context.Background(), federation.SyncRequest{PeerID: "worker@site-r",
					SyncData: map[string]any{fmt.Sprintf("k%d-%d", i, j): j}, MessageOptions: federation.MessageOptions{CorrelationID: "shared"}})
				if err != nil || r.Status != federation.StatusOK {
					t.Errorf("sync %d-%d: %+v, %v", i, j, r, err)
				}
			})
		}
	}
	wg.Wait()
	got := seenBy(t, senders[0], "shared", "r1")
	if len(got) != len(senders)*each {
		t.Errorf("session has %d keys after %d concurrent syncs; want every one: %v", len(got), len(senders)*each, got)
	}
}
