package federation_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// peerState is list_peers' entry for id on g: "" when absent, else
// "connected" or "down".
func peerState(g *gw, id string) string {
	for _, p := range g.ListPeers().Peers {
		if p.ID == id {
			if p.Connected {
				return "connected"
			}
			return "down"
		}
	}
	return ""
}

func waitPeerState(t *testing.T, g *gw, id, want string) {
	t.Helper()
	tstest.WaitFor(t, 10*time.Second, func() error {
		if got := peerState(g, id); got != want {
			return fmt.Errorf("%s on %s is %q, want %q", id, g.ServerID(), got, want)
		}
		return nil
	})
}

// TestNATSDirectoryPresence: the directory is the KV bucket's watched
// entries; a site whose gateways are all gone expires from it and its
// agents are listed as not connected (query_capabilities then fails), and
// a gateway of it that comes back is connected again.
func TestNATSDirectoryPresence(t *testing.T) {
	federation.SetNATSPresenceTTL(t, time.Second)
	hub, url := natsHub(t, "hub", "")
	b := natsMember(t, url, "site-b", "data", "sql")
	waitPeerState(t, hub, "data@site-b", "connected")

	b.stop(t)
	waitPeerState(t, hub, "data@site-b", "down")
	if _, err := hub.QueryCapabilities(context.Background(), "data@site-b", 0); code(err) != "PEER_UNAVAILABLE" {
		t.Errorf("query_capabilities of a site gone: %v; want PEER_UNAVAILABLE", err)
	}

	natsMember(t, url, "site-b", "data", "sql")
	waitPeerState(t, hub, "data@site-b", "connected")
}

// rawNATS connects to url as a bare NATS client (user and password when
// user is set), collecting the asynchronous errors the server reports.
func rawNATS(t *testing.T, url, user, password string) (*nats.Conn, jetstream.JetStream, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	opts := []nats.Option{nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	})}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password), nats.CustomInboxPrefix("_INBOX_"+user))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, errs
}

func putEntry(t *testing.T, js jetstream.JetStream, key string, entry []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "$KV.AF_REGISTRY."+key, entry); err != nil {
		t.Fatalf("put directory entry %s: %v", key, err)
	}
}

func newIdentity(t *testing.T) *federation.Identity {
	t.Helper()
	id, err := federation.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNATSDirectoryAuthenticated: a gateway cannot announce agents under
// another serverId. With the derived permissions the NATS server refuses
// the put; on a NATS system without them, an entry for a site with a
// pinned publicKey must be signed by that key, and any entry must name
// the serverId of its key.
func TestNATSDirectoryAuthenticated(t *testing.T) {
	t.Run("derived permissions", func(t *testing.T) {
		hub, url := grantedHub(t, true, "")
		nc, js, errs := rawNATS(t, url, "site-b", "token-b")
		id := newIdentity(t)
		if err := nc.Publish("$KV.AF_REGISTRY.site-c", federation.NATSEntry(id, "site-c", "ghost")); err != nil {
			t.Fatal(err)
		}
		putEntry(t, js, "site-b", federation.NATSEntry(id, "site-b", "marker")) // its own: allowed
		waitPeerState(t, hub, "marker@site-b", "connected")                     // after the forged put, in order
		if got := peerState(hub, "ghost@site-c"); got != "" {
			t.Errorf("site-b announcing under site-c: ghost@site-c is %s on the hub; want absent", got)
		}
		// Nor may it write or read another gateway's synced context.
		for _, subject := range []string{"$KV.AF_CTX_site-c.site-b.default", "$JS.API.DIRECT.GET.KV_AF_CTX_site-c.$KV.AF_CTX_site-c.site-b.default"} {
			if err := nc.Publish(subject, nil); err != nil {
				t.Fatal(err)
			}
		}
		var refused []string
		for range 3 {
			select {
			case err := <-errs:
				refused = append(refused, err.Error())
			case <-time.After(5 * time.Second):
			}
		}
		for _, subject := range []string{"$KV.AF_REGISTRY.site-c", "$KV.AF_CTX_site-c.site-b.default", "$JS.API.DIRECT.GET.KV_AF_CTX_site-c."} {
			if !strings.Contains(strings.Join(refused, "\n"), `Publish to "`+subject) {
				t.Errorf("site-b's publish to %s was not refused; refusals: %v", subject, refused)
			}
		}
	})

	t.Run("signatures without permissions", func(t *testing.T) {
		_, url := natsHub(t, "hub", "")
		real := newIdentity(t)
		cfg := natsConfig(t, url, "observer", "")
		cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "site-b", Token: "token-b", PublicKey: real.Public().SigningKey}}
		obs := start(t, cfg, listen(t), nil)

		_, js, _ := rawNATS(t, url, "", "")
		impostor := newIdentity(t)
		putEntry(t, js, "site-b", federation.NATSEntry(impostor, "site-b", "ghost")) // not the pinned key
		putEntry(t, js, "site-y", federation.NATSEntry(impostor, "site-x", "ghost")) // not its key's serverId
		putEntry(t, js, "site-z", federation.NATSEntry(impostor, "site-z", "marker"))
		waitPeerState(t, obs, "marker@site-z", "connected") // after the others, in order
		var ids []string
		for _, p := range obs.ListPeers().Peers {
			ids = append(ids, p.ID)
		}
		if slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, "ghost@") }) {
			t.Errorf("forged entries listed: %v", ids)
		}

		putEntry(t, js, "site-b", federation.NATSEntry(real, "site-b", "data"))
		waitPeerState(t, obs, "data@site-b", "connected")
	})
}
