package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/wsconn"
	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestMalformedFramesAfterConnect(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	tests := []struct {
		name      string
		frame     string
		wantCode  string               // the answer to request "1"; "" for none
		wantClose websocket.StatusCode // 0: the connection stays usable
	}{
		{name: "not JSON", frame: `{"type":`, wantClose: websocket.StatusPolicyViolation},
		{name: "JSON string", frame: `"req"`, wantClose: websocket.StatusPolicyViolation},
		{name: "unknown type", frame: `{"type":"call","id":"1","method":"echo"}`, wantClose: websocket.StatusPolicyViolation},
		{name: "req without id", frame: `{"type":"req","method":"echo"}`, wantClose: websocket.StatusPolicyViolation},
		{name: "id too long", frame: `{"type":"req","id":"` + strings.Repeat("9", 129) + `","method":"echo"}`, wantClose: websocket.StatusPolicyViolation},
		{name: "event without name", frame: `{"type":"event"}`, wantClose: websocket.StatusPolicyViolation},
		{name: "req without method", frame: `{"type":"req","id":"1"}`, wantCode: gateway.CodeInvalidRequest},
		{name: "method too long", frame: `{"type":"req","id":"1","method":"` + strings.Repeat("m", 129) + `"}`, wantCode: gateway.CodeInvalidRequest},
		{name: "second connect", frame: connectFrame("1", 4, 4), wantCode: gateway.CodeInvalidRequest},
		{name: "unknown method", frame: `{"type":"req","id":"1","method":"nope"}`, wantCode: gateway.CodeUnknownMethod},
		{name: "res from client is ignored", frame: `{"type":"res","id":"1","ok":true}`},
		{name: "event from client is ignored", frame: `{"type":"event","event":"tick"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.URL)
			c.connect()
			c.send(tt.frame)
			if tt.wantCode != "" {
				f := c.response("1")
				if f.OK || f.Error == nil || f.Error.Code != tt.wantCode {
					t.Fatalf("got %+v (error %+v), want error %s", f, f.Error, tt.wantCode)
				}
			}
			if tt.wantClose != 0 {
				c.expectClose(tt.wantClose)
				checkServing(t, srv.URL)
				return
			}
			c.send(`{"type":"req","id":"after","method":"echo","params":{"n":1}}`)
			f := c.response("after")
			if !f.OK || string(f.Payload) != `{"n":1}` {
				t.Fatalf("echo after the bad frame = %+v, want ok {\"n\":1}", f)
			}
		})
	}
}

// TestCloseReasonIsUTF8 checks that a close reason cut to fit a control
// frame is still valid UTF-8 (RFC 6455 §5.5.1).
func TestCloseReasonIsUTF8(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	for _, connected := range []bool{false, true} {
		for _, shift := range []string{"", "x"} {
			t.Run(fmt.Sprintf("connected=%v/shift=%q", connected, shift), func(t *testing.T) {
				c := dialRaw(t, srv.URL)
				if connected {
					c.connect()
				}
				c.send(`{"type":"` + shift + strings.Repeat("é", 80) + `"}`)
				_, err := c.readErr()
				var ce websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation {
					t.Fatalf("read = %v, want close status 1008", err)
				}
				if !utf8.ValidString(ce.Reason) {
					t.Errorf("close reason %q is not valid UTF-8", ce.Reason)
				}
			})
		}
	}
}

func TestPostConnectReadLimit(t *testing.T) {
	srv := startServer(t, &gateway.Server{MaxPayload: 4096})
	frame := func(size int) string {
		const head, tail = `{"type":"req","id":"big","method":"echo","params":{"p":"`, `"}}`
		return head + strings.Repeat("p", size-len(head)-len(tail)) + tail
	}
	tests := []struct {
		name      string
		size      int
		wantClose websocket.StatusCode
	}{
		{"at MaxPayload", 4096, 0},
		{"over MaxPayload", 4097, websocket.StatusMessageTooBig},
		{"above the pre-connect limit", 100 << 10, websocket.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.URL)
			if hello := c.connect(); hello.Policy.MaxPayload != 4096 {
				t.Errorf("hello policy.maxPayload = %d, want 4096", hello.Policy.MaxPayload)
			}
			c.send(frame(tt.size))
			if tt.wantClose == 0 {
				if f := c.response("big"); !f.OK {
					t.Fatalf("echo of %d bytes = %+v", tt.size, f.Error)
				}
				return
			}
			c.expectClose(tt.wantClose)
			checkServing(t, srv.URL)
		})
	}
}

func TestHandlerPanic(t *testing.T) { bothModes(t, testHandlerPanic) }

func testHandlerPanic(t *testing.T, inline bool) {
	srv := startServer(t, &gateway.Server{Handler: inlineIf(nil, inline)})
	c := dial(t, srv.URL, nil)
	ctx := context.Background()
	err := c.Call(ctx, "panic", nil, nil)
	if got := gateway.CodeOf(err); got != gateway.CodeInternal {
		t.Fatalf("Call(panic) = %v (code %s), want INTERNAL", err, got)
	}
	if errorCode(err) != gateway.CodeInternal {
		t.Errorf("Call(panic) error %T is not a *gateway.Error", err)
	}
	if strings.Contains(err.Error(), "handler bug") {
		t.Errorf("error %q leaks the panic value to the client", err)
	}
	// The same connection and new ones are still served.
	if err := c.Call(ctx, "echo", nil, nil); err != nil {
		t.Errorf("echo after panic: %v", err)
	}
	checkServing(t, srv.URL)
}

func TestHandlerErrors(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	c := dial(t, srv.URL, nil)
	tests := []struct {
		method string
		want   *gateway.Error
	}{
		{"fail", gateway.NewError(gateway.CodeForbidden, "not for you")},
		{"nope", gateway.NewError(gateway.CodeUnknownMethod, "unknown method nope")},
		{"unencodable", gateway.NewError(gateway.CodeInternal, "encode response: json: unsupported type: chan int")},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			err := c.Call(context.Background(), tt.method, nil, nil)
			var got *gateway.Error
			if !errors.As(err, &got) {
				t.Fatalf("Call = %v, want a *gateway.Error", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHandlerContextEndsWithConnection checks the Handler contract: ctx
// ends when the connection closes, even while the handler is running.
func TestHandlerContextEndsWithConnection(t *testing.T) {
	bothModes(t, testHandlerContextEndsWithConnection)
}

func testHandlerContextEndsWithConnection(t *testing.T, inline bool) {
	started, cancelled := make(chan string, 1), make(chan error, 1)
	srv := startServer(t, &gateway.Server{Handler: inlineIf(testHandler{started: started, cancelled: cancelled}, inline)})
	for _, how := range []string{"close", "cut"} {
		t.Run(how, func(t *testing.T) {
			c := dialRaw(t, srv.URL)
			c.connect()
			c.send(`{"type":"req","id":"1","method":"block"}`)
			<-started
			if how == "close" {
				c.ws.Close(websocket.StatusNormalClosure, "bye")
			} else {
				c.ws.CloseNow()
			}
			select {
			case err := <-cancelled:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("handler ctx ended with %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("handler ctx still live 5s after the client went away")
			}
		})
	}
}

// TestTickEvents checks that ticks follow the challenge with increasing
// seq on the wire, and reach DialOptions.OnEvent.
func TestTickEvents(t *testing.T) {
	srv := startServer(t, &gateway.Server{TickInterval: 10 * time.Millisecond})

	t.Run("raw", func(t *testing.T) {
		c := dialRaw(t, srv.URL) // has read the challenge, seq 1
		if hello := c.connect(); hello.Policy.TickIntervalMs != 10 {
			t.Errorf("hello policy.tickIntervalMs = %d, want 10", hello.Policy.TickIntervalMs)
		}
		want := int64(2)
		for range 3 {
			f := c.read()
			if f.Type != gateway.FrameEvent || f.Event != "tick" || f.Seq == nil {
				t.Fatalf("got %+v, want a tick event with a seq", f)
			}
			if *f.Seq != want {
				t.Errorf("tick seq = %d, want %d", *f.Seq, want)
			}
			want = *f.Seq + 1
		}
	})

	t.Run("OnEvent", func(t *testing.T) {
		events := make(chan gateway.TickEvent, 16)
		dial(t, srv.URL, &gateway.DialOptions{OnEvent: func(name string, payload json.RawMessage) {
			if name != "tick" {
				t.Errorf("OnEvent(%q), want only tick", name)
				return
			}
			var ev gateway.TickEvent
			if err := json.Unmarshal(payload, &ev); err != nil {
				t.Errorf("tick payload %s: %v", payload, err)
			}
			select {
			case events <- ev:
			default: // OnEvent must not block
			}
		}})
		var last int64
		for i := range 3 {
			select {
			case ev := <-events:
				if ev.TS < last || ev.TS == 0 {
					t.Errorf("tick %d ts = %d after %d, want increasing", i, ev.TS, last)
				}
				last = ev.TS
			case <-time.After(5 * time.Second):
				t.Fatalf("only %d ticks in 5s at a 10ms interval", i)
			}
		}
	})
}

// TestShutdown checks that Shutdown lets a request in flight answer, refuses
// new requests meanwhile, then closes with going-away.
func TestShutdown(t *testing.T) { bothModes(t, testShutdown) }

func testShutdown(t *testing.T, inline bool) {
	started, release := make(chan string, 1), make(chan struct{})
	srv := startServer(t, &gateway.Server{Handler: inlineIf(testHandler{started: started, release: release}, inline)})
	c := dialRaw(t, srv.URL)
	c.connect()
	c.send(`{"type":"req","id":"slow","method":"block","params":"a"}`)
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()

	// Until Shutdown marks the connection draining, echo is still served.
	for i := 0; ; i++ {
		id := fmt.Sprint("new", i)
		c.send(`{"type":"req","id":"` + id + `","method":"echo"}`)
		f := c.response(id)
		if f.OK {
			continue
		}
		if f.Error == nil || f.Error.Code != gateway.CodeShuttingDown {
			t.Fatalf("request during shutdown = %+v, want SHUTTING_DOWN", f.Error)
		}
		break
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	if _, _, err := websocket.Dial(context.Background(), srv.URL, nil); err == nil {
		t.Error("a new connection was accepted during shutdown")
	}

	close(release)
	f := c.response("slow")
	if !f.OK || string(f.Payload) != `{"released":"\"a\""}` {
		t.Errorf("in-flight response = %+v (%s), want ok", f, f.Payload)
	}
	c.expectClose(websocket.StatusGoingAway)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}

// TestShutdownDeadline checks that Shutdown gives up on a handler that
// outlives ctx: it cancels the handler, closes and reports ctx's error.
func TestShutdownDeadline(t *testing.T) { bothModes(t, testShutdownDeadline) }

func testShutdownDeadline(t *testing.T, inline bool) {
	started, cancelled := make(chan string, 1), make(chan error, 1)
	srv := startServer(t, &gateway.Server{Handler: inlineIf(testHandler{started: started, cancelled: cancelled}, inline)})
	c := dial(t, srv.URL, nil)
	call := make(chan error, 1)
	go func() { call <- c.Call(context.Background(), "block", nil, nil) }()
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("handler ctx ended with %v, want context.Canceled", err)
	}
	if err := <-call; gateway.CodeOf(err) != gateway.CodePeerUnavailable {
		t.Errorf("Call = %v, want PEER_UNAVAILABLE", err)
	}
	<-c.Done()
	if err := c.Err(); !strings.Contains(err.Error(), "1001") {
		t.Errorf("client Err = %v, want a going-away (1001) close", err)
	}
}

// TestCancelReachesHandler: when a Call's ctx ends, the server's handler
// sees its own ctx end, long before any deadline of its own.
func TestCancelReachesHandler(t *testing.T) { bothModes(t, testCancelReachesHandler) }

func testCancelReachesHandler(t *testing.T, inline bool) {
	started, stopped := make(chan struct{}), make(chan error, 1)
	srv := &gateway.Server{Handler: inlineIf(gateway.HandlerFunc(func(ctx context.Context, _ *gateway.Identity, method string, _ json.RawMessage) (any, error) {
		ctx = wsconn.Detach(ctx)
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}), inline)}
	c := dial(t, startServer(t, srv).URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Call(ctx, "slow", nil, nil) }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Call: %v", err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ctx ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never saw the cancellation")
	}
	// The connection is still good for other calls.
	if err := c.Call(context.Background(), "request.cancel", gateway.CancelParams{ID: "nope"}, nil); err != nil {
		t.Fatalf("request.cancel of an unknown id: %v", err)
	}
}

// TestStalledReaderIsCut: a client that sends requests but stops reading
// the answers is disconnected once the server's writes stall for
// WriteTimeout, and the server goes on serving others.
func TestStalledReaderIsCut(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	srv := startServer(t, &gateway.Server{
		WriteTimeout: 200 * time.Millisecond,
		Handler: gateway.HandlerFunc(func(ctx context.Context, _ *gateway.Identity, _ string, _ json.RawMessage) (any, error) {
			return map[string]string{"big": big}, nil
		}),
	})
	c := dialRaw(t, srv.URL)
	c.connect()
	for i := range 64 { // 64 MiB of answers nobody reads
		if err := c.sendErr(fmt.Sprintf(`{"type":"req","id":"%d","method":"m"}`, i)); err != nil {
			break // the server may already have cut us
		}
	}
	tstest.WaitFor(t, 20*time.Second, func() error {
		if n := srv.conns.open(); n != 0 {
			return fmt.Errorf("%d connections still open", n)
		}
		return nil
	})
	// Still serving others: not a latency check. Under the race detector
	// the cut connection's 64 MiB of answers keep both cores busy for
	// seconds (dial's 5 s failed about one run in four on a slow VM).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := gateway.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatalf("the server stopped serving others: %v", err)
	}
	defer other.Close()
	if err := other.Call(ctx, "m", nil, nil); err != nil {
		t.Fatalf("the server stopped serving others: %v", err)
	}
}
