package federation_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// TestSendToStalledPeerTimesOut: when the link stalls, a send ends at its
// own timeout, not later, though the peer's TIMEOUT answer cannot come
// back: on a connection already open, the sender's deadline alone ends
// the wait for the answer (which has no context of its own: see
// delivery.bounded and gateway.Pending.WaitUntil); on a new one, the dial.
func TestSendToStalledPeerTimesOut(t *testing.T) {
	for _, tt := range []struct {
		name string
		warm bool
	}{
		{name: "connected", warm: true},
		{name: "dialling"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			main, px := behindProxy(t, nil, nil)
			if tt.warm {
				if r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "warm"}); r.Err() != nil {
					t.Fatal(r.Err())
				}
			}
			px.stall(true)
			defer px.stall(false)
			const timeout = 300 * time.Millisecond
			start := time.Now()
			r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "hi",
				MessageOptions: federation.MessageOptions{TimeoutMs: int(timeout.Milliseconds())}})
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != federation.StatusTimeout || elapsed < timeout || elapsed > 10*timeout {
				t.Fatalf("send on a stalled link: %s %v after %v; want %s after about %v",
					r.Status, r.Error, elapsed, federation.StatusTimeout, timeout)
			}
		})
	}
}
