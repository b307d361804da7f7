package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/coder/websocket"
)

// startBatched serves s as a federation node does: on a TrackActivity
// listener, so that its connections batch writes.
func startBatched(t *testing.T, s *gateway.Server) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(s)
	ts.Listener = gateway.TrackActivity(ts.Listener)
	ts.Config.ConnContext = gateway.ConnContext
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// corkConn holds writes while corked, so that several frames reach the
// server in one TCP segment and its reader reads them with one Read.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    bytes.Buffer
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		return c.buf.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = on
	if !on {
		c.Conn.Write(c.buf.Bytes())
		c.buf.Reset()
	}
}

// TestReplyNotHeldWhileReaderWaitsForSlot: a reader that read several
// requests at once and must wait for a request slot first sends the
// replies it holds, and holds none while it waits.
func TestReplyNotHeldWhileReaderWaitsForSlot(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	url := startBatched(t, &gateway.Server{MaxInFlight: 1, Handler: gateway.HandlerFunc(
		func(ctx context.Context, _ *gateway.Identity, method string, _ json.RawMessage) (any, error) {
			if method == "block" {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return map[string]string{"method": method}, nil
		})})
	var cc *corkConn
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc = &corkConn{Conn: c}
		return cc, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	c := &rawConn{t: t, ws: ws}
	c.read() // the challenge
	c.connect()
	cc.cork(true)
	c.send(`{"type":"req","id":"fast","method":"fast"}`)
	c.send(`{"type":"req","id":"b1","method":"block"}`)
	c.send(`{"type":"req","id":"b2","method":"block"}`)
	cc.cork(false) // all three in one segment: fast takes the one slot, b1 waits for it
	if f := c.response("fast"); !f.OK {
		t.Fatalf("fast: %+v", f)
	}
}

// TestBatchedBothWaysUnderLoad: with both directions full (large frames,
// many in flight), neither end's reader wedges against the other's.
func TestBatchedBothWaysUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	url := startBatched(t, &gateway.Server{Handler: inlineIf(testHandler{}, true)})
	c := dial(t, url, nil)
	params := json.RawMessage(`"` + strings.Repeat("x", 60<<10) + `"`)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 300 {
		wg.Go(func() {
			for range 4 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				var out json.RawMessage
				err := c.Call(ctx, "echo", params, &out)
				cancel()
				if err != nil || len(out) != len(params) {
					if failed.Add(1) == 1 {
						t.Errorf("echo: %v (%d bytes back)", err, len(out))
					}
					return
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 300 callers failed", n)
	}
}
