package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/wsconn"
	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// connTracker records the TCP connections on one side of the tests, so a
// test can check that every one of them was closed, and cut them abruptly.
type connTracker struct {
	mu    sync.Mutex // guards conns
	conns map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	tr   *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.tr.mu.Lock()
		delete(c.tr.conns, c)
		c.tr.mu.Unlock()
	})
	return c.Conn.Close()
}

func (tr *connTracker) track(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, tr: tr}
	tr.mu.Lock()
	if tr.conns == nil {
		tr.conns = make(map[*trackedConn]struct{})
	}
	tr.conns[tc] = struct{}{}
	tr.mu.Unlock()
	return tc
}

// open returns the number of connections not yet closed.
func (tr *connTracker) open() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.conns)
}

// allClosed is a waitFor condition.
func (tr *connTracker) allClosed() error {
	if n := tr.open(); n > 0 {
		return fmt.Errorf("%d TCP connections still open", n)
	}
	return nil
}

// cut closes the underlying sockets without a WebSocket close frame, as a
// crashed process or a broken network would. The tracked wrappers stay
// open, so that the test still sees whether their owners close them.
func (tr *connTracker) cut() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for c := range tr.conns {
		c.Conn.Close()
	}
}

type trackingListener struct {
	net.Listener
	tr *connTracker
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.tr.track(c), nil
}

// testServer is a gateway.Server on a loopback port.
type testServer struct {
	*gateway.Server
	URL   string // ws://127.0.0.1:port
	conns *connTracker
	ts    *httptest.Server
}

// startServer serves s on 127.0.0.1:0 until the test ends. Cleanup shuts it
// down and checks that it closed every TCP connection it accepted.
// inlined is served on the connection's reader goroutine, as
// federation's handler is.
type inlined struct{ gateway.Handler }

func (inlined) ServesInline() bool { return true }

// inlineIf returns h (testHandler{} if nil), served inline if inline is
// set.
func inlineIf(h gateway.Handler, inline bool) gateway.Handler {
	if h == nil {
		h = testHandler{}
	}
	if inline {
		return inlined{h}
	}
	return h
}

func startServer(t testing.TB, s *gateway.Server) *testServer {
	t.Helper()
	if s.Handler == nil {
		s.Handler = testHandler{}
	}
	ts := httptest.NewUnstartedServer(s)
	tr := &connTracker{}
	ts.Listener = &trackingListener{Listener: ts.Listener, tr: tr}
	ts.Start()
	srv := &testServer{Server: s, URL: "ws" + strings.TrimPrefix(ts.URL, "http"), conns: tr, ts: ts}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
		tstest.WaitFor(t, 5*time.Second, tr.allClosed)
	})
	return srv
}

// testHandler serves the methods the tests call.
//
//	echo   returns its params
//	whoami returns the caller's Identity
//	panic  panics
//	block  detaches (wsconn.Detach), signals started (when set), then
//	       waits for release or the end of its context; it reports that
//	       end on cancelled (when set)
//	fail   returns FORBIDDEN
//	unencodable returns a payload json cannot encode
type testHandler struct {
	started   chan<- string
	release   <-chan struct{}
	cancelled chan<- error
}

func (h testHandler) ServeRPC(ctx context.Context, id *gateway.Identity, method string, params json.RawMessage) (any, error) {
	switch method {
	case "echo":
		return params, nil
	case "whoami":
		return id, nil
	case "panic":
		panic("handler bug")
	case "block":
		ctx = wsconn.Detach(ctx) // a no-op unless served inline
		if h.started != nil {
			h.started <- string(params)
		}
		select {
		case <-h.release:
			return map[string]string{"released": string(params)}, nil
		case <-ctx.Done():
			if h.cancelled != nil {
				h.cancelled <- ctx.Err()
			}
			return nil, ctx.Err()
		}
	case "fail":
		return nil, gateway.NewError(gateway.CodeForbidden, "not for you")
	case "unencodable":
		return make(chan int), nil
	}
	return nil, gateway.NewError(gateway.CodeUnknownMethod, "unknown method "+method)
}

// dial connects a gateway.Client and closes it when the test ends.
func dial(t testing.TB, url string, opts *gateway.DialOptions) *gateway.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gateway.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkServing fails the test unless a fresh, well-behaved client can
// connect to url and call echo.
func checkServing(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gateway.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("server stopped serving: Dial: %v", err)
	}
	defer c.Close()
	var got map[string]string
	if err := c.Call(ctx, "echo", map[string]string{"still": "up"}, &got); err != nil {
		t.Fatalf("server stopped serving: echo: %v", err)
	}
	if got["still"] != "up" {
		t.Fatalf("echo = %v, want still=up", got)
	}
}

// wireFrame is any frame as it travels, for tests that speak the protocol
// by hand.
type wireFrame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	OK      bool            `json:"ok,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *gateway.Error  `json:"error,omitempty"`
	Event   string          `json:"event,omitempty"`
	Seq     *int64          `json:"seq,omitempty"`
}

// rawConn is a WebSocket to the gateway driven frame by frame, for clients
// that misbehave.
type rawConn struct {
	t  testing.TB
	ws *websocket.Conn
}

// dialRaw opens a WebSocket to url and reads the connect.challenge.
func dialRaw(t testing.TB, url string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("websocket.Dial: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &rawConn{t: t, ws: ws}
	if f := c.read(); f.Type != gateway.FrameEvent || f.Event != "connect.challenge" {
		t.Fatalf("first frame = %+v, want the connect.challenge event", f)
	}
	return c
}

// connectFrame is a connect request for protocols [lo, hi].
func connectFrame(id string, lo, hi int) string {
	return fmt.Sprintf(`{"type":"req","id":%q,"method":"connect","params":{"minProtocol":%d,"maxProtocol":%d,`+
		`"client":{"id":"cli","version":"1","platform":"test","mode":"cli"}}}`, id, lo, hi)
}

// connect performs a valid handshake and returns the hello-ok.
func (c *rawConn) connect() *gateway.HelloOK {
	c.t.Helper()
	c.send(connectFrame("c1", gateway.ProtocolVersion, gateway.ProtocolVersion))
	f := c.read()
	if f.Type != gateway.FrameRes || f.ID != "c1" || !f.OK {
		c.t.Fatalf("connect answered %+v (error %v), want ok", f, f.Error)
	}
	var hello gateway.HelloOK
	if err := json.Unmarshal(f.Payload, &hello); err != nil {
		c.t.Fatalf("decode hello-ok: %v", err)
	}
	return &hello
}

func (c *rawConn) send(frame string) {
	c.t.Helper()
	if err := c.sendErr(frame); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

func (c *rawConn) sendErr(frame string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, []byte(frame))
}

// read returns the next frame, failing the test if there is none.
func (c *rawConn) read() wireFrame {
	c.t.Helper()
	f, err := c.readErr()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (c *rawConn) readErr() (wireFrame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		return wireFrame{}, err
	}
	var f wireFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return wireFrame{}, fmt.Errorf("server sent a frame that is not JSON: %q", data)
	}
	return f, nil
}

// response reads frames until the response to id, skipping events.
func (c *rawConn) response(id string) wireFrame {
	c.t.Helper()
	for {
		f := c.read()
		if f.Type == gateway.FrameRes && f.ID == id {
			return f
		}
		if f.Type != gateway.FrameEvent {
			c.t.Fatalf("got %+v while waiting for response %q", f, id)
		}
	}
}

// expectClose reads until the connection ends and checks that the server
// closed it with status want.
func (c *rawConn) expectClose(want websocket.StatusCode) {
	c.t.Helper()
	for {
		f, err := c.readErr()
		if err == nil {
			if f.Type != gateway.FrameEvent {
				c.t.Fatalf("got %+v, want the connection to close with %d", f, want)
			}
			continue
		}
		if got := websocket.CloseStatus(err); got != want {
			c.t.Fatalf("connection ended with %v (status %d), want close status %d", err, got, want)
		}
		return
	}
}

// errorCode returns the code of the *gateway.Error in err's chain, "" if none.
func errorCode(err error) string {
	var e *gateway.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// trackingHTTPClient returns an HTTP client whose connections tr records.
func trackingHTTPClient(t testing.TB, tr *connTracker) *http.Client {
	var d net.Dialer
	tp := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return tr.track(c), nil
	}}
	t.Cleanup(tp.CloseIdleConnections)
	return &http.Client{Transport: tp}
}
