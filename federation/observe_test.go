package federation_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
)

// httpGet fetches path from g's listener with an optional bearer token and
// extra headers, and returns the status and body.
func httpGet(t *testing.T, g *gw, path, token string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+g.ln.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func TestHealthEndpoints(t *testing.T) {
	cfg := newConfig(t, "probed", "agent-1")
	cfg.Gateway.Auth.OperatorToken = "op-token"
	g := start(t, cfg, listen(t), nil)

	for _, tt := range []struct {
		name, path string
		header     []string
		wantStatus int
		wantBody   string
	}{
		{"alive without a token", federation.PathHealthz, nil, http.StatusOK, "ok\n"},
		{"ready without a token", federation.PathReadyz, nil, http.StatusOK, "[+]storage ok\n[+]listening ok\n[+]peers ok\nok\n"},
		{"a foreign web page is refused by the guard", federation.PathReadyz, []string{"Origin", "https://evil.example"}, http.StatusForbidden, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := httpGet(t, g, tt.path, "", tt.header...)
			if status != tt.wantStatus || tt.wantBody != "" && body != tt.wantBody {
				t.Fatalf("GET %s: %d %q; want %d %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
			if strings.Contains(body, "probed") || strings.Contains(body, "agent-1") {
				t.Fatalf("a probe without credentials reveals the gateway's names: %q", body)
			}
		})
	}
}

// metricLine returns the value of the sample whose line starts with
// name{labels}, or "" when the scrape has none.
func metricLine(scrape, series string) string {
	for _, line := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestMetricsAfterRealTraffic(t *testing.T) {
	lnResearch := listen(t)
	rcfg := newConfig(t, "research-server", "agent-research-01", "web-search")
	rcfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "main-token"}}
	research := start(t, rcfg, lnResearch, nil)
	cfg := newConfig(t, "main-server", "")
	cfg.Gateway.Auth.OperatorToken = "op-token"
	p := peerConf("research-agent", "agent-research-01", lnResearch, "web-search")
	p.Token = "main-token"
	cfg.Federation.Peers = []federation.PeerConfig{p}
	main := start(t, cfg, listen(t), nil)
	op := operator(t, main, "op-token")

	for range 3 {
		mustTool(t, op, `{"action":"send","peerId":"research-agent","message":"hi"}`)
	}
	// A peer registered at run time, for an agent research does not host.
	mustTool(t, op, `{"action":"register_peer","peerId":"ghost","peerName":"x","peerUrl":"`+url(lnResearch)+`","peerAgentId":"nobody","peerToken":"main-token"}`)
	tool(t, op, `{"action":"send","peerId":"ghost","message":"hi"}`) // fails: counted, not fatal
	// A sender that did not authenticate names itself: it is not a label.
	c, err := dialPeer(t, research, "made-up-name-1234", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := relay(t, c, "made-up-name-1234", "agent-research-01"); err != nil {
		t.Fatal(err)
	}
	relay(t, c, "made-up-name-1234", "no-such-agent-5678")

	status, scrape := httpGet(t, main, federation.PathMetrics, "op-token")
	if status != http.StatusOK {
		t.Fatalf("scrape main: %d %s", status, scrape)
	}
	for series, want := range map[string]string{
		`agentfed_relays_out_total{agent="agent-research-01",outcome="ok",peer="research-agent"}`: "3",
		`agentfed_relays_out_total{agent="nobody",outcome="UNKNOWN_AGENT",peer="ghost"}`:          "1",
		`agentfed_relay_out_duration_seconds_count{peer="research-agent"}`:                        "3",
		`agentfed_peer_connected{peer="research-agent"}`:                                          "1",
		`agentfed_peer_health{peer="research-agent",state="healthy"}`:                             "1",
		`agentfed_peer_circuit{peer="research-agent",state="closed"}`:                             "1",
		`agentfed_peer_in_flight{peer="research-agent"}`:                                          "0",
		`agentfed_outbox_messages{state="dead"}`:                                                  "0",
		`agentfed_connections{stage="connected"}`:                                                 "1",
		`agentfed_ready`: "1",
	} {
		if got := metricLine(scrape, series); got != want {
			t.Errorf("main: %s = %q; want %q", series, got, want)
		}
	}

	status, scrape = httpGet(t, research, federation.PathMetrics, "") // no token configured: loopback
	if status != http.StatusOK {
		t.Fatalf("scrape research: %d %s", status, scrape)
	}
	for series, want := range map[string]string{
		`agentfed_relays_in_total{agent="agent-research-01",outcome="ok",peer="main-server"}`:      "3",
		`agentfed_relays_in_total{agent="agent-research-01",outcome="ok",peer="unauthenticated"}`:  "1",
		`agentfed_relays_in_total{agent="unknown",outcome="UNKNOWN_AGENT",peer="unauthenticated"}`: "1",
		`agentfed_relays_in_total{agent="unknown",outcome="UNKNOWN_AGENT",peer="main-server"}`:     "1",
		`agentfed_agent_busy{agent="agent-research-01"}`:                                           "0",
		`agentfed_agent_queued{agent="agent-research-01"}`:                                         "0",
	} {
		if got := metricLine(scrape, series); got != want {
			t.Errorf("research: %s = %q; want %q", series, got, want)
		}
	}
	for _, secret := range []string{"made-up-name-1234", "no-such-agent-5678", "main-token"} {
		if strings.Contains(scrape, secret) {
			t.Errorf("research's metrics hold the remote-chosen %q", secret)
		}
	}
}

func TestMetricsNeedTheOperatorToken(t *testing.T) {
	cfg := newConfig(t, "guarded", "agent-1")
	cfg.Gateway.Auth.OperatorToken = "op-token"
	cfg.Gateway.Limits.MaxConnections = 1
	g := start(t, cfg, listen(t), nil)
	operator(t, g, "op-token") // the one connection allowed
	if _, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{Token: "op-token"}); err == nil {
		t.Fatal("a second connection over gateway.limits.maxConnections was accepted")
	}
	for _, token := range []string{"", "wrong"} {
		if status, body := httpGet(t, g, federation.PathMetrics, token); status != http.StatusUnauthorized || strings.Contains(body, "agentfed_") {
			t.Fatalf("scrape with token %q: %d %q; want 401 without metrics", token, status, body)
		}
	}
	if status, _ := httpGet(t, g, federation.PathMetrics, "op-token", "Origin", "https://evil.example"); status != http.StatusForbidden {
		t.Fatalf("scrape from a foreign web page: %d; want 403", status)
	}
	_, scrape := httpGet(t, g, federation.PathMetrics, "op-token")
	for series, want := range map[string]string{
		`agentfed_refusals_total{reason="auth"}`:             "2",
		`agentfed_refusals_total{reason="origin"}`:           "1",
		`agentfed_refusals_total{reason="connection_limit"}`: "1",
	} {
		if got := metricLine(scrape, series); got != want {
			t.Errorf("%s = %q; want %q", series, got, want)
		}
	}
}

// A backup taken from a running gateway, put in place of another
// gateway's database, brings back its serverId and dynamic peers.
func TestBackupRestoresState(t *testing.T) {
	cfg := newConfig(t, "", "agent-1") // generated serverId: kept in the store
	cfg.Federation.AllowDynamicPeers = new(true)
	cfg.Gateway.Auth.OperatorToken = "op-token"
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "op-token")
	mustTool(t, op, `{"action":"register_peer","peerId":"dyn-1","peerName":"x","peerUrl":"ws://127.0.0.1:1","peerAgentId":"a"}`)

	if status, _ := httpGet(t, g, federation.PathBackup, ""); status != http.StatusUnauthorized {
		t.Fatalf("backup without a token: %d; want 401", status)
	}
	status, body := httpGet(t, g, federation.PathBackup, "op-token")
	if status != http.StatusOK {
		t.Fatalf("backup: %d %s", status, body)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, store.FileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyCopy(filepath.Join(dir, store.FileName)); err != nil {
		t.Fatal(err)
	}
	rcfg := newConfig(t, "", "agent-1")
	rcfg.Storage.Dir = dir
	rcfg.Federation.AllowDynamicPeers = new(true)
	restored := start(t, rcfg, listen(t), nil)
	if restored.ServerID() != g.ServerID() {
		t.Fatalf("restored serverId %q; want %q", restored.ServerID(), g.ServerID())
	}
	peers := mustTool(t, operator(t, restored, ""), `{"action":"list_peers"}`)
	if !strings.Contains(fmt.Sprint(peers), "dyn-1") {
		t.Fatalf("restored gateway lost the dynamic peer: %v", peers)
	}
	var again bytes.Buffer
	if _, err := g.Backup(&again); err != nil || again.Len() == 0 {
		t.Fatalf("Node.Backup: %d bytes, %v", again.Len(), err)
	}
	g.stop(t)
	var taken, refused bool
	for _, l := range readAudit(t, filepath.Join(cfg.Storage.Dir, "audit.log")) {
		taken = taken || l["kind"] == "backup" && l["outcome"] == "ok" && strings.HasPrefix(l["remote"].(string), "127.0.0.1:")
		refused = refused || l["kind"] == "auth" && l["method"] == federation.PathBackup
	}
	if !taken || !refused {
		t.Errorf("audit log: backup taken recorded %t, refused backup recorded %t; want both", taken, refused)
	}
}
