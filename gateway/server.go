package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/agentfed/agentfed/internal/wsconn"
)

// MethodCancel is served by every Server: params {"id"} end the context of
// that request in flight on the same connection. Clients send it when the
// caller of a Call gives up, if the server lists it in hello-ok.
const MethodCancel = "request.cancel"

// Handler serves the requests of an authenticated connection. It is called
// concurrently, once per request; ctx ends when the connection closes or
// the client cancels the request (request.cancel).
type Handler interface {
	ServeRPC(ctx context.Context, id *Identity, method string, params json.RawMessage) (any, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, id *Identity, method string, params json.RawMessage) (any, error)

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, id *Identity, method string, params json.RawMessage) (any, error) {
	return f(ctx, id, method, params)
}

// Authenticator decides who a connection is from its connect params and
// HTTP request. It returns an *Error (UNAUTHORIZED, FORBIDDEN) to refuse.
type Authenticator func(r *http.Request, p *ConnectParams) (*Identity, error)

// Server accepts gateway-protocol WebSocket connections. It implements
// http.Handler. Set its fields before the first connection; they must not
// change afterwards. The zero value, given a Handler, accepts every
// program and no browser (see Guard). Set the http.Server's ConnState to
// Server.ConnState to bound connections that send no request, too.
type Server struct {
	Handler      Handler
	Authenticate Authenticator
	// Methods returns the methods a role may call, for hello-ok.
	Methods func(role string) []string
	// Events lists the events the server may send, for hello-ok.
	Events   []string
	Version  string
	ServerID string
	Logger   *slog.Logger
	// Health, when set, returns the health object of the hello-ok snapshot.
	Health func() any
	// MaxPayload caps one frame. Default 4 MiB.
	MaxPayload int64
	// HandshakeTimeout bounds the time from accept to a successful connect.
	// Default 15s, as OpenClaw's.
	HandshakeTimeout time.Duration
	// MaxInFlight caps concurrent requests per connection; the reader
	// waits for a free slot, which pushes back on the sender. Default 256.
	MaxInFlight int
	// WriteTimeout aborts a connection whose writes make no progress for
	// this long: the client stopped reading. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that has read nothing (not even a
	// ping) for this long; it needs the listener wrapped with TrackActivity.
	// Default 10 minutes.
	IdleTimeout time.Duration
	// TickInterval is how often a tick event is sent. Default 30s.
	TickInterval time.Duration
	// Started is when the service started, for hello-ok's uptimeMs.
	// Default: when the Server first served.
	Started time.Time
	// Guard checks every request's Origin before the upgrade (see Guard).
	// Nil: no browser origin is allowed.
	Guard *Guard
	// MaxConns caps the WebSocket connections open at once; beyond it a
	// new connection is refused with HTTP 503 before the upgrade. Default
	// 4096.
	MaxConns int
	// MaxHandshakes caps the connections that have not completed connect
	// (each for at most HandshakeTimeout); beyond it a new connection is
	// refused with HTTP 503 before the upgrade. Default 256.
	MaxHandshakes int
	// Refused, when set, is called with "connection_limit" for every
	// connection refused by MaxConns or MaxHandshakes (for metrics). It
	// must be safe for concurrent use.
	Refused func(reason string)

	refusedLog LogThrottle // remote parties can trigger refusals at will

	startOnce   sync.Once
	mu          sync.Mutex // guards conns, open, handshaking, waiting, closing, revokeGen and revoke
	conns       map[*serverConn]struct{}
	open        int                   // connections admitted by ServeHTTP and not yet ended
	handshaking int                   // of those, the ones that have not completed connect
	waiting     map[net.Conn]struct{} // TCP connections without a request yet (ConnState)
	closing     bool
	revokeGen   int                  // counts Revoke calls
	revoke      func(*Identity) bool // the last Revoke's rule, for handshakes it overlapped
	wg          sync.WaitGroup       // one per ServeHTTP in progress
}

const (
	defaultMaxPayload       = 4 << 20
	defaultHandshakeTimeout = 15 * time.Second
	defaultMaxInFlight      = 256
	defaultTickInterval     = 30 * time.Second
	defaultIdleTimeout      = 10 * time.Minute
	defaultMaxConns         = 4096
	defaultMaxHandshakes    = 256
	maxPreauthPayload       = 64 << 10
	writeTimeout            = 10 * time.Second
)

func (s *Server) started() time.Time {
	s.startOnce.Do(func() {
		if s.Started.IsZero() {
			s.Started = time.Now()
		}
	})
	return s.Started
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// ServeHTTP upgrades the request to a WebSocket and serves it until it
// closes or the server shuts down.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.Guard.CheckOrigin(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if refusal := s.admit(); refusal != "" {
		if s.Refused != nil {
			s.Refused("connection_limit")
		}
		if ok, suppressed := s.refusedLog.Allow(); ok {
			s.logger().Warn("connection refused", "remote", r.RemoteAddr, "reason", refusal, "suppressed", suppressed)
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, refusal, http.StatusServiceUnavailable)
		return
	}
	defer s.release()
	defer s.wg.Done()

	// The Guard has checked the Origin, more strictly than Accept would.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.handshakeDone()
		s.logger().Debug("websocket accept failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// Every path below has closed ws or received a close frame, except a
	// read that failed on a read limit, a protocol error or a dropped TCP
	// connection: release the connection then too.
	defer ws.Close(websocket.StatusInternalError, "connection ended")
	ws.SetReadLimit(maxPreauthPayload)
	c := &serverConn{srv: s, ws: ws, req: r, connID: newID(), lastRead: lastActivity(r.Context()), batch: batching(r.Context()),
		revoked: make(chan string, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	if !s.track(c) {
		s.handshakeDone()
		ws.Close(websocket.StatusGoingAway, "gateway shutting down")
		return
	}
	defer s.untrack(c)
	c.serve()
}

func (s *Server) track(c *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*serverConn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting connections and requests, lets requests in
// flight finish until ctx ends, then closes every connection with a close
// frame and waits for their goroutines. It returns ctx's error when ctx
// ended before the requests in flight finished.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.drain(ctx) })
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		// Not nil when ctx ended during the drain and requests were cut.
		return ctx.Err()
	case <-ctx.Done():
		for _, c := range conns {
			c.ws.CloseNow()
		}
		<-done
		return ctx.Err()
	}
}

// serverConn is one accepted connection.
type serverConn struct {
	srv    *Server
	ws     *websocket.Conn
	req    *http.Request
	connID string
	ctx    context.Context // ends when the connection is done
	cancel context.CancelFunc

	lastRead func() time.Time // when the TCP connection last read; nil if untracked
	batch    *wsconn.Conn     // the TCP connection's write batching; nil if untracked
	writes   wsconn.WriteGauge

	reqMu sync.Mutex                    // guards reqs
	reqs  map[string]context.CancelFunc // requests in flight, by id

	log      *slog.Logger
	readDone chan struct{} // closed by the reader that saw the connection end
	inline   bool          // the handler is a wsconn.Inliner: serve on the reader
	rbuf     []byte        // the reader's buffer (inline); nil after a Detach

	id       *Identity
	protocol int
	seq      atomic.Int64   // last event seq sent
	inflight sync.WaitGroup // requests being served
	sem      chan struct{}  // bounds inflight

	mu       sync.Mutex // guards draining
	draining bool

	revoked    chan string // Revoke's close reason, for tick to close with
	revokedSet atomic.Bool // Revoke named this connection: refuse its requests
}

func (c *serverConn) serve() {
	c.log = c.srv.logger().With("conn", c.connID, "remote", c.req.RemoteAddr)
	err := c.handshake()
	c.srv.handshakeDone()
	if err != nil {
		if ok, suppressed := c.srv.refusedLog.Allow(); ok {
			c.log.Info("handshake refused", "err", err, "suppressed", suppressed)
		}
		return
	}
	c.log = c.log.With("role", c.id.Role, "peer", c.id.PeerID)
	c.log.Debug("connection open")
	c.sem = make(chan struct{}, orDefault(c.srv.MaxInFlight, defaultMaxInFlight))
	c.readDone = make(chan struct{})
	if in, ok := c.srv.Handler.(wsconn.Inliner); ok {
		c.inline = in.ServesInline()
	}

	var tickers sync.WaitGroup
	tickers.Go(c.tick)
	defer tickers.Wait()
	defer c.inflight.Wait()
	defer c.cancel() // the connection is gone: end the handlers' ctx first

	c.read()
	<-c.readDone // this goroutine may have handed reading on (Detach)
}

// read reads and dispatches requests until the connection ends (then
// readEnded); or until an inline handler detaches, handing reading to
// a new goroutine. One goroutine reads at a time.
func (c *serverConn) read() {
	for {
		// Read with no ctx of its own: every way this loop must end closes
		// the connection, which ends the Read, and a cancellable ctx would
		// cost a deadline watcher per frame.
		// Inline, the frame is done with when the next read starts (Detach
		// hands the buffer to the detached request), so one buffer serves.
		if c.rbuf == nil || !c.inline {
			c.rbuf = make([]byte, 0, 1024)
		}
		data, err := readMessage(c.ws, c.rbuf)
		c.rbuf = data
		if err != nil {
			if status := websocket.CloseStatus(err); status == -1 && c.ctx.Err() == nil {
				c.log.Debug("connection read ended", "err", err)
			}
			break
		}
		f, err := decodeFrame(data)
		if err != nil {
			if f != nil && f.Type == FrameReq && f.ID != "" && len(f.ID) <= maxIDLen {
				c.reply(f.ID, nil, NewError(CodeInvalidRequest, err.Error()))
				continue
			}
			c.ws.Close(websocket.StatusPolicyViolation, truncate("malformed frame: "+err.Error(), 120))
			break
		}
		if f.Type != FrameReq {
			continue // clients send no res or event frames we act on
		}
		if f.Method == "connect" {
			c.reply(f.ID, nil, NewError(CodeInvalidRequest, "already connected: connect may be sent only once"))
			continue
		}
		if f.Method == MethodCancel {
			c.cancelRequest(f)
			continue
		}
		if c.revokedSet.Load() {
			c.reply(f.ID, nil, NewError(CodeUnauthorized, "the credential this connection authenticated with was revoked; reconnect with a valid one"))
			continue
		}
		// Admit the request, unless draining: checked and counted under one
		// lock, so drain's Wait never races an Add.
		c.mu.Lock()
		draining := c.draining
		if !draining {
			c.inflight.Add(1)
		}
		c.mu.Unlock()
		if draining {
			c.reply(f.ID, nil, NewError(CodeShuttingDown, "gateway is shutting down; retry on another gateway or later"))
			continue
		}
		select {
		case c.sem <- struct{}{}:
		default:
			if c.batch != nil {
				c.batch.Release() // about to wait: the replies held must go out now
			}
			select {
			case c.sem <- struct{}{}:
			case <-c.ctx.Done():
				c.inflight.Done()
				c.readEnded()
				return
			}
		}
		if !c.inline {
			ctx, cancel := context.WithCancel(c.ctx)
			c.trackRequest(f.ID, cancel)
			go c.serveRequest(ctx, cancel, f)
		} else if c.serveInline(f) {
			return // detached: another goroutine reads now
		}
	}
	c.readEnded()
}

// readEnded ends the handlers' ctx, since the connection is gone (the
// goroutine waiting in serve may be serving a detached request itself),
// and wakes serve.
func (c *serverConn) readEnded() {
	c.cancel()
	close(c.readDone)
}

func (c *serverConn) serveRequest(ctx context.Context, cancel context.CancelFunc, f *frame) {
	defer c.inflight.Done()
	defer func() { <-c.sem }()
	defer cancel()
	payload, err := c.callHandler(ctx, f)
	c.untrackRequest(f.ID)
	c.reply(f.ID, payload, err)
}

// serveInline serves f on the reader goroutine and reports whether its
// handler detached, which made another goroutine the reader.
func (c *serverConn) serveInline(f *frame) (detached bool) {
	defer c.inflight.Done()
	defer func() { <-c.sem }()
	r := &inlineRequest{Context: c.ctx, c: c, id: f.ID}
	payload, err := c.callHandler(r, f)
	if r.cancel != nil {
		c.untrackRequest(f.ID)
		r.cancel()
	}
	c.reply(f.ID, payload, err)
	return r.cancel != nil
}

func (c *serverConn) trackRequest(id string, cancel context.CancelFunc) {
	c.reqMu.Lock()
	if c.reqs == nil {
		c.reqs = make(map[string]context.CancelFunc)
	}
	c.reqs[id] = cancel
	c.reqMu.Unlock()
}

func (c *serverConn) untrackRequest(id string) {
	c.reqMu.Lock()
	delete(c.reqs, id)
	c.reqMu.Unlock()
}

// inlineRequest is the context of a request served on the reader
// goroutine (a wsconn.Inliner handler); wsconn.Detach finds it by
// wsconn.DetachKey.
type inlineRequest struct {
	context.Context
	c      *serverConn
	id     string
	cancel context.CancelFunc // set by Detach
}

func (r *inlineRequest) Value(key any) any {
	if key == (wsconn.DetachKey{}) {
		return r
	}
	return r.Context.Value(key)
}

// Detach implements wsconn.Detacher: it hands the connection's reading to
// a new goroutine, once.
func (r *inlineRequest) Detach(ctx context.Context) context.Context {
	if r.cancel != nil {
		return ctx
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.c.trackRequest(r.id, r.cancel)
	r.c.rbuf = nil // the request's params live on in it
	go r.c.read()
	return ctx
}

// CancelParams are the params of request.cancel.
type CancelParams struct {
	ID string `json:"id"`
}

// cancelRequest ends the context of the request in flight with the given
// id on this connection, so its handler stops work nobody waits for.
func (c *serverConn) cancelRequest(f *frame) {
	var p CancelParams
	if err := json.Unmarshal(f.Params, &p); err != nil || p.ID == "" {
		c.reply(f.ID, nil, NewError(CodeInvalidParams, "request.cancel needs params {\"id\": the request's id}"))
		return
	}
	c.reqMu.Lock()
	cancel := c.reqs[p.ID]
	c.reqMu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.reply(f.ID, map[string]bool{"cancelled": cancel != nil}, nil)
}

// callHandler runs the handler, turning a panic into an INTERNAL error so
// one bad request cannot take the gateway down.
func (c *serverConn) callHandler(ctx context.Context, f *frame) (payload any, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.srv.logger().Error("handler panic", "method", f.Method, "panic", r)
			payload, err = nil, NewError(CodeInternal, fmt.Sprintf("internal error serving %s", f.Method))
		}
	}()
	return c.srv.Handler.ServeRPC(ctx, c.id, f.Method, f.Params)
}

func (c *serverConn) tick() {
	t := time.NewTicker(orDefault(c.srv.TickInterval, defaultTickInterval))
	defer t.Stop()
	idle := orDefault(c.srv.IdleTimeout, defaultIdleTimeout)
	check := time.NewTicker(max(min(idle, orDefault(c.srv.WriteTimeout, writeTimeout))/4, 10*time.Millisecond))
	defer check.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			c.event("tick", TickEvent{TS: now.UnixMilli()})
		case reason := <-c.revoked:
			c.log.Info("closing connection whose credential was revoked")
			c.ws.Close(websocket.StatusPolicyViolation, reason)
			return
		case now := <-check.C:
			if limit := orDefault(c.srv.WriteTimeout, writeTimeout); c.writes.Stalled(now, limit) || c.batch != nil && c.batch.Stalled(now, limit) {
				c.srv.logger().Debug("closing connection whose writes stalled", "conn", c.connID)
				c.ws.CloseNow() // a polite close would queue behind the stuck write
				return
			}
			if c.lastRead != nil && now.Sub(c.lastRead()) > idle {
				c.srv.logger().Debug("closing idle connection", "conn", c.connID, "idle", idle)
				c.ws.Close(websocket.StatusPolicyViolation, "idle timeout")
				return
			}
		}
	}
}

// handshake sends the challenge, waits for connect and answers hello-ok.
// On failure it has already closed the connection with a reason.
func (c *serverConn) handshake() error {
	// A Read whose ctx expires drops the TCP connection without a close
	// frame, so the timeout closes the connection itself, with a reason.
	expired := make(chan struct{})
	timer := time.AfterFunc(orDefault(c.srv.HandshakeTimeout, defaultHandshakeTimeout), func() {
		defer close(expired)
		c.ws.Close(websocket.StatusPolicyViolation, "handshake timeout: send connect first")
	})
	c.event("connect.challenge", Challenge{Nonce: newID(), TS: time.Now().UnixMilli()})
	_, data, err := c.ws.Read(c.ctx)
	if !timer.Stop() {
		<-expired
	}
	if err != nil {
		c.ws.Close(websocket.StatusPolicyViolation, "handshake timeout: send connect first")
		return fmt.Errorf("read connect: %w", err)
	}
	f, err := decodeFrame(data)
	if err == nil && (f.Type != FrameReq || f.Method != "connect") {
		err = fmt.Errorf("the first request must be connect, got %s %q", f.Type, f.Method)
	}
	if err != nil {
		return c.refuse(f, NewError(CodeInvalidRequest, err.Error()))
	}
	var p ConnectParams
	if err := json.Unmarshal(f.Params, &p); err != nil {
		return c.refuse(f, NewError(CodeInvalidRequest, "connect params: "+err.Error()))
	}
	if p.Role == "" {
		p.Role = RoleOperator
	}
	c.protocol = negotiate(p.MinProtocol, p.MaxProtocol)
	if c.protocol == 0 {
		e := NewError(CodeInvalidRequest, fmt.Sprintf("protocol mismatch: client speaks [%d, %d], this gateway [%d, %d]",
			p.MinProtocol, p.MaxProtocol, MinProtocolVersion, ProtocolVersion))
		e.Details = map[string]any{"code": "PROTOCOL_MISMATCH", "clientMinProtocol": p.MinProtocol,
			"clientMaxProtocol": p.MaxProtocol, "expectedProtocol": ProtocolVersion}
		c.reply(f.ID, nil, e)
		c.ws.Close(websocket.StatusProtocolError, "protocol mismatch")
		return e
	}
	id := &Identity{Role: p.Role, PeerID: p.Client.InstanceID, Scopes: p.Scopes}
	gen := c.srv.revokeGeneration()
	if c.srv.Authenticate != nil {
		if id, err = c.srv.Authenticate(c.req, &p); err != nil {
			return c.refuse(f, err)
		}
		if id == nil {
			return c.refuse(f, NewError(CodeInternal, "authenticator returned no identity"))
		}
	}
	id.ConnID, id.RemoteAddr, id.Client = c.connID, c.req.RemoteAddr, p.Client
	if !c.srv.setIdentity(c, id, gen) {
		return c.refuse(f, revokedError())
	}
	c.reply(f.ID, c.hello(id, p.Auth != nil && p.Auth.Token != ""), nil)
	c.ws.SetReadLimit(orDefault(c.srv.MaxPayload, defaultMaxPayload))
	return nil
}

func (c *serverConn) hello(id *Identity, token bool) *HelloOK {
	h := &HelloOK{
		Type:     "hello-ok",
		Protocol: c.protocol,
		Server:   HelloServer{Version: c.srv.Version, ConnID: c.connID, ServerID: c.srv.ServerID},
		Features: HelloFeatures{Methods: []string{}, Events: append([]string{"tick"}, c.srv.Events...)},
		Auth:     HelloAuth{Role: id.Role, Scopes: id.Scopes, Method: "none"},
		Policy: HelloPolicy{
			MaxPayload:       orDefault(c.srv.MaxPayload, defaultMaxPayload),
			MaxBufferedBytes: 2 * orDefault(c.srv.MaxPayload, defaultMaxPayload),
			TickIntervalMs:   orDefault(c.srv.TickInterval, defaultTickInterval).Milliseconds(),
		},
	}
	if token {
		h.Auth.Method = "token"
	}
	if h.Auth.Scopes == nil {
		h.Auth.Scopes = []string{}
	}
	if c.srv.Methods != nil {
		h.Features.Methods = append(h.Features.Methods, c.srv.Methods(id.Role)...)
	}
	h.Features.Methods = append(h.Features.Methods, MethodCancel)
	snap := Snapshot{Presence: []any{}, Health: map[string]any{}, UptimeMs: time.Since(c.srv.started()).Milliseconds(), ServerID: c.srv.ServerID}
	if c.srv.Health != nil {
		snap.Health = c.srv.Health()
	}
	if id.Role != RolePeer {
		openClawHello(h, &snap)
	}
	h.Snapshot, _ = json.Marshal(snap)
	return h
}

func (c *serverConn) refuse(f *frame, err error) error {
	if f != nil && f.ID != "" && len(f.ID) <= maxIDLen {
		c.reply(f.ID, nil, err)
	}
	c.ws.Close(websocket.StatusPolicyViolation, truncate(err.Error(), 120))
	return err
}

// drain refuses new requests, waits for those in flight (until ctx ends),
// and closes the connection with a going-away close frame.
func (c *serverConn) drain(ctx context.Context) {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	c.ws.Close(websocket.StatusGoingAway, "gateway shutting down")
	c.cancel()
}

func (c *serverConn) reply(id string, payload any, err error) {
	if a, ok := payload.(Appender); ok && err == nil {
		buf := getBuf()
		if *buf, err = appendResponseOf(*buf, id, a); err == nil {
			err = c.writeResponse(*buf)
		} else {
			err = NewError(CodeInternal, "encode response: "+err.Error())
		}
		putBuf(buf)
		if err == nil {
			return
		}
	}
	if err == nil {
		var b json.RawMessage
		if b, err = marshalPayload(payload); err == nil {
			buf := getBuf()
			*buf = appendResponse(*buf, id, b)
			err = c.writeResponse(*buf)
			putBuf(buf)
			if err == nil {
				return
			}
		} else {
			err = NewError(CodeInternal, "encode response: "+err.Error())
		}
	}
	c.write(Response{Type: FrameRes, ID: id, Error: ToError(err)})
}

// writeResponse writes a response frame, unless it is over the frame
// limit, which the client's reader would fail on, dropping the
// connection and every call on it: then the call alone fails, TOO_LARGE.
func (c *serverConn) writeResponse(b []byte) error {
	if limit := orDefault(c.srv.MaxPayload, defaultMaxPayload); int64(len(b)) > limit {
		return NewError(CodeTooLarge, fmt.Sprintf("the response is %d bytes, over the %d-byte frame limit (hello-ok policy.maxPayload); ask for less", len(b), limit))
	}
	c.writeBytes(b)
	return nil
}

func (c *serverConn) event(name string, payload any) {
	b, err := marshalPayload(payload)
	if err != nil {
		return
	}
	seq := c.seq.Add(1)
	c.write(Event{Type: FrameEvent, Event: name, Payload: b, Seq: &seq})
}

func (c *serverConn) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.writeBytes(b)
}

// writeBytes writes one frame. It takes no deadline of its own (that
// would cost a timer and a watcher per frame): tick aborts a connection
// whose writes make no progress for writeTimeout.
func (c *serverConn) writeBytes(b []byte) {
	c.writes.Begin()
	err := c.ws.Write(context.Background(), websocket.MessageText, b)
	c.writes.End()
	if err != nil {
		c.srv.logger().Debug("write failed", "conn", c.connID, "err", err)
	}
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// truncate cuts s to at most n bytes, on a rune boundary: a close reason
// must be valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
