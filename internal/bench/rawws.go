package bench

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// wsEcho is a bare coder/websocket echo server on 127.0.0.1: it writes
// every message back as it came, after decoding it as a gateway decodes a
// relay request when decodeJSON is set. It is the floor a gateway's relay
// is compared with: the same library, the same bytes, no federation.
type wsEcho struct {
	url string
	ln  net.Listener
	srv *http.Server

	mu    sync.Mutex // guards conns
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup // one per connection being served
}

func startWSEcho(decodeJSON bool) (*wsEcho, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &wsEcho{url: "ws://" + ln.Addr().String(), ln: ln, conns: make(map[*websocket.Conn]struct{})}
	e.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		e.serve(ws, decodeJSON)
	}), ReadHeaderTimeout: 10 * time.Second}
	go e.srv.Serve(ln)
	return e, nil
}

func (e *wsEcho) serve(ws *websocket.Conn, decodeJSON bool) {
	e.mu.Lock()
	if e.conns == nil { // closing
		e.mu.Unlock()
		ws.CloseNow()
		return
	}
	e.conns[ws] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()
	defer ws.CloseNow()
	ctx := context.Background() // the fastest path: no per-call timers
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if decodeJSON && decode(b) != nil {
			ws.Close(websocket.StatusUnsupportedData, "not a relay frame")
			return
		}
		if err := ws.Write(ctx, typ, b); err != nil {
			return
		}
	}
}

// close stops the server and every connection and waits for them.
func (e *wsEcho) close() {
	e.srv.Close()
	e.mu.Lock()
	conns := e.conns
	e.conns = nil
	e.mu.Unlock()
	for ws := range conns {
		ws.CloseNow()
	}
	e.wg.Wait()
}

func dialWS(ctx context.Context, url string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(4 << 20)
	return ws, nil
}

// measureRawWSRTT times sequential round trips of the sample frame through
// a bare WebSocket echo, decoding it on both sides.
func measureRawWSRTT(ctx context.Context, o *Options, s *sample) Result {
	r := Result{Note: "bare coder/websocket echo of the same frame, JSON-decoded on both sides: the floor"}
	e, err := startWSEcho(true)
	if err != nil {
		return fail(r, err)
	}
	defer e.close()
	ws, err := dialWS(ctx, e.url)
	if err != nil {
		return fail(r, err)
	}
	defer ws.CloseNow()
	bg := context.Background()
	l, err := timeLoop(ctx, o.Duration, func(context.Context) error {
		if err := ws.Write(bg, websocket.MessageText, s.frame); err != nil {
			return err
		}
		_, b, err := ws.Read(bg)
		if err != nil {
			return err
		}
		return decode(b)
	})
	if err != nil {
		return fail(r, err)
	}
	l.addTo(&r, "")
	return r
}

// pipelinedWSThroughput streams the sample frame through a bare echo that
// does no JSON work, keeping window messages in flight on one connection,
// and returns messages per second.
func pipelinedWSThroughput(ctx context.Context, window int, d time.Duration, s *sample) (float64, error) {
	e, err := startWSEcho(false)
	if err != nil {
		return 0, err
	}
	defer e.close()
	ws, err := dialWS(ctx, e.url)
	if err != nil {
		return 0, err
	}
	defer ws.CloseNow()

	tokens := make(chan struct{}, window)
	var (
		stop, counting atomic.Bool
		received       atomic.Int64
		readErr        error
		readDone       = make(chan struct{})
		writeErr       = make(chan error, 1)
	)
	go func() {
		defer close(readDone)
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				readErr = err
				return
			}
			if counting.Load() {
				received.Add(1)
			}
			<-tokens
		}
	}()
	go func() {
		for !stop.Load() {
			select {
			case tokens <- struct{}{}:
			case <-readDone:
				writeErr <- readErr
				return
			}
			if err := ws.Write(context.Background(), websocket.MessageText, s.frame); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	sleep(ctx, warmup(d))
	counting.Store(true)
	start := time.Now()
	sleep(ctx, d)
	stop.Store(true)
	if err := <-writeErr; err != nil {
		return 0, err
	}
	// Collect the answers still in flight: the window drains.
	for len(tokens) > 0 {
		select {
		case <-readDone:
			return 0, readErr
		default:
			time.Sleep(20 * time.Microsecond)
		}
	}
	elapsed := time.Since(start)
	ws.CloseNow()
	<-readDone
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(received.Load()) / elapsed.Seconds(), nil
}
