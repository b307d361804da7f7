package federation_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// TestAuditSurvivesRefusalFlood: a flood of refused handshakes with huge
// instanceIds neither rotates an earlier FORBIDDEN record out of the audit
// log nor grows it: the first refusal is written with its fields
// truncated, the rest are one line with their count.
func TestAuditSurvivesRefusalFlood(t *testing.T) {
	const flood = 200
	cfg := newConfig(t, "audited", "")
	cfg.Agents = []federation.AgentConfig{
		{ID: "public", Handler: federation.HandlerConfig{Type: "echo"}},
		{ID: "secret", Handler: federation.HandlerConfig{Type: "echo"}},
	}
	cfg.Federation.RequireAuth = true
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "main-token", AllowAgents: []string{"public"}}}
	cfg.Audit = federation.AuditConfig{MaxSizeMB: 1, MaxFiles: 1}
	g := start(t, cfg, listen(t), nil)

	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	m := federation.NewMessage(federation.TypeRequest, "main-server", "a", "secret", "hi")
	if err := relayMsg(t, c, m, "secret"); code(err) != gateway.CodeForbidden {
		t.Fatalf("relay to an agent not granted: %v; want FORBIDDEN", err)
	}
	huge := strings.Repeat("x", 60000)
	const guesses = 20 // wrong tokens a source may present in a minute; then it is refused without a comparison
	for i := range flood {
		want := gateway.CodeUnauthorized
		if i >= guesses {
			want = federation.CodeRateLimited
		}
		if _, err := dialPeer(t, g, huge, "wrong-token"); code(err) != want {
			t.Fatalf("bad connect %d: %v; want %s", i, err, want)
		}
	}
	g.stop(t)

	var lines []map[string]any
	size := int64(0)
	for _, name := range []string{"audit.log.1", "audit.log"} {
		path := filepath.Join(cfg.Storage.Dir, name)
		st, err := os.Stat(path)
		if err != nil {
			continue
		}
		size += st.Size()
		lines = append(lines, readAudit(t, path)...)
	}
	if size > 16<<10 {
		t.Errorf("the audit log grew to %d bytes after %d refused handshakes; want well under 16 KiB", size, flood)
	}
	var forbidden, first, counted, limited bool
	for _, l := range lines {
		switch {
		case l["kind"] == "forbidden" && strings.Contains(l["detail"].(string), "allowAgents"):
			forbidden = true
		case l["kind"] == "auth" && l["count"] == nil:
			if p, _ := l["peer"].(string); !first && (len(p) > 300 || !strings.Contains(p, "60000 bytes")) {
				t.Errorf("refused handshake's instanceId written as %d bytes: %.80q; want it cut, saying how long it was", len(p), p)
			}
			first = true
		case l["kind"] == "auth" && l["outcome"] == federation.CodeRateLimited:
			limited = limited || l["count"] == float64(flood-guesses-1) && l["remote"] == "127.0.0.1"
		case l["kind"] == "auth":
			counted = counted || l["count"] == float64(guesses-1) && l["remote"] == "127.0.0.1" && l["detail"] == "AUTH_TOKEN_MISMATCH"
		}
	}
	if !forbidden || !first || !counted || !limited {
		t.Errorf("want the earlier FORBIDDEN line (%t), the first refusal in full (%t), one line counting the other %d wrong tokens (%t) and one counting the %d refused without a comparison after the first (%t); got %v",
			forbidden, first, guesses-1, counted, flood-guesses-1, limited, lines)
	}
}

// TestAuditFoldsRefusedRelays: an authenticated peer sending relays that
// are refused before any agent sees them (here, to an agent that does not
// exist) gets one audit line in full and one counting the rest, not a line
// each; a relay that reaches its agent is still written on its own.
func TestAuditFoldsRefusedRelays(t *testing.T) {
	const flood = 100
	cfg := newConfig(t, "audited", "public")
	cfg.Federation.RequireAuth = true
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "main-token"}}
	g := start(t, cfg, listen(t), nil)
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	for i := range flood {
		if err := relay(t, c, "main-server", "no-such-agent"); code(err) != federation.CodeUnknownAgent {
			t.Fatalf("relay %d to an unknown agent: %v; want UNKNOWN_AGENT", i, err)
		}
	}
	if err := relay(t, c, "main-server", "public"); err != nil {
		t.Fatal(err)
	}
	g.stop(t)

	var full, counted, ok int
	for _, l := range readAudit(t, filepath.Join(cfg.Storage.Dir, "audit.log")) {
		switch {
		case l["kind"] == "relay" && l["outcome"] == federation.CodeUnknownAgent && l["count"] == nil:
			full++
		case l["kind"] == "relay" && l["outcome"] == federation.CodeUnknownAgent:
			if l["count"] != float64(flood-1) {
				t.Errorf("the folded line counts %v; want %d", l["count"], flood-1)
			}
			counted++
		case l["kind"] == "relay" && l["outcome"] == "ok":
			ok++
		}
	}
	if full != 1 || counted != 1 || ok != 1 {
		t.Errorf("audit has %d full and %d counting lines for %d refused relays, and %d for the delivered one; want 1, 1 and 1", full, counted, flood, ok)
	}
}
