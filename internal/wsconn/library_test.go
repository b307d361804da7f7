package wsconn_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// errCut is what cutConn's Read returns while cut is set.
var errCut = errors.New("read cut by the test")

// cutConn fails its Reads with errCut, reading nothing, while cut is set,
// as a Conn does when a read is interrupted at a message boundary
// (InterruptRead).
type cutConn struct {
	net.Conn
	cut atomic.Bool
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, errCut
	}
	return c.Conn.Read(p)
}

// TestLibraryReadErrorAtBoundaryKeepsConnection pins the behaviour of
// github.com/coder/websocket that callers reading their own answers rely
// on (InterruptRead, and gateway/client.go's readOwn), which the library
// does not document: when the underlying connection's Read fails at a
// message boundary, Reader returns that error (errors.Is finds it) and the
// WebSocket stays usable both ways, with no close sent. If a library
// upgrade breaks this, interrupting a self-reading caller would break a
// production connection; this test fails first.
func TestLibraryReadErrorAtBoundaryKeepsConnection(t *testing.T) {
	fromClient := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		for _, m := range []string{"one", "two"} {
			if err := ws.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
				t.Error(err)
				return
			}
			// Wait for the client to ask for the next message, so that
			// "two" is not in flight while the client's read is cut.
			if _, p, err := ws.Read(ctx); err != nil {
				t.Errorf("server read after %q: %v", m, err)
				return
			} else {
				fromClient <- string(p)
			}
		}
	}))
	defer srv.Close()

	var conn *cutConn
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn = &cutConn{Conn: c}
		return conn, nil
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	read := func() (string, error) {
		// No ctx of its own, as gateway's readMessage: a read's ctx ending
		// closes the connection.
		_, p, err := ws.Read(context.Background())
		return string(p), err
	}
	if m, err := read(); err != nil || m != "one" {
		t.Fatalf("first Read = %q, %v; want \"one\"", m, err)
	}
	conn.cut.Store(true)
	if m, err := read(); !errors.Is(err, errCut) {
		t.Fatalf("Read at a boundary with the connection cut = %q, %v; want an error wrapping errCut", m, err)
	}
	conn.cut.Store(false)
	// The connection still writes (no close was sent) ...
	if err := ws.Write(ctx, websocket.MessageText, []byte("next")); err != nil {
		t.Fatalf("Write after the cut read: %v", err)
	}
	if got := <-fromClient; got != "next" {
		t.Fatalf("server read %q, want \"next\"", got)
	}
	// ... and reads the next message whole.
	if m, err := read(); err != nil || m != "two" {
		t.Fatalf("Read after the cut read = %q, %v; want \"two\"", m, err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("done")); err != nil {
		t.Fatalf("second Write: %v", err)
	}
	<-fromClient
	ws.Close(websocket.StatusNormalClosure, "")
}
