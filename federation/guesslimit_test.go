package federation_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// TestWrongTokensLimited: a source that presents 20 wrong tokens in a
// minute, whichever door it knocks on (operator, peer, A2A), is then
// refused at every door without its token being compared, even the right
// one: RATE_LIMITED over WebSocket, 429 with Retry-After over HTTP. A
// missing token does not count, and the other limits stay as they were.
func TestWrongTokensLimited(t *testing.T) {
	cfg := newConfig(t, "guarded", "agent-1")
	cfg.Gateway.Auth.OperatorToken = "op-token"
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "main-token"}}
	g := start(t, cfg, listen(t), nil)
	dialOp := func(token string) error {
		c, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{Token: token})
		if err == nil {
			c.Close()
		}
		return err
	}
	for range 30 { // missing tokens are not guesses
		if err := dialOp(""); code(err) != gateway.CodeUnauthorized {
			t.Fatalf("operator without a token: %v; want UNAUTHORIZED", err)
		}
	}
	a2a := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.Addr().String()+federation.A2APath+"agent-1/v1/tasks", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 20 {
		var err error
		switch i % 3 {
		case 0:
			err = dialOp("guess")
		case 1:
			_, err = dialPeer(t, g, "main-server", "guess")
		default:
			if resp := a2a("guess"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("A2A guess %d: HTTP %d; want 401", i, resp.StatusCode)
			}
			continue
		}
		if code(err) != gateway.CodeUnauthorized {
			t.Fatalf("guess %d: %v; want UNAUTHORIZED", i, err)
		}
	}
	if err := dialOp("op-token"); code(err) != federation.CodeRateLimited {
		t.Fatalf("operator with the right token after 20 guesses: %v; want RATE_LIMITED", err)
	}
	if _, err := dialPeer(t, g, "main-server", "main-token"); code(err) != federation.CodeRateLimited {
		t.Fatalf("peer with the right token after 20 guesses: %v; want RATE_LIMITED", err)
	}
	status, _ := httpGet(t, g, federation.PathMetrics, "op-token")
	if status != http.StatusTooManyRequests {
		t.Fatalf("/metrics with the right token after 20 guesses: HTTP %d; want 429", status)
	}
	if resp := a2a("guess"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("A2A after 20 guesses: HTTP %d Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
