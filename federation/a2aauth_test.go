package federation_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// a2aStatus posts a SendMessage for agent with token and returns the
// HTTP status and body.
func a2aStatus(t *testing.T, g *gw, agent, token string) (int, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m-` + token + `","role":"ROLE_USER","parts":[{"text":"hi"}]}}}`
	req, _ := http.NewRequest("POST", "http://"+g.Addr().String()+federation.A2APath+agent, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

// TestA2AAuthSection: with gateway.auth.a2a set, A2A takes its tokens and
// grants only, a peer gateway's token is refused at A2A, and an A2A
// token is refused as a peer gateway's.
func TestA2AAuthSection(t *testing.T) {
	cfg := newConfig(t, "main", "echo", "text")
	cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "other", Capabilities: []string{"x"}, Handler: federation.HandlerConfig{Type: "echo"}})
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "gw-peer", Token: "peer-token"}}
	cfg.Gateway.Auth.A2A = []federation.A2ACredential{{ID: "framework", Token: "a2a-token", AllowAgents: []string{"echo"}}}
	g := start(t, cfg, listen(t), nil)

	tests := []struct {
		name, agent, token string
		status             int
		body               string
	}{
		{"a2a token", "echo", "a2a-token", http.StatusOK, `"TASK_STATE_COMPLETED"`},
		{"a2a token, agent outside allowAgents", "other", "a2a-token", http.StatusForbidden, "gateway.auth.a2a[id=framework]"},
		{"peer token at A2A", "echo", "peer-token", http.StatusUnauthorized, "gateway.auth.a2a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := a2aStatus(t, g, tt.agent, tt.token)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("status %d, body %s; want %d and %s", status, body, tt.status, tt.body)
			}
		})
	}
	t.Run("a2a token as a peer gateway", func(t *testing.T) {
		if c, err := dialPeer(t, g, "framework", "a2a-token"); err == nil {
			c.Close()
			t.Fatal("an A2A client's token let a peer gateway connect")
		}
	})
}

// TestA2AAuthPeersFallback: without gateway.auth.a2a, gateway.auth.peers
// tokens are accepted at A2A, as before (deprecated).
func TestA2AAuthPeersFallback(t *testing.T) {
	cfg := newConfig(t, "main", "echo", "text")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "gw-peer", Token: "peer-token"}}
	g := start(t, cfg, listen(t), nil)
	if status, body := a2aStatus(t, g, "echo", "peer-token"); status != http.StatusOK || !strings.Contains(body, "TASK_STATE_COMPLETED") {
		t.Fatalf("peer token at A2A without gateway.auth.a2a: %d %s", status, body)
	}
}

func TestA2AAuthValidate(t *testing.T) {
	cfg := newConfig(t, "main", "echo", "text")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "gw-peer", Token: "shared"}}
	cfg.Gateway.Auth.A2A = []federation.A2ACredential{
		{ID: "", Token: "t1"},
		{ID: "dup", Token: ""},
		{ID: "DUP", Token: "t3", PreviousToken: "t3", RatePerSec: -1, MaxMessageBytes: -1},
		{ID: "x", Token: "shared", AllowCapabilities: []string{"text@not-a-range"}},
	}
	cfg.ApplyDefaults()
	err := cfg.Validate()
	for _, want := range []string{"gateway.auth.a2a[0].id", "gateway.auth.a2a[1].token", "gateway.auth.a2a[2].id",
		"gateway.auth.a2a[2].previousToken", "gateway.auth.a2a[2].ratePerSec", "gateway.auth.a2a[2].maxMessageBytes",
		"gateway.auth.a2a[3].token", "gateway.auth.a2a[3].allowCapabilities[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: want a problem naming %s; got %v", want, err)
		}
	}
}

// TestA2AAuthNoClients: a gateway with no A2A clients and no peer
// credentials says where to add one (gateway.auth.a2a), not to use a peer
// gateway's token; its card says the same.
func TestA2AAuthNoClients(t *testing.T) {
	g := start(t, newConfig(t, "main", "echo", "text"), listen(t), nil)
	for _, token := range []string{"", "some-token"} {
		status, body := a2aStatus(t, g, "echo", token)
		if status != http.StatusUnauthorized || !strings.Contains(body, "add one to gateway.auth.a2a") || strings.Contains(body, "gateway.auth.peers") {
			t.Fatalf("A2A with token %q and no clients configured: %d %s", token, status, body)
		}
	}
	resp, err := http.Get("http://" + g.Addr().String() + federation.A2APath + "echo/.well-known/agent-card.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	card := make([]byte, 8192)
	n, _ := io.ReadFull(resp.Body, card)
	if !strings.Contains(string(card[:n]), "a token of gateway.auth.a2a") {
		t.Fatalf("card of a gateway without A2A clients: %s", card[:n])
	}
}
