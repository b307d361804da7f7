package federation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
)

// versionedFederation starts three search gateways, whose agents have
// web-search at 1.4.0, at 2.1.0 and without a version, and a main gateway
// that has them as peers with those capabilities.
func versionedFederation(t *testing.T) (main *gw, op *gateway.Client) {
	t.Helper()
	peers := []federation.PeerConfig{}
	for _, s := range []struct{ id, capability string }{
		{"search-v1", "web-search@1.4.0"}, {"search-v2", "web-search@2.1.0"}, {"search-any", "web-search"},
	} {
		ln := listen(t)
		start(t, newConfig(t, s.id+"-server", "searcher", s.capability, "summarization"), ln, nil)
		peers = append(peers, peerConf(s.id, "searcher", ln, s.capability, "summarization"))
	}
	cfg := newConfig(t, "main-agent-server", "")
	cfg.Federation.Peers = peers
	main = start(t, cfg, listen(t), nil)
	return main, operator(t, main, "")
}

func TestDelegateByCapabilityVersion(t *testing.T) {
	_, op := versionedFederation(t)
	tests := []struct {
		name string
		reqs string
		want []string // the candidates, in id order
	}{
		{"unversioned requirement matches every version", `["web-search"]`, []string{"search-any", "search-v1", "search-v2"}},
		{"caret", `["web-search@^2", "summarization"]`, []string{"search-v2"}},
		{"range", `["web-search@>=1.4 <3"]`, []string{"search-v1", "search-v2"}},
		{"exact", `["web-search@1.4.0"]`, []string{"search-v1"}},
		{"or", `["web-search@~1.4 || ^2"]`, []string{"search-v1", "search-v2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustTool(t, op, `{"action":"delegate","strategy":"round-robin","requiredCapabilities":`+tt.reqs+`,"task":"find papers"}`)
			if r["status"] != "ok" || at(r, "response", "content") != "find papers" {
				t.Fatalf("delegate %s: %v", tt.reqs, r)
			}
			var got []string
			for _, c := range r["candidates"].([]any) {
				got = append(got, c.(string))
			}
			// Round robin rotates the order; the set is what counts.
			if !strings.Contains(strings.Join(tt.want, ","), r["peerId"].(string)) {
				t.Fatalf("delegate %s answered by %v, not one of %v", tt.reqs, r["peerId"], tt.want)
			}
			if d := cmp.Diff(tt.want, sorted(got)); d != "" {
				t.Fatalf("candidates for %s (-want +got):\n%s", tt.reqs, d)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestNoCapablePeerSaysWhichVersionsExist: the error names the requirement
// nobody met and the versions there are, in its message and its details,
// across the operator connection.
func TestNoCapablePeerSaysWhichVersionsExist(t *testing.T) {
	main, op := versionedFederation(t)

	_, err := tool(t, op, `{"action":"delegate","requiredCapabilities":["summarization","web-search@^3"],"task":"x"}`)
	if code(err) != federation.CodeNoCapablePeer {
		t.Fatalf("delegate web-search@^3: %v; want NO_CAPABLE_PEER", err)
	}
	for _, want := range []string{`"web-search@^3" (requiredCapabilities[1])`, `have "web-search" at 1.4.0, 2.1.0, and without a version`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	wantDetails := map[string]any{"requirement": "web-search@^3", "index": 1.0, "versions": []any{"1.4.0", "2.1.0"}, "unversioned": true}
	if d := cmp.Diff(wantDetails, detailsOf(err)); d != "" {
		t.Errorf("details (-want +got):\n%s", d)
	}

	// A name nobody has at all.
	_, err = tool(t, op, `{"action":"delegate","requiredCapabilities":["web-search","translation@^1"],"task":"x"}`)
	if code(err) != federation.CodeNoCapablePeer || !strings.Contains(err.Error(), `no enabled peer has capability "translation" (requiredCapabilities[1])`) {
		t.Errorf("delegate translation@^1: %v; want NO_CAPABLE_PEER naming translation", err)
	}

	// Each requirement met, but by different peers.
	_, err = main.Delegate(context.Background(), federation.DelegateRequest{RequiredCapabilities: []string{"web-search@^1", "web-search@^2"}, Task: "x"})
	if code(err) != federation.CodeNoCapablePeer || !strings.Contains(err.Error(), `no single enabled peer has all of ["web-search@^1" "web-search@^2"]`) {
		t.Errorf("delegate ^1 and ^2: %v; want NO_CAPABLE_PEER saying no single peer has both", err)
	}
}

func TestInvalidVersionsAreParamErrors(t *testing.T) {
	main, op := versionedFederation(t)
	tests := []struct{ action, want string }{
		{`{"action":"delegate","requiredCapabilities":["web-search","summarization@^two"],"task":"x"}`,
			`requiredCapabilities[1]: "summarization@^two": "^two" is not a version constraint`},
		{`{"action":"delegate","requiredCapabilities":["web-search@"],"task":"x","durable":true}`,
			`requiredCapabilities[0]: "web-search@" has no version constraint after the @`},
		{fmt.Sprintf(`{"action":"register_peer","peerId":"new","peerName":"New","peerUrl":%q,"peerAgentId":"a","peerCapabilities":["web-search@2"]}`, main.URL()),
			`peerCapabilities[0]: "web-search@2": version "2" is not a semantic version`},
	}
	for _, tt := range tests {
		_, err := tool(t, op, tt.action)
		if code(err) != gateway.CodeInvalidParams || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want INVALID_PARAMS containing %q", tt.action, err, tt.want)
		}
	}
	if out := main.ListPeers(); out.TotalPeers != 3 {
		t.Errorf("a refused register_peer added a peer: %d peers", out.TotalPeers)
	}
}

// TestVersionsShowInListPeersAndQueryCapabilities: versions are part of the
// capability strings both actions return, and a registered peer's version
// takes part in delegation at once.
func TestVersionsShowInListPeersAndQueryCapabilities(t *testing.T) {
	main, op := versionedFederation(t)
	r := mustTool(t, op, `{"action":"list_peers"}`)
	if got := at(r, "peers", 2, "capabilities"); !cmp.Equal(got, []any{"web-search@2.1.0", "summarization"}) {
		t.Errorf("list_peers capabilities of search-v2: %v", got)
	}
	r = mustTool(t, op, `{"action":"query_capabilities","peerId":"search-v1"}`)
	if got := r["capabilities"]; !cmp.Equal(got, []any{"web-search@1.4.0", "summarization"}) {
		t.Errorf("query_capabilities of search-v1: %v", got)
	}

	ln := listen(t)
	start(t, newConfig(t, "search-v3-server", "searcher", "web-search@3.0.0-rc.1"), ln, nil)
	mustTool(t, op, fmt.Sprintf(`{"action":"register_peer","peerId":"search-v3","peerName":"v3","peerUrl":%q,"peerAgentId":"searcher","peerCapabilities":["web-search@3.0.0-rc.1"]}`, url(ln)))
	r = mustTool(t, op, `{"action":"delegate","requiredCapabilities":["web-search@>=3.0.0-0"],"task":"x"}`)
	if r["peerId"] != "search-v3" {
		t.Fatalf("delegate to a pre-release asked for by name: %v", r)
	}
	if _, err := main.Delegate(context.Background(), federation.DelegateRequest{RequiredCapabilities: []string{"web-search@>=3"}, Task: "x"}); code(err) != federation.CodeNoCapablePeer {
		t.Fatalf("a plain >=3 must not pick a pre-release: %v", err)
	}
}

// TestAllowCapabilitiesWithVersions: a grant's allowCapabilities entry
// matches the agent's capability by name whatever its version, or by
// constraint when it has one.
func TestAllowCapabilitiesWithVersions(t *testing.T) {
	lnB := listen(t)
	cfgB := newConfig(t, "b-server", "")
	cfgB.Agents = []federation.AgentConfig{
		{ID: "old", Capabilities: []string{"web-search@1.4.0"}, Handler: federation.HandlerConfig{Type: "echo"}},
		{ID: "new", Capabilities: []string{"web-search@2.1.0"}, Handler: federation.HandlerConfig{Type: "echo"}},
		{ID: "stats", Capabilities: []string{"statistics@1.0.0"}, Handler: federation.HandlerConfig{Type: "echo"}},
	}
	cfgB.Gateway.Auth.Peers = []federation.PeerCredential{
		{ServerID: "main-agent-server", Token: "main-token", AllowCapabilities: []string{"web-search@^2", "statistics"}},
	}
	start(t, cfgB, lnB, nil)
	cfg := newConfig(t, "main-agent-server", "")
	for _, id := range []string{"old", "new", "stats"} {
		p := peerConf(id, id, lnB)
		p.Token = "main-token"
		cfg.Federation.Peers = append(cfg.Federation.Peers, p)
	}
	main := start(t, cfg, listen(t), nil)

	for peer, want := range map[string]string{"new": "", "stats": "", "old": gateway.CodeForbidden} {
		res, err := main.Send(context.Background(), federation.SendRequest{PeerID: peer, Message: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if res.Error != nil {
			got = res.Error.Code
		}
		if got != want {
			t.Errorf("send to %s: %s %v; want code %q", peer, res.Status, res.Error, want)
		}
	}
}
