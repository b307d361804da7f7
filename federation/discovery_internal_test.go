package federation

import (
	"fmt"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/discovery"
)

// TestAcceptRule: what an announcement claims is checked before a rule
// accepts it. A fingerprint rule needs the advertised key to have that
// fingerprint; a serverId rule refuses a name two keys claim at once.
func TestAcceptRule(t *testing.T) {
	announce := func() discovery.Gateway {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		pub := id.Public()
		return discovery.Gateway{ServerID: "b-server", URL: "ws://127.0.0.1:1", SigningKey: pub.SigningKey, Fingerprint: pub.Fingerprint}
	}
	real, impostor := announce(), announce()
	forged := impostor
	forged.Fingerprint = real.Fingerprint // claims real's fingerprint, holds another key
	copied := real
	copied.URL = "ws://127.0.0.2:1" // real's announcement, repeated with another URL

	tests := []struct {
		name   string
		rules  []AcceptRule
		g      discovery.Gateway
		seen   []discovery.Gateway
		accept bool
		reason string
	}{
		{"fingerprint", []AcceptRule{{Fingerprint: real.Fingerprint}}, real, nil, true, ""},
		{"fingerprint, upper case", []AcceptRule{{Fingerprint: strings.ToUpper(real.Fingerprint)}}, real, nil, true, ""},
		{"impostor's own key", []AcceptRule{{ServerID: "b-server", Fingerprint: real.Fingerprint}}, impostor, nil, false, "no federation.discovery.accept rule matches"},
		{"forged fingerprint", []AcceptRule{{Fingerprint: real.Fingerprint}}, forged, nil, false, "its key does not match its fingerprint"},
		{"fingerprint, copied elsewhere", []AcceptRule{{Fingerprint: real.Fingerprint}}, real, []discovery.Gateway{real, copied}, false, "2 announcements of serverId \"b-server\" with this key give different URLs"},
		{"fingerprint, impostor also there", []AcceptRule{{Fingerprint: real.Fingerprint}}, real, []discovery.Gateway{real, impostor}, true, ""},
		{"serverId", []AcceptRule{{ServerID: "b-server"}}, real, []discovery.Gateway{real}, true, ""},
		{"serverId claimed twice", []AcceptRule{{ServerID: "b-server"}}, real, []discovery.Gateway{real, impostor}, false, "2 gateways claim serverId \"b-server\"; accept it by fingerprint"},
		{"other serverId", []AcceptRule{{ServerID: "c-server"}}, real, nil, false, "no federation.discovery.accept rule matches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Node{}
			n.cfg.Federation.Discovery.Accept = tt.rules
			r, why := n.acceptRule(tt.g, tt.seen)
			if (r != nil) != tt.accept || !strings.Contains(why, tt.reason) {
				t.Fatalf("acceptRule = %v, %q; want accepted %v, reason containing %q", r, why, tt.accept, tt.reason)
			}
		})
	}
}

// TestAcceptedDiscoveredPeersAreCapped: one gateway advertising many
// agents cannot make more peers than federation.maxDynamicPeers.
func TestAcceptedDiscoveredPeersAreCapped(t *testing.T) {
	var all []discoveredPeer
	for i := range 5 {
		p := discoveredPeer{PeerConfig: PeerConfig{ID: fmt.Sprintf("agent-%d", i)}, info: DiscoveredInfo{Accepted: i != 1}}
		all = append(all, p)
	}
	var got []string
	for _, p := range capAccepted(all, 2) {
		got = append(got, fmt.Sprintf("%s=%v", p.ID, p.info.Accepted && p.IsEnabled()))
	}
	want := "agent-0=true agent-1=false agent-2=true agent-3=false agent-4=false"
	if strings.Join(got, " ") != want {
		t.Fatalf("capAccepted = %v, want %s", got, want)
	}
	if r := all[4].info.Reason; !strings.Contains(r, "over federation.maxDynamicPeers") {
		t.Fatalf("reason %q", r)
	}
}
