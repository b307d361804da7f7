package federation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// TestBroadcastTimeoutsArePerPeer: connected peers of one broadcast with
// different timeouts each time out after their own, though a broadcast's
// peers share a deadline per distinct timeout; a peer that answers is not
// held back by either.
func TestBroadcastTimeoutsArePerPeer(t *testing.T) {
	const short, long = 300 * time.Millisecond, 1200 * time.Millisecond
	// The held agents ignore their deadline, so that only the sender's own
	// ends each peer's wait (the receiver would otherwise answer TIMEOUT).
	release := make(chan struct{})
	hold := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		if m.Content == "hold" {
			<-release
		}
		return &federation.Answer{Content: m.Content}, nil
	})
	lnFast, lnShort, lnLong := listen(t), listen(t), listen(t)
	start(t, newConfig(t, "fast-server", "echo"), lnFast, nil)
	start(t, newConfig(t, "short-server", "hold"), lnShort, map[string]federation.Handler{"hold": hold})
	start(t, newConfig(t, "long-server", "hold"), lnLong, map[string]federation.Handler{"hold": hold})
	t.Cleanup(func() { close(release) }) // before the gateways shut down
	cfg := newConfig(t, "main", "")
	// Collected in id order: short's result first, so that its latency is
	// its own deadline's, not the time it waited behind long.
	cfg.Federation.Peers = []federation.PeerConfig{
		{ID: "a-short", Name: "short", URL: url(lnShort), AgentID: "hold", TimeoutMs: int(short.Milliseconds())},
		{ID: "b-long", Name: "long", URL: url(lnLong), AgentID: "hold", TimeoutMs: int(long.Milliseconds())},
		peerConf("c-fast", "echo", lnFast),
	}
	main := start(t, cfg, listen(t), nil)
	ctx := context.Background()
	if _, err := main.Broadcast(ctx, federation.BroadcastRequest{Message: "warm up"}); err != nil { // dial every peer
		t.Fatal(err)
	}
	res, err := main.Broadcast(ctx, federation.BroadcastRequest{Message: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	byPeer := map[string]federation.Result{}
	for _, r := range res {
		byPeer[r.PeerID] = r
	}
	if r := byPeer["c-fast"]; r.Status != federation.StatusOK || r.LatencyMs >= float64(short.Milliseconds()) {
		t.Errorf("fast: %s %v after %.1f ms, want its answer at once", r.Status, r.Error, r.LatencyMs)
	}
	for _, tt := range []struct {
		peer     string
		timeout  time.Duration
		upTo     time.Duration
		inErrors string
	}{
		{"a-short", short, long, "within 300ms"},
		{"b-long", long, 10 * long, "within 1.2s"},
	} {
		r := byPeer[tt.peer]
		if r.Status != federation.StatusTimeout || r.Error == nil || !strings.Contains(r.Error.Message, tt.inErrors) {
			t.Errorf("%s: %s %v, want a timeout %q", tt.peer, r.Status, r.Error, tt.inErrors)
			continue
		}
		if got := time.Duration(r.LatencyMs * float64(time.Millisecond)); got < tt.timeout || got >= tt.upTo {
			t.Errorf("%s timed out after %v, want its own timeout %v (less than %v)", tt.peer, got, tt.timeout, tt.upTo)
		}
	}
}

// TestBroadcastOuterDeadline: a caller's deadline shorter than a peer's
// timeout ends that peer's wait, and a shorter peer timeout still ends
// its own first.
func TestBroadcastOuterDeadline(t *testing.T) {
	const short, outer = 300 * time.Millisecond, 700 * time.Millisecond
	release := make(chan struct{})
	hold := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		if m.Content == "hold" {
			<-release // ignores its deadline: only the sender's ends the wait
		}
		return &federation.Answer{Content: m.Content}, nil
	})
	lnShort, lnLong := listen(t), listen(t)
	start(t, newConfig(t, "short-server", "hold"), lnShort, map[string]federation.Handler{"hold": hold})
	start(t, newConfig(t, "long-server", "hold"), lnLong, map[string]federation.Handler{"hold": hold})
	t.Cleanup(func() { close(release) })
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{
		peerConf("long", "hold", lnLong), // the default timeout, 30 s
		{ID: "short", Name: "short", URL: url(lnShort), AgentID: "hold", TimeoutMs: int(short.Milliseconds())},
	}
	main := start(t, cfg, listen(t), nil)
	if _, err := main.Broadcast(context.Background(), federation.BroadcastRequest{Message: "warm up"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), outer)
	defer cancel()
	res, err := main.Broadcast(ctx, federation.BroadcastRequest{Message: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		want := map[string]time.Duration{"short": short, "long": outer}[r.PeerID]
		got := time.Duration(r.LatencyMs * float64(time.Millisecond))
		if r.Status != federation.StatusTimeout || got < want-50*time.Millisecond || got >= want+time.Second {
			t.Errorf("%s: %s after %v, want a timeout after about %v", r.PeerID, r.Status, got, want)
		}
	}
}
