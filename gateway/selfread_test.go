package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
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
					timeout := time.Duration(1+i%3) * time.Millisecond
					err := callUntil(c, "block", timeout, i%2 == 0)
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

// callUntil calls method with a deadline timeout from now: in its
// context, or given to WaitUntil.
func callUntil(c *gateway.Client, method string, timeout time.Duration, inContext bool) error {
	if inContext {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return c.Call(ctx, method, nil, nil)
	}
	p, err := c.Request(context.Background(), method, nil)
	if err != nil {
		return err
	}
	return p.WaitUntil(context.Background(), time.Now().Add(timeout), nil)
}

// TestWaitUntil checks that a deadline given to WaitUntil ends the wait
// as one in the context does: for a caller alone on its connection, who
// reads the answer itself, and for one behind another call, whom the
// reader goroutine hands its answer; the server is told to cancel, and
// the connection goes on.
func TestWaitUntil(t *testing.T) {
	for _, behind := range []bool{false, true} {
		t.Run(fmt.Sprintf("behind=%v", behind), func(t *testing.T) {
			cancelled := make(chan error, 2)
			release := make(chan struct{})
			srv := startServer(t, &gateway.Server{Handler: testHandler{release: release, cancelled: cancelled}})
			c := dial(t, srv.URL, nil)
			// A call answered by the reader goroutine (the first, unless
			// another is pending) leaves the next to read its own.
			if err := c.Call(context.Background(), "echo", nil, nil); err != nil {
				t.Fatal(err)
			}
			if behind {
				other, err := c.Request(context.Background(), "block", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					close(release)
					if err := other.Wait(context.Background(), nil); err != nil {
						t.Errorf("the other call: %v", err)
					}
				}()
			}
			const timeout = 50 * time.Millisecond
			start := time.Now()
			err := callUntil(c, "block", timeout, false)
			if elapsed := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || elapsed < timeout {
				t.Fatalf("WaitUntil = %v after %v; want context.DeadlineExceeded after %v", err, elapsed, timeout)
			}
			if err := <-cancelled; !errors.Is(err, context.Canceled) {
				t.Fatalf("the server's handler ended with %v; want context.Canceled", err)
			}
			var got string
			if err := c.Call(context.Background(), "echo", "after", &got); err != nil || got != "after" {
				t.Fatalf("echo after the deadline = %q, %v", got, err)
			}
		})
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

// TestCloseAfterAbandonedWait checks that an interrupt meant for a caller
// whose context ended as it read does not outlive it and cut the close
// handshake's read.
func TestCloseAfterAbandonedWait(t *testing.T) {
	srv := startServer(t, &gateway.Server{Handler: testHandler{}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 20 {
		c, err := gateway.Dial(ctx, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		callCtx, callCancel := context.WithCancel(ctx)
		p, err := c.Request(callCtx, "block", nil)
		if err != nil {
			t.Fatal(err)
		}
		callCancel()
		if err := p.Wait(callCtx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: Wait = %v, want context.Canceled", i, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("round %d: Close after an abandoned Wait = %v", i, err)
		}
	}
}

// TestTLSCallersReadTheirOwn checks that over wss:// too, where the
// batching connection sits above TLS, callers read their own answers, and
// their deadlines still end their reads without ending the connection.
func TestTLSCallersReadTheirOwn(t *testing.T) {
	gs := &gateway.Server{Handler: testHandler{}}
	srv := httptest.NewTLSServer(gs)
	defer srv.Close()
	defer gs.Shutdown(context.Background())
	c := dial(t, "wss"+strings.TrimPrefix(srv.URL, "https"), &gateway.DialOptions{HTTPClient: srv.Client()})
	if !gateway.SelfReads(c) {
		t.Fatal("callers do not read their own answers over wss://")
	}
	for i := range 20 {
		want := fmt.Sprint("tls-", i)
		var got string
		if err := c.Call(context.Background(), "echo", want, &got); err != nil || got != want {
			t.Fatalf("call %d: echo = %q, %v; want %q", i, got, err, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		err := c.Call(ctx, "block", nil, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: block = %v, want DeadlineExceeded", i, err)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended: %v", err)
	}
}

// TestTLSVerifiedByDefault checks that the client's own TLS dial still
// verifies the server's certificate.
func TestTLSVerifiedByDefault(t *testing.T) {
	gs := &gateway.Server{Handler: testHandler{}}
	srv := httptest.NewTLSServer(gs)
	defer srv.Close()
	defer gs.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gateway.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https"), nil)
	if err == nil {
		c.Close()
		t.Fatal("Dial to a server with an unknown CA succeeded")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Dial = %v, want a certificate error", err)
	}
}

// TestTLSCallOnConnectionCutIsUnsent is TestCallOnConnectionCutIsUnsent
// over wss://, where the check before writing peeks under TLS.
func TestTLSCallOnConnectionCutIsUnsent(t *testing.T) {
	gs := &gateway.Server{Handler: testHandler{}}
	ts := httptest.NewUnstartedServer(gs)
	tr := &connTracker{}
	ts.Listener = &trackingListener{Listener: ts.Listener, tr: tr}
	ts.StartTLS()
	t.Cleanup(func() { gs.Shutdown(context.Background()); ts.Close() })
	c := dial(t, "wss"+strings.TrimPrefix(ts.URL, "https"), &gateway.DialOptions{HTTPClient: ts.Client()})
	if err := c.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // quiet long enough that the call checks first
	tr.cut()
	time.Sleep(time.Millisecond) // the cut reaches the client's socket
	err := c.Call(context.Background(), "echo", json.RawMessage(`"late"`), nil)
	if !gateway.Unsent(err) || gateway.CodeOf(err) != gateway.CodePeerUnavailable {
		t.Fatalf("Call after the cut = %v (unsent %v), want an unsent PEER_UNAVAILABLE", err, gateway.Unsent(err))
	}
}

// TestCheckBeforeWritingTakesWholeMessages: the check before a request
// reads only complete messages; one that has half arrived (the rest held
// back here for 2 s) is left for a read that the call's deadline bounds.
func TestCheckBeforeWritingTakesWholeMessages(t *testing.T) {
	srv := startServer(t, &gateway.Server{Handler: testHandler{}})
	url, toClient := spliceProxy(t, srv.URL)
	c := dial(t, url, nil)
	if err := c.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Fatal(err)
	}
	down := <-toClient
	payload := `{"type":"event","event":"late","payload":{}}`
	frame := append([]byte{0x81, byte(len(payload))}, payload...)
	time.Sleep(2 * time.Millisecond) // quiet long enough that the call checks first
	down.Write(frame[:5])            // no answer can come between: the client sends nothing
	rest := time.AfterFunc(2*time.Second, func() { down.Write(frame[5:]) })
	defer rest.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Call(ctx, "echo", "x", nil)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Call with a 50 ms deadline took %v (%v): the check waited for the rest of a message", d, err)
	}
}

// TestStallInsideMessageEndsConnection: a caller reading its own answer
// whose deadline passes inside a message cannot be interrupted there;
// when the rest does not come within WriteTimeout, the watchdog cuts the
// connection and the caller returns with its deadline's error.
func TestStallInsideMessageEndsConnection(t *testing.T) {
	started := make(chan string, 1)
	srv := startServer(t, &gateway.Server{Handler: testHandler{started: started}})
	url, toClient := spliceProxy(t, srv.URL)
	c := dial(t, url, &gateway.DialOptions{WriteTimeout: 100 * time.Millisecond})
	if !gateway.SelfReads(c) {
		t.Fatal("callers do not read their own answers")
	}
	down := <-toClient
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done <- c.Call(ctx, "block", nil, nil)
	}()
	<-started
	payload := `{"type":"event","event":"late","payload":{}}`
	down.Write(append([]byte{0x81, byte(len(payload))}, payload[:3]...)) // the rest never comes
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Call = %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Call still waiting 10 s after its deadline, inside a stalled message")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection not ended after a stall inside a message")
	}
}

// spliceProxy forwards one connection to the server at target (a ws://
// URL) and returns its own ws:// URL, and the client's side of the
// connection once a client has dialled: the test can write frames of its
// own to the client between the server's.
func spliceProxy(t *testing.T, target string) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	toClient := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", strings.TrimPrefix(target, "ws://"))
		if err != nil {
			c.Close()
			return
		}
		toClient <- c
		go func() { io.Copy(s, c); s.Close() }()
		io.Copy(c, s)
		c.Close()
	}()
	return "ws://" + ln.Addr().String(), toClient
}
