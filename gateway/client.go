package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// DialOptions configure a client connection. The zero value dials as an
// operator with no token.
type DialOptions struct {
	Role   string     // default operator
	Token  string     // sent in connect's auth.token
	Scopes []string   // requested scopes
	Client ClientInfo // default: gateway-client, backend mode
	// HTTPClient performs the WebSocket upgrade; set its TLS config for
	// wss:// with a private CA. Default http.DefaultClient.
	HTTPClient *http.Client
	// MaxPayload caps one received frame. Default 4 MiB.
	MaxPayload int64
	// HandshakeTimeout bounds dial plus connect. Default 15s.
	HandshakeTimeout time.Duration
	// WriteTimeout aborts the connection when its writes make no progress
	// for this long (checked every second): the server stopped reading.
	// Default 10s.
	WriteTimeout time.Duration
	// OnEvent, when set, receives every event frame after the handshake,
	// on the connection's reader goroutine: it must not block.
	OnEvent func(name string, payload json.RawMessage)
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

	writes       writeGauge // watched by clientWatch
	writeTimeout time.Duration
	conn         *batchConn // the TCP connection's write batching; nil with a custom RoundTripper

	mu      sync.Mutex // guards pending and err
	pending map[string]*Pending
	err     error // why the connection ended; set once

	done     chan struct{}  // closed when the connection has ended
	readDone chan struct{}  // closed when the reader goroutine returns
	bg       sync.WaitGroup // cancel notices being sent
}

// ErrClosed is the cause of calls failing on a connection that has ended.
var ErrClosed = NewError(CodePeerUnavailable, "gateway: connection closed")

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
	if hc != opts.HTTPClient && hc != http.DefaultClient {
		hc.CloseIdleConnections() // a refused upgrade may leave one in the private pool
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
		done:      make(chan struct{}),
		readDone:  make(chan struct{}),

		writeTimeout: orDefault(opts.WriteTimeout, writeTimeout),
		conn:         conn.Load(),
	}
	clientWatch.add(c)
	go c.read()
	return c, nil
}

// batchingHTTPClient returns an HTTP client for one WebSocket dial whose
// TCP connection is a batchConn, stored in conn once dialled. Only an
// *http.Transport can be wrapped so; any other RoundTripper is used as is.
func batchingHTTPClient(base *http.Client) (*http.Client, *atomic.Pointer[batchConn]) {
	conn := new(atomic.Pointer[batchConn])
	if base == nil {
		base = http.DefaultClient
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return base, conn
	}
	t = t.Clone()
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		b := newBatchConn(c, false) // a client's reader must never send
		conn.Store(b)
		return b, nil
	}
	hc := *base
	hc.Transport = t
	return &hc, conn
}

func clientHandshake(ctx context.Context, ws *websocket.Conn, opts *DialOptions) (*HelloOK, error) {
	// Like OpenClaw's reference client, connect only after the challenge.
	if _, err := readUntil(ctx, ws, func(f *frame) bool { return f.Type == FrameEvent && f.Event == "connect.challenge" }); err != nil {
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
	if err := writeJSON(ctx, ws, Request{Type: FrameReq, ID: "connect", Method: "connect", Params: mustJSON(p)}); err != nil {
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
		return nil, f.Error
	}
	var hello HelloOK
	if err := json.Unmarshal(f.Payload, &hello); err != nil || hello.Type != "hello-ok" {
		return nil, NewError(CodeInvalidRequest, "connect answered without a hello-ok payload")
	}
	return &hello, nil
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

// Pending is a request sent with Send whose response has not been
// collected yet.
type Pending struct {
	c        *Client
	id       string
	method   string
	ch       chan *frame // the response; closed if the connection ends first
	stamp    bool        // the reader notes when the response arrived
	answered time.Time
}

// Send writes a request and returns without waiting for its response,
// which Wait collects: many requests can be sent by one goroutine, then
// collected. Every Pending must be waited for. Call is Send then Wait.
func (c *Client) Send(ctx context.Context, method string, params any) (*Pending, error) {
	return c.send(ctx, method, params, true)
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
	p := &Pending{c: c, id: id, method: method, ch: make(chan *frame, 1), stamp: stamp}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[id] = p
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		p.forget()
		return nil, err
	}
	// A Write whose ctx ends closes the whole connection, failing every
	// other Call on it; so the write has no ctx, clientWatch cuts it when
	// it stalls for writeTimeout, and ctx bounds the wait for the answer.
	if err := c.write(*buf); err != nil {
		p.forget()
		return nil, fmt.Errorf("%w: send %s: %v", ErrClosed, method, err)
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
	defer p.forget()
	var f *frame
	select {
	case f = <-p.ch:
	default:
		select {
		case f = <-p.ch:
		case <-ctx.Done():
			p.c.cancelRemote(p.id)
			return ctx.Err()
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

func (c *Client) write(frame []byte) error {
	c.writes.begin()
	defer c.writes.end()
	return c.ws.Write(context.Background(), websocket.MessageText, frame)
}

// cancelRemote tells the server to stop request id, if it can be told,
// without waiting: the caller has given up already.
func (c *Client) cancelRemote(id string) {
	if !c.canCancel || c.Err() != nil {
		return
	}
	c.bg.Go(func() {
		buf := getBuf()
		*buf = appendRequest(*buf, "cancel-"+id, MethodCancel, mustJSON(CancelParams{ID: id}))
		c.write(*buf)
		putBuf(buf)
	})
}

func (c *Client) read() {
	defer close(c.readDone)
	var err error
	for {
		buf := readBufs.Get().(*[]byte)
		if *buf, err = readMessage(c.ws, *buf); err != nil {
			recycleRead(buf)
			break
		}
		f, ferr := decodeFrame(*buf)
		if ferr != nil {
			c.ws.Close(websocket.StatusPolicyViolation, truncate("malformed frame: "+ferr.Error(), 120))
			err = ferr
			break
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
			} else {
				recycleRead(buf) // nobody waits: the caller gave up
			}
		case FrameEvent:
			if c.onEvent != nil {
				c.onEvent(f.Event, f.Payload)
			}
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %s", ErrClosed, closeReason(err))
	for id, p := range c.pending {
		close(p.ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.done)
	clientWatch.remove(c)
	// Release the socket when the read failed without a close handshake
	// (dropped connection, read limit); a no-op after one.
	c.ws.Close(websocket.StatusInternalError, "connection ended")
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
	<-c.readDone
	c.bg.Wait()
}
