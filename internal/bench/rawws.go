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
	url    string
	srv    *http.Server
	served chan struct{} // closed when Serve has returned

	mu    sync.Mutex // guards conns
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup // one per connection being served
}

func startWSEcho(decodeJSON bool) (*wsEcho, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &wsEcho{url: "ws://" + ln.Addr().String(), served: make(chan struct{}), conns: make(map[*websocket.Conn]struct{})}
	e.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		e.serve(ws, decodeJSON)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(e.served)
		e.srv.Serve(ln)
	}()
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
	<-e.served
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

// startRawWSRTT starts a JSON-decoding echo and dials it: one op is one
// round trip of the sample frame, decoded on both sides.
func startRawWSRTT(ctx context.Context, _ *Options, s *sample) (func(context.Context) error, func(), error) {
	e, err := startWSEcho(true)
	if err != nil {
		return nil, nil, err
	}
	ws, err := dialWS(ctx, e.url)
	if err != nil {
		e.close()
		return nil, nil, err
	}
	bg := context.Background() // the fastest path: no per-call timers
	op := func(context.Context) error {
		if err := ws.Write(bg, websocket.MessageText, s.frame); err != nil {
			return err
		}
		_, b, err := ws.Read(bg)
		if err != nil {
			return err
		}
		return decode(b)
	}
	return op, func() { ws.CloseNow(); e.close() }, nil
}

// pipeline streams the sample frame through a bare echo that does no JSON
// work, keeping a window of messages in flight on one connection.
type pipeline struct {
	ws       *websocket.Conn
	frame    []byte
	tokens   chan struct{} // one per message in flight
	received atomic.Int64
	readDone chan struct{}
	readErr  error // why the reader ended; set before readDone is closed
}

func startPipeline(ctx context.Context, window int, s *sample) (countFunc, func(), error) {
	e, err := startWSEcho(false)
	if err != nil {
		return nil, nil, err
	}
	ws, err := dialWS(ctx, e.url)
	if err != nil {
		e.close()
		return nil, nil, err
	}
	p := &pipeline{ws: ws, frame: s.frame, tokens: make(chan struct{}, window), readDone: make(chan struct{})}
	go p.read()
	return p.run, func() { ws.CloseNow(); <-p.readDone; e.close() }, nil
}

func (p *pipeline) read() {
	defer close(p.readDone)
	for {
		if _, _, err := p.ws.Read(context.Background()); err != nil {
			p.readErr = err
			return
		}
		p.received.Add(1)
		<-p.tokens
	}
}

// run writes for d, keeping the window full, then waits for the answers
// still in flight, and returns how many answers came back meanwhile.
func (p *pipeline) run(ctx context.Context, d time.Duration) (int64, time.Duration, error) {
	start := time.Now()
	from := p.received.Load()
	for end := start.Add(d); time.Now().Before(end) && ctx.Err() == nil; {
		select {
		case p.tokens <- struct{}{}:
		case <-p.readDone:
			return 0, 0, p.readErr
		}
		if err := p.ws.Write(context.Background(), websocket.MessageText, p.frame); err != nil {
			return 0, 0, err
		}
	}
	for len(p.tokens) > 0 {
		select {
		case <-p.readDone:
			return 0, 0, p.readErr
		default:
			time.Sleep(20 * time.Microsecond)
		}
	}
	return p.received.Load() - from, time.Since(start), ctx.Err()
}
