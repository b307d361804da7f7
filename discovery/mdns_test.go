package discovery

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// uniqueService returns a DNS-SD service type no other test uses, so that
// concurrent tests do not see each other's gateways.
func uniqueService(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "_af" + hex.EncodeToString(b) + "._tcp"
}

func TestTXTRoundTrip(t *testing.T) {
	g := Gateway{ServerID: "research-server", URL: "ws://127.0.0.1:18790", SigningKey: "ed25519:abc", Fingerprint: "3f:a1",
		Agents: []Agent{{ID: "agent-research-01", Capabilities: []string{"web-search@2.1.0", "summarization"}}, {ID: "idle", Capabilities: []string{}}}}
	txt, dropped := encodeTXT(g)
	want := []string{"txtvers=1", "id=research-server", "url=ws://127.0.0.1:18790", "fp=3f:a1", "key=ed25519:abc",
		"agent=agent-research-01", "cap=web-search@2.1.0", "cap=summarization", "agent=idle"}
	if d := cmp.Diff(want, txt); d != "" || dropped != 0 {
		t.Fatalf("encodeTXT (-want +got), %d dropped:\n%s", dropped, d)
	}
	got, err := decodeTXT(txt)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(g, got); d != "" {
		t.Fatalf("decodeTXT(encodeTXT(g)) (-want +got):\n%s", d)
	}
}

func TestTXTBounds(t *testing.T) {
	big := Gateway{ServerID: "s", URL: "ws://h:1"}
	for i := range 40 {
		a := Agent{ID: fmt.Sprintf("agent-%02d", i)}
		for j := range 70 {
			a.Capabilities = append(a.Capabilities, fmt.Sprintf("capability-%02d", j))
		}
		big.Agents = append(big.Agents, a)
	}
	big.Agents[0].Capabilities[0] = strings.Repeat("x", 300) // over one TXT string
	txt, dropped := encodeTXT(big)
	size := 0
	for _, s := range txt {
		if len(s) > maxTXTString {
			t.Fatalf("a TXT string of %d bytes", len(s))
		}
		size += len(s) + 1
	}
	if size > maxTXTBytes || dropped == 0 {
		t.Fatalf("record of %d bytes with %d dropped; want at most %d bytes and some dropped", size, dropped, maxTXTBytes)
	}

	// What a remote host sends is bounded on the way in too.
	var in []string
	in = append(in, "txtvers=1", "id=s", "url=ws://h:1", "agent=bad\x07bell", "cap=lost")
	for i := range 40 {
		in = append(in, fmt.Sprintf("agent=a%d", i))
		for j := range 70 {
			if i == 0 || j == 0 {
				in = append(in, fmt.Sprintf("cap=c%d", j))
			}
		}
	}
	in = append(in, make([]string, 300)...) // beyond maxTXTStrings: not read
	in = append(in, "id=late")
	g, err := decodeTXT(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Agents) != maxAgents || g.Agents[0].ID != "a0" || len(g.Agents[0].Capabilities) != maxCapabilities || g.ServerID != "s" {
		t.Fatalf("decoded %d agents, the first %q with %d capabilities; want %d, a0, %d", len(g.Agents), g.Agents[0].ID, len(g.Agents[0].Capabilities), maxAgents, maxCapabilities)
	}

	for _, tt := range []struct {
		txt  []string
		want string
	}{
		{[]string{"id=s", "url=ws://h:1"}, `txtvers "" is not 1`},
		{[]string{"txtvers=2", "id=s", "url=ws://h:1"}, `txtvers "2" is not 1`},
		{[]string{"txtvers=1", "id=two words", "url=ws://h:1"}, `id "two words" is not a serverId`},
		{[]string{"txtvers=1", "id=" + strings.Repeat("x", 200), "url=ws://h:1"}, "is not a serverId"},
		{[]string{"txtvers=1", "id=s", "url=http://h:1"}, `url "http://h:1" is not ws:// or wss://`},
		{[]string{"txtvers=1", "id=s", "url=ws://u:p@h:1"}, "holds a user name or password"},
		{[]string{"txtvers=1", "id=s", "url=ws://h:1", "key=" + strings.Repeat("k", 200)}, "fp or key is not a key"},
	} {
		if _, err := decodeTXT(tt.txt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("decodeTXT(%q) = %v, want %q", tt.txt, err, tt.want)
		}
	}
}

func TestStartNeedsAnInterface(t *testing.T) {
	if _, _, err := Start(Config{}, Gateway{ServerID: "s", URL: "ws://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "no interface") {
		t.Fatalf("Start without an interface: %v", err)
	}
	if _, _, err := Start(Config{Interface: "no-such-if0"}, Gateway{ServerID: "s", URL: "ws://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), `interface "no-such-if0"`) {
		t.Fatalf("Start on a missing interface: %v", err)
	}
}

// watcher records what OnChange reports.
type watcher struct {
	mu   sync.Mutex
	last []Gateway
}

func (w *watcher) onChange(gs []Gateway) {
	w.mu.Lock()
	w.last = gs
	w.mu.Unlock()
}

// waitFor polls until the gateways w last heard of, by serverId, are want.
func (w *watcher) waitFor(t *testing.T, want ...string) []Gateway {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		last := w.last
		w.mu.Unlock()
		got := []string{}
		for _, g := range last {
			got = append(got, g.ServerID)
		}
		if cmp.Equal(append([]string{}, want...), got) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateways seen %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMDNSFindsGatewaysAndNoticesWhenTheyLeave runs on loopback in a
// private network namespace: a gateway sees another that advertises the
// same service, with its agents, not one that advertises another service,
// and forgets it within three intervals of its leaving.
func TestMDNSFindsGatewaysAndNoticesWhenTheyLeave(t *testing.T) {
	if !tstest.PrivateNetwork(t) {
		return
	}
	service := uniqueService(t)
	cfg := func(w *watcher) Config {
		c := Config{Service: service, Interface: "lo", Interval: 150 * time.Millisecond}
		if w != nil {
			c.OnChange = w.onChange
		}
		return c
	}
	var wa watcher
	a, _, err := Start(cfg(&wa), Gateway{ServerID: "a-server", URL: "ws://127.0.0.1:18001", Fingerprint: "aa"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _, err := Start(cfg(nil), Gateway{ServerID: "b-server", URL: "ws://0.0.0.0:18002", SigningKey: "ed25519:bk", Fingerprint: "bb",
		Agents: []Agent{{ID: "b-agent", Capabilities: []string{"web-search@2.1.0"}}}})
	if err != nil {
		t.Fatal(err)
	}
	other := cfg(nil)
	other.Service = uniqueService(t)
	c, _, err := Start(other, Gateway{ServerID: "c-server", URL: "ws://127.0.0.1:18003"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	got := wa.waitFor(t, "b-server")
	want := Gateway{ServerID: "b-server", URL: "ws://127.0.0.1:18002", SigningKey: "ed25519:bk", Fingerprint: "bb", Addr: "127.0.0.1",
		Agents: []Agent{{ID: "b-agent", Capabilities: []string{"web-search@2.1.0"}}}}
	if d := cmp.Diff(want, got[0], cmpopts.IgnoreFields(Gateway{}, "LastSeen")); d != "" {
		t.Fatalf("b-server as a-server sees it (-want +got):\n%s", d)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wa.waitFor(t) // gone
}
