package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentfed/agentfed/gateway"
)

// TestDialNeverFollowsRedirects: a server answering the upgrade with a
// redirect fails the dial with PEER_UNAVAILABLE naming the redirect, with
// or without a caller's HTTP client, and the target is never contacted,
// so no token follows it there.
func TestDialNeverFollowsRedirects(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer target.Close()
	long := "/" + strings.Repeat("x", 10_000)
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://user:pw@"+strings.TrimPrefix(target.URL, "http://")+long, http.StatusFound)
	}))
	defer moved.Close()
	for _, tt := range []struct {
		name string
		hc   *http.Client
	}{
		{"default client", nil},
		{"caller's client that follows redirects", &http.Client{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gateway.Dial(context.Background(), "ws"+strings.TrimPrefix(moved.URL, "http"),
				&gateway.DialOptions{Token: "tok", HTTPClient: tt.hc})
			if gateway.CodeOf(err) != gateway.CodePeerUnavailable || !strings.Contains(err.Error(), "redirect") {
				t.Fatalf("Dial: %v; want PEER_UNAVAILABLE naming the redirect", err)
			}
			if len(err.Error()) > 600 || strings.Contains(err.Error(), "pw") {
				t.Errorf("error is %d bytes or shows the password: %.300s", len(err.Error()), err)
			}
			if n := reached.Load(); n != 0 {
				t.Fatalf("the redirect target got %d requests; want none", n)
			}
		})
	}
	// Not even to another path of the same server, on the same connection.
	gs := &gateway.Server{Handler: testHandler{}}
	mux := http.NewServeMux()
	mux.Handle("/ws", gs)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ws", http.StatusTemporaryRedirect)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer gs.Shutdown(context.Background())
	if _, err := gateway.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil); gateway.CodeOf(err) != gateway.CodePeerUnavailable {
		t.Fatalf("Dial redirected to another path: %v; want PEER_UNAVAILABLE", err)
	}
}
