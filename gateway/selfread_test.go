package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// TestCallersShareReading runs callers that read their own answers on one
// connection alongside callers whose deadlines end while they read, which
// interrupts their reads: every answer reaches its caller, every
// abandoned call fails with its context's error only, and the connection
// survives.
func TestCallersShareReading(t *testing.T) {
	srv := startServer(t, &gateway.Server{Handler: testHandler{}})
	c := dial(t, srv.URL, nil)
	const workers, calls = 8, 150
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				if (w+i)%5 == 0 { // blocks until its deadline: interrupted while it may be reading
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+i%3)*time.Millisecond)
					err := c.Call(ctx, "block", nil, nil)
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						errs <- fmt.Errorf("worker %d call %d: block = %v, want DeadlineExceeded", w, i, err)
						return
					}
					continue
				}
				want := fmt.Sprintf("w%d-%d", w, i)
				var got string
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := c.Call(ctx, "echo", want, &got)
				cancel()
				if err != nil || got != want {
					errs <- fmt.Errorf("worker %d call %d: echo = %q, %v; want %q", w, i, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended: %v", err)
	}
	if err := c.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Errorf("echo after the run: %v", err)
	}
}

// TestIdleClientSeesServerGone checks that a connection nobody calls on is
// still read: a server that goes away is noticed without a call.
func TestIdleClientSeesServerGone(t *testing.T) {
	srv := startServer(t, &gateway.Server{Handler: testHandler{}})
	c := dial(t, srv.URL, nil)
	if err := c.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	srv.conns.cut()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed 5s after the server cut an idle connection")
	}
}

// TestCallOnConnectionCutIsUnsent checks that a call made just after the
// server cut the connection, before anything else noticed, fails as
// Unsent: the request was never written, so it can safely go again on a
// new connection.
func TestCallOnConnectionCutIsUnsent(t *testing.T) {
	srv := startServer(t, &gateway.Server{Handler: testHandler{}})
	c := dial(t, srv.URL, nil)
	if err := c.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // quiet long enough that the call checks first
	srv.conns.cut()
	err := c.Call(context.Background(), "echo", json.RawMessage(`"late"`), nil)
	if !gateway.Unsent(err) || gateway.CodeOf(err) != gateway.CodePeerUnavailable {
		t.Fatalf("Call after the cut = %v (unsent %v), want an unsent PEER_UNAVAILABLE", err, gateway.Unsent(err))
	}
}
