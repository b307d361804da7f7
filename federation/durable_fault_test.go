package federation_test

import (
	"context"
	"github.com/agentfed/agentfed/internal/tstest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// TestDurableHandlingOutlivesItsConnection (issue 19, item 2): the
// connection is cut while the receiver's agent handles a durable message.
// The agent is not cancelled: it finishes, its reply is recorded, and the
// redelivery on the new connection gets that reply. The agent ran once.
func TestDurableHandlingOutlivesItsConnection(t *testing.T) {
	var runs, cancelled atomic.Int32
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		runs.Add(1)
		entered <- struct{}{}
		select {
		case <-release:
			return &federation.Answer{Content: "done: " + m.Content}, nil
		case <-ctx.Done():
			cancelled.Add(1)
			return nil, ctx.Err()
		}
	})
	main, px := behindProxy(t, slow, nil)
	r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "once",
		MessageOptions: federation.MessageOptions{Durable: true, TimeoutMs: 20000}})
	if err != nil || r.Status != federation.StatusQueued {
		t.Fatalf("durable send: %v %+v", err, r)
	}
	<-entered
	px.cut() // the sender's connection is gone mid-handling
	// Redelivered on a new connection, where it waits for the first.
	tstest.WaitFor(t, 10*time.Second, func() error {
		e, err := main.MessageStatus(r.MessageID)
		if err != nil {
			return err
		}
		if e.Attempts < 1 {
			return errNotYet("no attempt has ended yet")
		}
		for _, p := range main.Health().Peers {
			if p.InFlight > 0 {
				return nil // the redelivery is out
			}
		}
		return errNotYet("the redelivery is not in flight")
	})
	close(release)
	e := waitState(t, main, r.MessageID, federation.StateDelivered)
	if got := e.Result.Response.Content; got != "done: once" {
		t.Errorf("reply %q", got)
	}
	if runs.Load() != 1 || cancelled.Load() != 0 {
		t.Errorf("the agent ran %d times, %d cancelled; want once, not cancelled", runs.Load(), cancelled.Load())
	}
}

type errNotYet string

func (e errNotYet) Error() string { return string(e) }

// TestShutdownEndsDurableHandlingAtItsGrace: a durable handling whose
// sender has gone keeps running, but not past the receiver's shutdown
// grace: Shutdown cancels it when its context ends, and returns.
func TestShutdownEndsDurableHandlingAtItsGrace(t *testing.T) {
	entered, cancelled := make(chan struct{}, 1), make(chan struct{})
	stuck := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		entered <- struct{}{}
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	lnFar := listen(t)
	far := start(t, newConfig(t, "far-server", "a"), lnFar, map[string]federation.Handler{"a": stuck})
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("p", "a", lnFar)}
	main := start(t, cfg, listen(t), nil)
	r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "stuck",
		MessageOptions: federation.MessageOptions{Durable: true, TimeoutMs: 60000}})
	if err != nil || r.Status != federation.StatusQueued {
		t.Fatalf("durable send: %v %+v", err, r)
	}
	<-entered
	main.stop(t) // the sender goes away; the handling goes on
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	far.Shutdown(ctx)
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("Shutdown took %v with a 300ms grace", d)
	}
	select {
	case <-cancelled:
	default:
		t.Fatal("Shutdown returned with the handling still running")
	}
}
