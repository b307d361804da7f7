package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentfed/agentfed/internal/wsconn"
)

// DialOptions configure a client connection. The zero value dials as an
// operator with no token.
type DialOptions struct {
	Role   string     // default operator
	Token  string     // sent in connect's auth.token
	Scopes []string   // requested scopes
	Client ClientInfo // default: gateway-client, backend mode
	// HTTPClient performs the WebSocket upgrade; set its TLS config for
	// wss:// with a private CA. Default http.DefaultClient. Its
	// CheckRedirect is not used: a dial never follows a redirect.
	HTTPClient *http.Client
	// MaxPayload caps one received frame. Default 4 MiB.
	MaxPayload int64
	// HandshakeTimeout bounds dial plus connect. Default 15s.
	HandshakeTimeout time.Duration
	// WriteTimeout aborts the connection when its writes make no progress
	// for this long (checked every second): the server stopped reading.
	// It also aborts it when a caller whose context ended has waited this
	// long for the rest of a message it was reading: the link stalled.
	// Default 10s.
	WriteTimeout time.Duration
	// OnEvent, when set, receives every event frame after the handshake,
	// on the connection's reader goroutine: it must not block.
	OnEvent func(name string, payload json.RawMessage)
	// Device, when set, proves this device identity in connect: it signs
	// the server's connect.challenge, as OpenClaw's own clients do. An
	// OpenClaw gateway needs it to grant a remote operator its scopes; an
	// agentfed gateway ignores it.
	Device *Device
}

// Client is one gateway-protocol connection to a server. Many Calls may run
// concurrently; their responses are matched by request id. A Client is safe
// for concurrent use.
type Client struct {
	ws        *websocket.Conn
	hello     *HelloOK
	onEvent   func(string, json.RawMessage)
	canCancel bool // the server serves request.cancel
	nextID    atomic.Uint64

	writes       wsconn.WriteGauge // watched by clientWatch
	writeTimeout time.Duration
	conn         *wsconn.Conn // the TCP connection's write batching; nil with a custom RoundTripper

	// selfRead: a caller may read its own answer (conn can interrupt
	// reads); otherwise the reader goroutine reads all the time.
	selfRead bool
	lastRead atomic.Int64 // when a frame was last read, as time since epoch
	// interrupt is readOwn's context.AfterFunc: it interrupts the read and
	// then signals interrupted (capacity 1). expire runs it at a
	// WaitUntil deadline. One caller at a time holds the read, so one of
	// each serves all, made once instead of per call.
	interrupt   func()
	interrupted chan struct{}
	expire      *time.Timer

	mu       sync.Mutex // guards the fields below up to wake
	pending  map[string]*Pending
	err      error // why the connection ended; set once
	reading  bool  // a goroutine holds the read role: it reads frames and hands them out
	pings    int   // Pings waiting for their pong, which only a reader sees
	idleRead bool  // the watchdog asked the reader goroutine to read once (a close, an event)
	sending  bool  // the last request was a Send: the reader goroutine keeps reading

	wake     chan struct{}  // tells the reader goroutine there is reading to do
	done     chan struct{}  // closed when the connection has ended
	readDone chan struct{}  // closed when the reader goroutine returns
	bg       sync.WaitGroup // cancel notices being sent
}

// ErrClosed is the cause of calls failing on a connection that has ended.
var ErrClosed = NewError(CodePeerUnavailable, "gateway: connection closed")

var (
	errClosedHere = errors.New("closed by this side")
	errAborted    = errors.New("aborted by this side")
)

// unsentError is the error of a request that was never written: its
// connection had ended. It can be sent again on a new connection.
type unsentError struct{ error }

func (e unsentError) Unwrap() error { return e.error }

// Unsent reports whether err is from a Send, Request or Call whose request
// was never written, because its connection had ended first: sending it
// again on a new connection cannot run it twice.
func Unsent(err error) bool {
	var u unsentError
	return errors.As(err, &u)
}

// quietProbe is how long a connection that callers read may go unread
// before a request checks it for a close first. Between calls nobody reads
// it, and a peer that closed it since would fail the request.
const quietProbe = time.Millisecond

// epoch is the origin of Client.lastRead.
var epoch = time.Now()

// Dial connects to url, waits for the server's challenge, and performs the
// connect handshake. A refused handshake returns the server's *Error.
func Dial(ctx context.Context, url string, opts *DialOptions) (*Client, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(opts.HandshakeTimeout, defaultHandshakeTimeout))
	defer cancel()
	hc, conn := batchingHTTPClient(opts.HTTPClient)
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if base := opts.HTTPClient; hc.Transport != nil && (base == nil || hc.Transport != base.Transport) {
		hc.CloseIdleConnections() // a refused upgrade may leave one in the private pool
	}
	if rerr := redirectRefused(url, err); rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(orDefault(opts.MaxPayload, defaultMaxPayload))
	hello, err := clientHandshake(ctx, ws, opts)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	c := &Client{
		ws:        ws,
		hello:     hello,
		onEvent:   opts.OnEvent,
		canCancel: slices.Contains(hello.Features.Methods, MethodCancel),
		pending:   make(map[string]*Pending),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		readDone:  make(chan struct{}),

		writeTimeout: orDefault(opts.WriteTimeout, writeTimeout),
		conn:         conn.Load(),
	}
	c.selfRead = c.conn != nil && c.conn.Interruptible() && c.onEvent == nil
	if c.selfRead {
		c.interrupted = make(chan struct{}, 1)
		c.interrupt = func() {
			c.conn.InterruptRead()
			c.interrupted <- struct{}{}
		}
		c.expire = time.AfterFunc(time.Hour, c.interrupt)
		c.expire.Stop()
	}
	c.lastRead.Store(int64(time.Since(epoch)))
	clientWatch.add(c)
	go c.read()
	return c, nil
}

// batchingHTTPClient returns an HTTP client for one WebSocket dial whose
// connection is a wsconn.Conn, stored in conn once dialled: over TCP for
// ws://, over TLS for wss://, so that it sees frames either way and can
// follow them to interrupt reads. Only an *http.Transport can be wrapped
// so; any other RoundTripper is used as is. Either way the client never
// follows a redirect (see refuseRedirect).
func batchingHTTPClient(base *http.Client) (*http.Client, *atomic.Pointer[wsconn.Conn]) {
	conn := new(atomic.Pointer[wsconn.Conn])
	if base == nil {
		base = http.DefaultClient
	}
	hc := *base
	hc.CheckRedirect = refuseRedirect
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return &hc, conn
	}
	t = t.Clone()
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	wrap := func(c net.Conn) net.Conn {
		b := wsconn.NewClient(c) // its reader never sends
		conn.Store(b)
		return b
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
	//lint:ignore SA1019 a DialTLS the caller set must still win
	if t.DialTLSContext == nil && t.DialTLS == nil {
		tlsConfig := t.TLSClientConfig
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialTLS(ctx, dial, tlsConfig, network, addr)
			if err != nil {
				return nil, err
			}
			return wrap(c), nil
		}
	}
	hc.Transport = t
	return &hc, conn
}

// dialTLS dials addr and completes a TLS handshake as http.Transport
// would: the configured TLS settings, the server name from addr unless
// set, and no ALPN, as http.Transport dials for an upgrade.
func dialTLS(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), config *tls.Config, network, addr string) (net.Conn, error) {
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := config.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	cfg.NextProtos = nil // as http.Transport for an upgrade: no ALPN
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

func clientHandshake(ctx context.Context, ws *websocket.Conn, opts *DialOptions) (*HelloOK, error) {
	// Like OpenClaw's reference client, connect only after the challenge.
	cf, err := readUntil(ctx, ws, func(f *frame) bool { return f.Type == FrameEvent && f.Event == "connect.challenge" })
	if err != nil {
		return nil, fmt.Errorf("waiting for connect.challenge: %w", err)
	}
	p := ConnectParams{
		MinProtocol: ProtocolVersion,
		MaxProtocol: ProtocolVersion,
		Client:      opts.Client,
		Role:        opts.Role,
		Scopes:      opts.Scopes,
	}
	if p.Role == "" {
		p.Role = RoleOperator
	}
	if p.Client.ID == "" {
		p.Client.ID, p.Client.Mode = ClientIDGateway, ClientModeBack
	}
	if p.Client.Version == "" {
		p.Client.Version = "dev"
	}
	if p.Client.Platform == "" {
		p.Client.Platform = "go"
	}
	if opts.Token != "" {
		p.Auth = &ConnectAuth{Token: opts.Token}
	}
	req := connectRequest{ConnectParams: p}
	if opts.Device != nil {
		var c Challenge
		if err := json.Unmarshal(cf.Payload, &c); err != nil || c.Nonce == "" || c.TS < 0 {
			return nil, NewError(CodeInvalidRequest, "the server's connect.challenge has no usable nonce and ts to sign with the device identity")
		}
		req.Device = opts.Device.prove(&p, &c)
	}
	if err := writeJSON(ctx, ws, Request{Type: FrameReq, ID: "connect", Method: "connect", Params: mustJSON(req)}); err != nil {
		return nil, fmt.Errorf("send connect: %w", err)
	}
	f, err := readUntil(ctx, ws, func(f *frame) bool { return f.Type == FrameRes && f.ID == "connect" })
	if err != nil {
		return nil, fmt.Errorf("waiting for hello-ok: %w", err)
	}
	if !f.OK {
		if f.Error == nil {
			return nil, NewError(CodeInvalidRequest, "connect refused without a reason")
		}
		return nil, refusal(f.Error)
	}
	var hello HelloOK
	if err := json.Unmarshal(f.Payload, &hello); err != nil || hello.Type != "hello-ok" {
		return nil, NewError(CodeInvalidRequest, "connect answered without a hello-ok payload")
	}
	return &hello, nil
}

// connectRequest is what a client sends in connect: the params, and the
// device identity's proof when it has one.
type connectRequest struct {
	ConnectParams
	Device *DeviceProof `json:"device,omitempty"`
}

// readUntil reads frames until match accepts one, skipping others.
func readUntil(ctx context.Context, ws *websocket.Conn, match func(*frame) bool) (*frame, error) {
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		f, err := decodeFrame(data)
		if err != nil {
			return nil, NewError(CodeInvalidRequest, "server sent a malformed frame: "+err.Error())
		}
		if match(f) {
			return f, nil
		}
	}
}

// Hello returns the server's hello-ok.
func (c *Client) Hello() *HelloOK { return c.hello }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the connection ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Call sends method with params and decodes the response payload into out
// (when out is not nil). A failed response is returned as *Error; a
// connection that ends first fails the call at once with ErrClosed.
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	p, err := c.send(ctx, method, params, false)
	if err != nil {
		return err
	}
	return p.Wait(ctx, out)
}

// Pending is a request sent with Send or Request whose response has not
// been collected yet.
type Pending struct {
	c        *Client
	id       string
	method   string
	ch       chan *frame // the response; closed if the connection ends first
	stamp    bool        // sent with Send: the reader notes when the response arrived
	answered time.Time
}

// Send writes a request and returns without waiting for its response,
// which Wait collects: many requests can be sent by one goroutine, then
// collected. The connection's reader goroutine reads the response when it
// comes, and Answered says when. Every Pending must be waited for.
func (c *Client) Send(ctx context.Context, method string, params any) (*Pending, error) {
	return c.send(ctx, method, params, true)
}

// Request writes a request whose response the caller waits for at once:
// Call split in two. Its Wait may read the response from the connection
// itself, saving the reader goroutine's hand-over; Answered is zero.
func (c *Client) Request(ctx context.Context, method string, params any) (*Pending, error) {
	return c.send(ctx, method, params, false)
}

func (c *Client) send(ctx context.Context, method string, params any, stamp bool) (*Pending, error) {
	id := strconv.FormatUint(c.nextID.Add(1), 36)
	buf := getBuf()
	defer putBuf(buf)
	var err error
	if a, ok := params.(Appender); ok {
		*buf, err = appendRequestOf(*buf, id, method, a)
	} else {
		var raw json.RawMessage
		if raw, err = marshalPayload(params); err == nil {
			*buf = appendRequest(*buf, id, method, raw)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s params: %w", method, err)
	}
	// The server would drop the connection, and every call on it, on a
	// frame over its limit: fail this call alone.
	if limit := c.hello.Policy.MaxPayload; limit > 0 && int64(len(*buf)) > limit {
		return nil, NewError(CodeTooLarge, fmt.Sprintf("%s request of %d bytes is over the server's %d-byte frame limit (hello-ok policy.maxPayload)", method, len(*buf), limit))
	}
	if c.selfRead && time.Since(epoch)-time.Duration(c.lastRead.Load()) > quietProbe {
		c.probe()
	}
	p := &Pending{c: c, id: id, method: method, ch: make(chan *frame, 1), stamp: stamp}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, unsentError{err}
	}
	c.sending = stamp
	c.pending[id] = p
	// A Send's caller goes on working (a broadcast sends on): its request
	// leaves at once. A Call's or Request's caller waits next, which lets
	// the goroutine that uncorks run.
	behind := !stamp && c.conn != nil && len(c.pending) >= writeBehindMin
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		p.forget()
		return nil, err
	}
	// A Write whose ctx ends closes the whole connection, failing every
	// other Call on it; so the write has no ctx, clientWatch cuts it when
	// it stalls for writeTimeout, and ctx bounds the wait for the answer.
	write := c.write
	if behind {
		write = c.writeBehind
	}
	if err := write(*buf); err != nil {
		p.forget()
		return nil, fmt.Errorf("%w: send %s: %v", ErrClosed, method, err)
	}
	if stamp && c.selfRead {
		c.wakeReader() // read the response when it comes, whenever Wait is called
	}
	return p, nil
}

func (p *Pending) forget() {
	p.c.mu.Lock()
	delete(p.c.pending, p.id)
	p.c.mu.Unlock()
}

// Answered is when the response arrived, for a request sent with Send and
// answered; the zero time otherwise.
func (p *Pending) Answered() time.Time { return p.answered }

// Wait waits for the response and decodes its payload into out (when out
// is not nil), as Call does. A response that arrived before ctx ended is
// returned even if Wait is called later.
func (p *Pending) Wait(ctx context.Context, out any) error {
	return p.WaitUntil(ctx, time.Time{}, out)
}

// WaitUntil is Wait that gives up at deadline too (unless it is zero),
// with context.DeadlineExceeded, as if ctx had that deadline. It spares
// a caller whose call is alone on its connection the context and timer of
// its own that a deadline in ctx takes: the connection's one timer serves.
func (p *Pending) WaitUntil(ctx context.Context, deadline time.Time, out any) error {
	defer p.forget()
	var f *frame
	select {
	case f = <-p.ch:
	default:
		var err error
		if p.c.takeRead(1) {
			f, err = p.readOwn(ctx, deadline)
		} else {
			f, err = p.await(ctx, deadline)
		}
		if err != nil {
			p.c.cancelRemote(p.id)
			return err
		}
	}
	if f == nil {
		return p.c.Err()
	}
	defer f.release()
	if !f.OK {
		if f.Error == nil {
			return NewError(CodeInternal, p.method+" failed without an error")
		}
		return f.Error
	}
	if out != nil {
		if err := decodePayload(f.Payload, out); err != nil {
			return NewError(CodeInvalidRequest, fmt.Sprintf("decode %s response: %v", p.method, err))
		}
	}
	return nil
}

// await waits for the reader goroutine to hand over p's answer until ctx
// ends or deadline passes.
func (p *Pending) await(ctx context.Context, deadline time.Time) (*frame, error) {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case f := <-p.ch:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-expired:
		return nil, context.DeadlineExceeded
	}
}

// decodePayload decodes a payload that decodeFrame has validated: a
// json.Unmarshaler is handed it directly, without encoding/json's second
// validating pass.
func decodePayload(payload []byte, out any) error {
	if u, ok := out.(json.Unmarshaler); ok {
		if len(payload) == 0 {
			payload = []byte("null")
		}
		return u.UnmarshalJSON(payload)
	}
	return json.Unmarshal(payload, out)
}

// writeBehindMin is how many calls must be pending on a connection for a
// Call's or Request's request to be written behind: see writeBehind.
const writeBehindMin = 3

// writeBehind writes a request frame while many calls are in flight. It
// corks the connection; the caller that corks it starts a goroutine that
// yields, then uncorks. The requests of the callers that run meanwhile
// (those the reader has just handed answers to) thus leave in one send
// rather than one send each: at 64 in flight, a quarter of the write
// syscalls. A lone call writes at once, with write.
func (c *Client) writeBehind(frame []byte) error {
	first := c.conn.Cork()
	err := c.write(frame)
	if first && !c.background(func() {
		runtime.Gosched()
		c.conn.Uncork()
	}) {
		c.conn.Uncork() // ended: nothing more will be written behind this one
	}
	return err
}

func (c *Client) write(frame []byte) error {
	c.writes.Begin()
	defer c.writes.End()
	return c.ws.Write(context.Background(), websocket.MessageText, frame)
}

// cancelRemote tells the server to stop request id, if it can be told,
// without waiting: the caller has given up already.
func (c *Client) cancelRemote(id string) {
	if !c.canCancel {
		return
	}
	c.background(func() {
		buf := getBuf()
		*buf = appendRequest(*buf, "cancel-"+id, MethodCancel, mustJSON(CancelParams{ID: id}))
		c.write(*buf)
		putBuf(buf)
	})
}

// background runs fn on a goroutine that Close and Abort wait for, unless
// the connection has ended, and reports whether it did. Checking c.err
// under mu orders every such goroutine's start before end, which Close
// and Abort call before they wait.
func (c *Client) background(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.bg.Go(fn)
	return true
}

// takeRead takes the read role for a caller whose call is the only one
// pending on the connection (pending calls at most), if nobody reads.
// When others wait too, the reader goroutine reads for them all, as it
// hands each answer over at no extra cost; takeRead wakes it if needed.
func (c *Client) takeRead(pending int) bool {
	c.mu.Lock()
	if !c.selfRead || c.reading || c.err != nil {
		c.mu.Unlock()
		return false
	}
	if len(c.pending) <= pending {
		c.reading = true
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	c.wakeReader()
	return false
}

// leaveRead gives up the read role, and wakes the reader goroutine when
// others still wait for frames.
func (c *Client) leaveRead() {
	c.mu.Lock()
	c.reading = false
	if c.conn != nil {
		c.conn.ClearInterrupt() // meant for this holder's read: not the next one's, nor Close's
	}
	need := c.needRead()
	c.mu.Unlock()
	if need {
		c.wakeReader()
	}
}

// needRead reports whether somebody waits for a frame: a call's answer, a
// pong, the watchdog's look. It is called with mu held.
func (c *Client) needRead() bool {
	return !c.selfRead || len(c.pending) > 0 || c.pings > 0 || c.idleRead
}

func (c *Client) wakeReader() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// lookIdle has the reader goroutine read, when nobody reads: a
// connection whose callers read their own answers is otherwise not read
// between calls, and a close or an event from the server would wait for
// the next call. The watchdog calls it every idleLookInterval. The reader
// goroutine then waits in its read, which costs nothing while the
// connection stays idle and sees a close at once; the next call is handed
// its answer by it, and the calls after that read their own again.
func (c *Client) lookIdle() {
	c.mu.Lock()
	look := !c.reading && c.err == nil
	c.idleRead = c.idleRead || look
	c.mu.Unlock()
	if look {
		c.wakeReader()
	}
}

// probe reads what the server sent since the connection was last read,
// without waiting: a close ends the connection before a request is
// written to it. A connection someone reads needs no probe.
func (c *Client) probe() {
	if !c.takeRead(0) {
		return
	}
	defer c.leaveRead()
	if !c.conn.PollRead() {
		return
	}
	for {
		err := c.readOne()
		if errors.Is(err, wsconn.ErrInterrupted) {
			return
		}
		if err != nil {
			c.end(err)
			return
		}
	}
}

// readOwn reads frames, handing out the others' answers, until p's answer
// comes, ctx ends or deadline passes, which interrupts the read at the
// next message boundary. The caller holds the read role; readOwn gives it
// up.
func (p *Pending) readOwn(ctx context.Context, deadline time.Time) (*frame, error) {
	c := p.c
	defer c.leaveRead()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, c.interrupt)
		defer c.withdrawInterrupt(stop)
	}
	if !deadline.IsZero() {
		c.expire.Reset(time.Until(deadline))
		defer c.withdrawInterrupt(c.expire.Stop)
	}
	for {
		select {
		case f := <-p.ch:
			if f == nil {
				if err := waitErr(ctx, deadline); err != nil {
					return nil, err // ended by the watchdog, after ctx or deadline
				}
			}
			return f, nil // nil: the connection ended
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := c.readOne()
		switch {
		case errors.Is(err, wsconn.ErrInterrupted):
			// The deadline needs the clock, so it is looked at only
			// here, where expire may have cut the read.
			if err := waitErr(ctx, deadline); err != nil {
				return nil, err
			}
		case err != nil:
			c.end(err)
		}
	}
}

// withdrawInterrupt stops an interrupt of readOwn's with stop. If it ran
// already, it withdraws the interrupt no read took, so that it does not cut
// the next holder's read (or Close's); the wait also leaves interrupted
// empty for the next holder.
func (c *Client) withdrawInterrupt(stop func() bool) {
	if !stop() {
		<-c.interrupted
		c.conn.ClearInterrupt()
	}
}

// waitErr is why a wait until ctx ends or deadline passes is over, or nil.
func waitErr(ctx context.Context, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// read is the connection's reader goroutine. It reads whenever frames are
// awaited and no caller reads them, and, where callers cannot read, all
// the time.
func (c *Client) read() {
	defer close(c.readDone)
	for c.awaitRead() {
		c.readWhileNeeded()
		c.leaveRead()
	}
	// Release the socket when the read failed without a close handshake
	// (dropped connection, read limit); a no-op after one.
	c.ws.Close(websocket.StatusInternalError, "connection ended")
}

// readWhileNeeded reads until nobody waits for a frame, or the connection
// ends.
func (c *Client) readWhileNeeded() {
	for {
		if err := c.readOne(); err != nil && !errors.Is(err, wsconn.ErrInterrupted) {
			c.end(err)
			return
		}
		c.mu.Lock()
		// After a Send, go on reading: more Sends usually follow (a
		// broadcast), and a reader blocked in the read is woken by the
		// answer alone, not also by the Send.
		more := (c.needRead() || c.sending) && c.err == nil
		c.mu.Unlock()
		if !more {
			return
		}
	}
}

// awaitRead waits until the reader goroutine should read and takes the
// read role; false once the connection has ended.
func (c *Client) awaitRead() bool {
	for {
		c.mu.Lock()
		switch {
		case c.err != nil:
			c.mu.Unlock()
			return false
		case !c.reading && c.needRead():
			c.reading, c.idleRead = true, false
			c.mu.Unlock()
			return true
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
		}
	}
}

// readOne reads one message and hands it to whoever waits for it. An
// error other than wsconn.ErrInterrupted ends the connection.
func (c *Client) readOne() error {
	buf := readBufs.Get().(*[]byte)
	var err error
	if *buf, err = readMessage(c.ws, *buf); err != nil {
		recycleRead(buf)
		return err
	}
	c.lastRead.Store(int64(time.Since(epoch)))
	f, err := decodeFrame(*buf)
	if err != nil {
		recycleRead(buf)
		c.ws.Close(websocket.StatusPolicyViolation, truncate("malformed frame: "+err.Error(), 120))
		return err
	}
	switch f.Type {
	case FrameRes:
		c.mu.Lock()
		p := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		if p != nil {
			if p.stamp {
				p.answered = time.Now() // before the send: Wait reads it after
			}
			f.buf = buf // released by Wait once decoded
			p.ch <- f
			return nil
		}
	case FrameEvent:
		if c.onEvent != nil {
			c.onEvent(f.Event, f.Payload)
		}
	}
	recycleRead(buf) // nobody waits: the caller gave up, or an event
	return nil
}

// end records why the connection ended, fails every pending call, and
// wakes the reader goroutine to release the socket. Only the first call
// counts.
func (c *Client) end(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = fmt.Errorf("%w: %s", ErrClosed, closeReason(err))
	for id, p := range c.pending {
		close(p.ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.done)
	clientWatch.remove(c)
}

func closeReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Reason != "" {
			return fmt.Sprintf("closed by server (%d %s)", ce.Code, ce.Reason)
		}
		return fmt.Sprintf("closed by server (%d)", ce.Code)
	}
	return err.Error()
}

// Close sends a normal close frame and waits for the reader and any
// cancel notice being sent to finish.
func (c *Client) Close() error {
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	c.end(errClosedHere)
	<-c.readDone
	c.bg.Wait()
	return err
}

func writeJSON(ctx context.Context, ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, b)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Ping sends a WebSocket ping and waits for the pong; it returns the round
// trip time. It measures the connection, not the server's handlers.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	c.mu.Lock()
	c.pings++
	idle := !c.reading
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.pings--
		c.mu.Unlock()
	}()
	if idle {
		c.wakeReader() // the pong needs a reader
	}
	start := time.Now()
	if err := c.ws.Ping(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// Abort drops the connection without a close handshake, failing every
// pending Call at once. Use it when the peer stopped answering (a missed
// heartbeat), where a polite Close would wait for it.
func (c *Client) Abort() {
	c.ws.CloseNow()
	c.end(errAborted)
	<-c.readDone
	c.bg.Wait()
}
