package federation_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// withMDNS turns on mDNS discovery on loopback for cfg, with service (one
// per test, so that concurrent tests never see each other's gateways) and
// a short interval.
func withMDNS(cfg *federation.Config, service string) *federation.Config {
	cfg.Federation.Discovery.MDNS = federation.MDNSConfig{Enabled: true, Service: service, Interface: "lo", IntervalMs: 150}
	return cfg
}

func uniqueService() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "_af" + hex.EncodeToString(b) + "._tcp"
}

func peerInfo(n *federation.Node, id string) *federation.PeerInfo {
	for _, p := range n.ListPeers().Peers {
		if p.ID == id {
			return &p
		}
	}
	return nil
}

// TestDiscoveredGatewaysAreUsedOnlyWhenAccepted runs three real gateways
// on loopback, in a private network namespace: a accepts b by serverId and
// key fingerprint (presenting the token b requires), and no rule accepts
// c. Both appear in a's list_peers as discovered while a runs; only b is
// sent to and delegated to; and b's leaving shows without a restart.
func TestDiscoveredGatewaysAreUsedOnlyWhenAccepted(t *testing.T) {
	if !tstest.PrivateNetwork(t) {
		return
	}
	service := uniqueService()
	cfgB := withMDNS(newConfig(t, "b-server", "b-agent", "web-search@2.1.0"), service)
	cfgB.Federation.RequireAuth = true
	cfgB.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a-server", Token: "a-to-b"}}
	cfgB.Gateway.Signing.Sign = true // a pins b's key: b's replies must be signed
	// The key b will have, made before b runs.
	idB, err := federation.LoadIdentity(cfgB.Storage.Dir)
	if err != nil {
		t.Fatal(err)
	}
	cfgA := withMDNS(newConfig(t, "a-server", ""), service)
	cfgA.Federation.Discovery.Accept = []federation.AcceptRule{{ServerID: "b-server", Fingerprint: idB.Public().Fingerprint, Token: "a-to-b"}}
	a := start(t, cfgA, listen(t), nil)
	if n := a.ListPeers().TotalPeers; n != 0 {
		t.Fatalf("a lists %d peers before any other gateway runs", n)
	}
	// b and c appear while a runs.
	b := start(t, cfgB, listen(t), nil)
	start(t, withMDNS(newConfig(t, "c-server", "c-agent", "web-search@2.5.0"), service), listen(t), nil)

	tstest.WaitFor(t, 10*time.Second, func() error {
		pb, pc := peerInfo(a.Node, "b-agent@b-server"), peerInfo(a.Node, "c-agent@c-server")
		if pb == nil || pc == nil {
			return fmt.Errorf("list_peers %+v lacks b-agent@b-server or c-agent@c-server", a.ListPeers().Peers)
		}
		return nil
	})
	pb, pc := peerInfo(a.Node, "b-agent@b-server"), peerInfo(a.Node, "c-agent@c-server")
	if pb.Source != "discovered" || !pb.Enabled || pb.Discovered == nil || !pb.Discovered.Accepted || pb.URL != b.URL() ||
		pb.Discovered.Fingerprint != b.Identity().Fingerprint || strings.Join(pb.Capabilities, ",") != "web-search@2.1.0" {
		t.Fatalf("b as a lists it: %+v %+v", pb, pb.Discovered)
	}
	if pc.Source != "discovered" || pc.Enabled || pc.Discovered == nil || pc.Discovered.Accepted || !strings.Contains(pc.Discovered.Reason, "no federation.discovery.accept rule") {
		t.Fatalf("c as a lists it: %+v %+v", pc, pc.Discovered)
	}

	ctx := context.Background()
	res, err := a.Send(ctx, federation.SendRequest{PeerID: "b-agent@b-server", Message: "hello b"})
	if err != nil || res.Status != federation.StatusOK || res.Response.FromServer != "b-server" {
		t.Fatalf("send to accepted b: %+v %v", res, err)
	}
	if p := peerInfo(a.Node, "b-agent@b-server"); !p.Connected || p.Health.State == federation.HealthUnknown {
		t.Errorf("after a send, b's health is tracked: connected %v, %+v", p.Connected, p.Health)
	}
	d, err := a.Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"web-search@^2"}, Task: "find"})
	if err != nil || d.PeerID != "b-agent@b-server" || len(d.Candidates) != 1 {
		t.Fatalf("delegate among discovered: %+v %v; want b only (c is not accepted)", d, err)
	}
	_, err = a.Send(ctx, federation.SendRequest{PeerID: "c-agent@c-server", Message: "hello c"})
	if code(err) != gateway.CodeForbidden || !strings.Contains(err.Error(), "discovered by mDNS but is not used") {
		t.Fatalf("send to unaccepted c: %v; want FORBIDDEN saying why", err)
	}
	if _, err := a.UnregisterPeer("b-agent@b-server"); code(err) != federation.CodeStaticPeer {
		t.Errorf("unregister a discovered peer: %v; want STATIC_PEER", err)
	}

	b.stop(t) // b leaves
	tstest.WaitFor(t, 10*time.Second, func() error {
		if p := peerInfo(a.Node, "b-agent@b-server"); p != nil {
			return fmt.Errorf("b-agent@b-server still listed after b stopped: %+v", p)
		}
		return nil
	})
	if _, err := a.Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"web-search"}, Task: "find"}); code(err) != federation.CodeNoCapablePeer {
		t.Fatalf("delegate after b left: %v; want NO_CAPABLE_PEER (c is still not accepted)", err)
	}
}

// TestDiscoveryWithoutInterfaceIsAConfigError: mDNS never picks an
// interface by itself.
func TestDiscoveryWithoutInterfaceIsAConfigError(t *testing.T) {
	cfg := newConfig(t, "a-server", "")
	cfg.Federation.Discovery.MDNS.Enabled = true
	cfg.ApplyDefaults()
	_, err := federation.New(cfg, federation.Options{})
	if err == nil || !strings.Contains(err.Error(), "federation.discovery.mdns.interface: required when mdns is enabled") {
		t.Fatalf("New with mdns on and no interface: %v", err)
	}
}
