package federation

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/queue"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Statuses of a Result.
const (
	StatusOK      = "ok"
	StatusError   = "error"
	StatusTimeout = "timeout"
)

// Options common to the message-carrying actions.
type MessageOptions struct {
	Context       map[string]any `json:"context,omitempty"`
	CorrelationID string         `json:"correlationId,omitempty"`
	Priority      Priority       `json:"priority,omitempty"`
	TimeoutMs     int            `json:"timeoutMs,omitempty"`
	// FromAgent names the sending agent. Default "operator".
	FromAgent string `json:"fromAgent,omitempty"`
	// Durable writes the message to the on-disk outbox first and answers
	// status "queued" at once; the gateway then delivers it with retries,
	// across restarts, and the receiver handles it once.
	Durable bool `json:"durable,omitempty"`
	// TTLMs bounds how long a durable message may wait for delivery before
	// it moves to the dead letters. Default: no limit.
	TTLMs int `json:"ttlMs,omitempty"`
}

// SendRequest is the send action.
type SendRequest struct {
	PeerID  string `json:"peerId"`
	Message string `json:"message"`
	MessageOptions
}

// DelegateRequest is the delegate action.
type DelegateRequest struct {
	RequiredCapabilities []string `json:"requiredCapabilities"`
	Task                 string   `json:"task"`
	// Strategy overrides federation.delegation.strategy for this call.
	Strategy string `json:"strategy,omitempty"`
	MessageOptions
}

// BroadcastRequest is the broadcast action.
type BroadcastRequest struct {
	Message string `json:"message"`
	// Scope is "direct" (the default: every enabled peer) or "mesh": every
	// gateway this one reaches, directly or across the mesh, once.
	Scope string `json:"scope,omitempty"`
	MessageOptions
}

// SyncRequest is the sync_context action.
type SyncRequest struct {
	PeerID   string         `json:"peerId"`
	SyncData map[string]any `json:"syncData"`
	MessageOptions
}

// Result is the outcome of delivering one message to one peer: the result
// of send, each attempt of delegate, and each entry of broadcast.
type Result struct {
	PeerID    string         `json:"peerId"`
	MessageID string         `json:"messageId,omitempty"` // the request message's id
	Status    string         `json:"status"`              // ok, error, timeout, or queued (durable)
	Response  *Message       `json:"response,omitempty"`
	Error     *gateway.Error `json:"error,omitempty"`
	LatencyMs float64        `json:"latencyMs"` // milliseconds, to the microsecond
	// Route lists the gateways a message to a mesh destination crossed,
	// this one first and the answering one last (mesh.go).
	Route []string `json:"route,omitempty"`
}

// Err returns the delivery error, or nil when Status is ok.
func (r *Result) Err() error {
	if r.Status == StatusOK {
		return nil
	}
	return r.Error
}

// DelegateResult is the result of delegate: the answering attempt's Result
// plus the strategy used, every candidate in the order it would be tried,
// the candidates skipped as unhealthy, and every attempt made.
type DelegateResult struct {
	Result
	Strategy   string    `json:"strategy"`
	Candidates []string  `json:"candidates"`
	Skipped    []Skipped `json:"skipped,omitempty"`
	Attempts   []Result  `json:"attempts"`
}

// Skipped is a capable peer that delegate did not try, and why.
type Skipped struct {
	PeerID string `json:"peerId"`
	Reason string `json:"reason"`
}

// SyncResult is the result of sync_context: the delivery Result and the
// version the peer now holds for this session.
type SyncResult struct {
	Result
	Version int64 `json:"version,omitempty"`
}

// Send delivers a request message to one peer's agent and waits for its
// answer. A request the node cannot attempt (unknown or disabled peer, bad
// parameters) is an error; an attempt that fails is a Result with status
// error or timeout.
func (n *Node) Send(ctx context.Context, req SendRequest) (*Result, error) {
	p, err := n.usablePeer(req.PeerID)
	if err != nil {
		return nil, err
	}
	if err := checkContent("message", req.Message, req.MessageOptions); err != nil {
		return nil, err
	}
	msg, err := n.newMessage(ctx, TypeRequest, p, req.Message, req.MessageOptions)
	if err != nil {
		return nil, err
	}
	if req.Durable && p.source == SourceNATS {
		return n.queueNATS(ctx, p, msg, req.TimeoutMs, req.TTLMs)
	}
	if req.Durable {
		e := n.outboxEntry("send", msg, req.MessageOptions)
		e.PeerID = p.ID
		if err := n.enqueue(e); err != nil {
			return nil, err
		}
		return &Result{PeerID: p.ID, MessageID: msg.MessageID, Status: StatusQueued}, nil
	}
	return n.deliver(ctx, p, msg, req.TimeoutMs, false), nil
}

// outboxEntry builds the outbox entry of a durable message.
func (n *Node) outboxEntry(kind string, msg *Message, o MessageOptions) *OutboxEntry {
	now := time.Now()
	e := &OutboxEntry{MessageID: msg.MessageID, Kind: kind, State: StateQueued, CreatedAt: now.UnixMilli(),
		Message: msg, TimeoutMs: o.TimeoutMs, TTLMs: o.TTLMs}
	if o.TTLMs > 0 {
		e.ExpiresAt = now.Add(time.Duration(o.TTLMs) * time.Millisecond).UnixMilli()
	}
	return e
}

// deliverEntry makes one delivery attempt of a durable message.
func (n *Node) deliverEntry(ctx context.Context, e *OutboxEntry) *Result {
	if e.Kind == "delegate" {
		req := DelegateRequest{RequiredCapabilities: e.RequiredCapabilities, Strategy: e.Strategy,
			MessageOptions: MessageOptions{TimeoutMs: e.TimeoutMs}}
		res, err := n.delegate(ctx, req, func(p *peer) (*Message, error) {
			m := *e.Message
			m.ToAgent, m.Timestamp = p.AgentID, time.Now().UnixMilli()
			return &m, nil
		}, true)
		if err != nil {
			return &Result{MessageID: e.MessageID, Status: StatusError, Error: gateway.ToError(err)}
		}
		e.PeerID = res.PeerID
		return &res.Result
	}
	p, err := n.usablePeer(e.PeerID)
	if err != nil {
		return &Result{PeerID: e.PeerID, MessageID: e.MessageID, Status: StatusError, Error: gateway.ToError(n.meshNotYet(e.PeerID, err))}
	}
	m := *e.Message
	m.Timestamp = time.Now().UnixMilli() // sent now: inside the receiver's replay window
	return n.deliver(ctx, p, &m, e.TimeoutMs, true)
}

// Broadcast delivers to every enabled peer concurrently; each peer has its
// own timeout, so a slow or dead peer delays no other peer's result. The
// results are in peer id order.
func (n *Node) Broadcast(ctx context.Context, req BroadcastRequest) ([]Result, error) {
	if err := n.checkEnabled(); err != nil {
		return nil, err
	}
	if err := checkContent("message", req.Message, req.MessageOptions); err != nil {
		return nil, err
	}
	if _, err := ParsePriority(string(req.Priority)); err != nil {
		return nil, err
	}
	var targets []*peer
	var leftOut []Result // mesh gateways past maxMeshBroadcast
	for _, p := range n.natsPeers(ctx, n.peers.list()) {
		if p.IsEnabled() {
			targets = append(targets, p)
		}
	}
	switch req.Scope {
	case "", "direct":
	case "mesh":
		if req.Durable {
			return nil, fmt.Errorf("%w: durable is not available with scope mesh", ErrInvalidParams)
		}
		var reached []*peer
		reached, leftOut = n.meshBroadcastTargets(targets) // meshrelay.go
		targets = append(targets, reached...)
	default:
		return nil, fmt.Errorf("%w: scope %s is not one of direct, mesh", ErrInvalidParams, quoteBounded(req.Scope))
	}
	req.CorrelationID = orNewID(req.CorrelationID) // one conversation across peers
	results := make([]Result, len(targets))
	msgs := make([]*Message, len(targets))
	backing := make([]Message, len(targets)) // one allocation for every peer's message
	for i, p := range targets {
		msgs[i] = &backing[i]
		if err := n.initMessage(ctx, msgs[i], TypeBroadcast, p, req.Message, req.MessageOptions); err != nil {
			return nil, err
		}
	}
	if req.Durable {
		entries := make([]*OutboxEntry, len(targets))
		for i, p := range targets {
			entries[i] = n.outboxEntry("broadcast", msgs[i], req.MessageOptions)
			entries[i].PeerID = p.ID
			results[i] = Result{PeerID: p.ID, MessageID: msgs[i].MessageID, Status: StatusQueued}
		}
		return results, n.enqueue(entries...)
	}
	if len(targets) == 1 { // a send: its caller reads the answer itself
		results[0] = *n.deliver(ctx, targets[0], msgs[0], req.TimeoutMs, false)
		return append(results, leftOut...), nil
	}
	// Send to every connected peer from this goroutine, then collect the
	// answers: no goroutine, stack and wake-up per peer. A peer not yet
	// connected, or whose outbound queue is full, gets a goroutine that
	// dials and waits. The deliveries, their results and their deadlines
	// are shared allocations (broadcast.go), not one each per peer.
	var wg sync.WaitGroup
	viaNATS := n.broadcastOverNATS(ctx, &wg, targets, msgs, req.TimeoutMs, results) // nats_broadcast.go
	deadlines := newDeadlines(ctx)
	defer deadlines.stop()
	started := make([]delivery, len(targets))
	defer func() {
		// Only after a panic (the RPC layer recovers it) is a delivery
		// left started: end it, or its outbound slot and its breaker
		// request would be held for good. Without waiting for its
		// answer: the broadcast has failed, and its caller would wait
		// the whole timeout for the panic.
		var failed context.Context // cancelled, not past a deadline: no breaker failure
		for i := range started {
			if d := &started[i]; d.n != nil {
				if failed == nil {
					var cancel context.CancelFunc
					failed, cancel = context.WithCancel(context.WithoutCancel(ctx))
					cancel()
				}
				if d.err == nil && d.call == nil && d.answer == nil { // its own start panicked
					d.err = fmt.Errorf("not sent: the broadcast failed: %w", context.Canceled)
				}
				d.ctx = failed
				d.end()
			}
		}
	}()
	for i, p := range targets {
		if viaNATS[i] {
			continue
		}
		if !n.start(ctx, &started[i], deadlines, p, msgs[i], &results[i], req.TimeoutMs, false, false) {
			wg.Go(func() { results[i] = *n.deliver(ctx, p, msgs[i], req.TimeoutMs, false) })
		}
	}
	for i := range started {
		if d := &started[i]; d.n != nil {
			e := *d
			d.n = nil // ended, even should end panic (the deferred loop above must not end it again)
			e.end()   // into results[i]
		}
	}
	wg.Wait()
	return append(results, leftOut...), nil
}

// SyncContext sends syncData to a peer, which stores it for this server
// and session (the correlationId, else the default session) and merges it
// into the context of later messages of that session.
func (n *Node) SyncContext(ctx context.Context, req SyncRequest) (*SyncResult, error) {
	p, err := n.usablePeer(req.PeerID)
	if err != nil {
		return nil, err
	}
	if req.SyncData == nil {
		return nil, fmt.Errorf("%w: syncData must be a JSON object", ErrInvalidParams)
	}
	if req.Durable || req.TTLMs != 0 {
		return nil, fmt.Errorf("%w: sync_context does not take durable or ttlMs; send it again if it fails", ErrInvalidParams)
	}
	opts := req.MessageOptions
	opts.Context = req.SyncData
	msg, err := n.newMessage(ctx, TypeSync, p, "", opts)
	if err != nil {
		return nil, err
	}
	if req.CorrelationID == "" {
		msg.CorrelationID = "" // the default session
	}
	r := n.deliver(ctx, p, msg, req.TimeoutMs, false)
	out := &SyncResult{Result: *r}
	if r.Response != nil {
		if v, ok := r.Response.Context["version"].(float64); ok {
			out.Version = int64(v)
		}
	}
	return out, nil
}

func orNewID(id string) string {
	if id == "" {
		return newID()
	}
	return id
}

// newMessage builds an outgoing message to p's agent; when ctx is an
// agent's handling of a relayed message, the next link of its chain.
func (n *Node) newMessage(ctx context.Context, typ MessageType, p *peer, content string, o MessageOptions) (*Message, error) {
	msg := new(Message)
	if err := n.initMessage(ctx, msg, typ, p, content, o); err != nil {
		return nil, err
	}
	return msg, nil
}

// initMessage is newMessage into msg.
func (n *Node) initMessage(ctx context.Context, msg *Message, typ MessageType, p *peer, content string, o MessageOptions) error {
	prio, err := ParsePriority(string(o.Priority))
	if err != nil {
		return err
	}
	if o.TimeoutMs < 0 {
		return fmt.Errorf("%w: timeoutMs %d is negative", ErrInvalidParams, o.TimeoutMs)
	}
	from := o.FromAgent
	if from == "" {
		from = "operator"
	}
	now := time.Now()
	*msg = Message{
		MessageID:     newIDAt(now),
		FromAgent:     from,
		FromServer:    n.serverID,
		ToAgent:       p.AgentID,
		Type:          typ,
		Content:       content,
		Context:       o.Context,
		CorrelationID: orNewID(o.CorrelationID), // a broadcast's or delegate's shared one, else new
		Priority:      prio,
		Timestamp:     now.UnixMilli(),
	}
	return n.chain(ctx, msg, p)
}

func (n *Node) checkEnabled() error {
	if !n.cfg.Federation.Enabled {
		return fmt.Errorf("%w: set federation.enabled: true in this gateway's config", ErrFederationDisabled)
	}
	return nil
}

// usablePeer returns the enabled peer id, or an error naming it.
func (n *Node) usablePeer(id string) (*peer, error) {
	if err := n.checkEnabled(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("%w: peerId is required", ErrInvalidParams)
	}
	if _, _, ok := meshTarget(id); ok {
		return n.meshPeer(id) // meshrelay.go
	}
	p := n.peers.get(id)
	if p == nil {
		p = n.natsPeer(context.Background(), id)
	}
	switch {
	case p == nil:
		if err := n.notAccepted(id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: no peer named %s; see the peers with list_peers (`agentfed peers`)", ErrUnknownPeer, quoteBounded(id))
	case !p.IsEnabled():
		return nil, fmt.Errorf("%w: peer %q is disabled (enabled: false); enable it or pick another peer", ErrPeerDisabled, id)
	}
	return p, nil
}

// timeout picks the call's timeout, else the peer's, else the default.
func (n *Node) timeout(callMs int, p *peer) time.Duration {
	ms := callMs
	if ms <= 0 && p != nil {
		ms = p.TimeoutMs
	}
	if ms <= 0 {
		ms = n.cfg.Federation.DefaultTimeoutMs
	}
	return time.Duration(ms) * time.Millisecond
}

// deliver relays msg to p and reports the outcome. It never returns nil.
func (n *Node) deliver(ctx context.Context, p *peer, msg *Message, callTimeoutMs int, durable bool) *Result {
	if p.source == SourceNATS {
		return n.deliverNATS(ctx, p, msg, callTimeoutMs, durable)
	}
	if p.source == SourceMesh {
		return n.deliverMesh(ctx, p, msg, callTimeoutMs, durable) // meshrelay.go
	}
	return n.begin(ctx, p, msg, callTimeoutMs, durable, true).end()
}

// delivery is one message on its way to one peer: begin sends it, end
// waits for the answer and reports the outcome. Between the two, the
// delivery holds a slot of the peer's outbound queue and its timeout.
type delivery struct {
	n       *Node // nil until started
	p       *peer
	msg     *Message
	ctx     context.Context
	cancel  context.CancelFunc // nil until bounded gives ctx the deadline
	timeout time.Duration
	until   time.Time // the deadline, when ctx does not have it (see bounded)
	start   time.Time
	res     *Result // own, unless a broadcast's results hold it
	own     Result

	holding *queue.Sem                 // the peer's outbound queue, when the delivery holds a slot of it
	done    func(error, time.Duration) // reports to the breaker; nil when not allowed
	call    *gateway.Pending           // the request in flight
	conn    *gateway.Client            // the connection it went out on
	req     *Message                   // the request before sealing and signing
	params  RelayParams                // the request as sent: here, it needs no allocation of its own
	eph     *ecdh.PrivateKey           // opens a sealed answer
	err     error                      // why it failed before it was sent
	span    trace.Span                 // nil when tracing is off
	answer  *Message                   // an A2A peer's answer (a2apeer.go)
}

// begin starts delivering msg to p: it takes an outbound slot, asks the
// breaker, and sends the request on the peer's connection. With wait, it
// waits for a slot and dials as needed; without, it returns nil instead of
// waiting, and the caller delivers on a goroutine of its own.
func (n *Node) begin(ctx context.Context, p *peer, msg *Message, callTimeoutMs int, durable, wait bool) *delivery {
	d := new(delivery)
	if !n.start(ctx, d, nil, p, msg, &d.own, callTimeoutMs, durable, wait) {
		return nil
	}
	return d
}

// start is begin into d, whose outcome end writes to res. With deadlines
// (a broadcast's), d's timeout is a deadline it shares with the other
// peers of the same timeout. It reports false where begin returns nil,
// leaving d as it was.
func (n *Node) start(ctx context.Context, d *delivery, deadlines *deadlines, p *peer, msg *Message, res *Result, callTimeoutMs int, durable, wait bool) bool {
	if p.source == SourceNATS || p.source == SourceMesh {
		return false // the caller delivers with deliver, on a goroutine
	}
	timeout := n.timeout(callTimeoutMs, p)
	outer := false
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond) // an outer deadline (delegate's) is tighter
		outer = true
	}
	h := n.tracker.get(p.ID)
	c := n.pool.Peek(p.ID) // nil: send dials
	if c == nil && !wait {
		return false // not connected yet: the caller dials on a goroutine
	}
	var holding *queue.Sem
	if !wait {
		if !h.outbound.TryAcquire() {
			return false
		}
		holding = h.outbound
	}
	*d = delivery{n: n, p: p, msg: msg, timeout: timeout, start: time.Now(), res: res, holding: holding}
	*res = Result{PeerID: p.ID, MessageID: msg.MessageID} // after d: res may be &d.own
	switch {
	case deadlines == nil && p.Type == PeerTypeA2A:
		d.ctx, d.cancel = context.WithTimeout(ctx, timeout)
	case deadlines == nil:
		d.ctx, d.until = ctx, d.start.Add(timeout) // no context and timer per relay: see bounded
	case outer:
		d.ctx, d.cancel = ctx, noCancel // ctx's own deadline comes first
	default:
		d.ctx, d.cancel = deadlines.get(timeout), noCancel
	}
	traceparent := ""
	if n.tracer != nil {
		d.ctx, d.span = n.tracer.Start(d.ctx, spanRelayOut, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("agentfed.peer", p.ID), attribute.String("agentfed.message_id", msg.MessageID)))
		traceparent = traceparentOf(d.ctx)
	}
	if wait {
		if !h.outbound.TryAcquire() {
			d.err = h.outbound.Acquire(d.bounded(), msg.Priority.Rank())
		}
		if d.err == nil {
			d.holding = h.outbound
		} else if errors.Is(d.err, queue.ErrFull) {
			d.err = fmt.Errorf("%w: %d messages already wait for peer %q", ErrOverloaded, peerOutboundQueue, p.ID)
		}
	}
	if d.err == nil {
		d.done, d.err = h.allow(p.ID, n.tracker.settings.Open)
	}
	if d.err == nil && p.Type == PeerTypeA2A {
		d.err = d.sendA2A() // a2apeer.go
	} else if d.err == nil {
		d.err = d.send(c, RelayParams{TargetAgent: p.AgentID, Message: msg, TimeoutMs: timeout.Milliseconds(), Durable: durable, Traceparent: traceparent}, !wait)
	}
	return true
}

// send relays params over c, or the pooled connection to the peer when c
// is nil. With later, the answer is collected after other work (broadcast),
// so the connection's reader notes when it came; otherwise end follows at
// once and may read it itself.
func (d *delivery) send(c *gateway.Client, params RelayParams, later bool) error {
	if c == nil {
		var err error
		if c, err = d.n.conn(d.bounded(), d.p); err != nil {
			return err
		}
	}
	d.req = params.Message
	d.params = params
	eph, err := d.n.protectOutbound(d.p, &d.params) // sealed and signed last, just before the wire
	if err != nil {
		return err
	}
	d.eph = eph
	d.conn = c
	d.call, err = d.sendOn(c, &d.params, later)
	if err != nil && gateway.Unsent(err) {
		// The pooled connection had ended unseen (the peer closed it
		// between calls) and the request never left: dial again, once.
		if c, err = d.n.conn(d.bounded(), d.p); err == nil {
			d.conn = c
			d.call, err = d.sendOn(c, &d.params, later)
		} else {
			d.conn = nil
		}
	}
	if err != nil {
		return d.peerError(err)
	}
	return nil
}

func (d *delivery) sendOn(c *gateway.Client, params *RelayParams, later bool) (*gateway.Pending, error) {
	if later {
		return c.Send(d.ctx, MethodRelay, params)
	}
	return c.Request(d.ctx, MethodRelay, params)
}

func (d *delivery) peerError(err error) error {
	if gateway.CodeOf(err) == gateway.CodePeerUnavailable {
		return fmt.Errorf("%w: peer %q: %v", ErrPeerUnavailable, d.p.ID, err)
	}
	return err
}

// bounded returns d.ctx, given d.until first if it has not got it, for
// a step that may block other than the wait for the answer: a queue slot,
// a dial. A relay on a connection already there, with a free slot, takes
// none, and its wait is bounded by WaitUntil, which spares it a context
// and a timer of its own.
func (d *delivery) bounded() context.Context {
	if d.cancel == nil {
		d.ctx, d.cancel = context.WithDeadline(d.ctx, d.until)
	}
	return d.ctx
}

// end waits for the answer and reports the outcome. It never returns nil.
func (d *delivery) end() *Result {
	n, p, msg, res := d.n, d.p, d.msg, d.res
	if d.cancel != nil {
		defer d.cancel()
	}
	err := d.err
	answered := time.Now()
	if err == nil && d.answer != nil {
		res.Response = d.answer
	} else if err == nil {
		var reply Message
		if err = d.call.WaitUntil(d.ctx, d.until, &reply); err != nil {
			err = d.peerError(err)
		} else if err = n.acceptReply(p, d.req, &reply, d.eph); err == nil {
			res.Response = &reply
		}
		if at := d.call.Answered(); !at.IsZero() {
			answered = at // collected later than it came (broadcast)
		} else {
			answered = time.Now()
		}
	}
	if d.done != nil {
		d.done(n.tracker.get(p.ID).connectionLost(d.conn, err), answered.Sub(d.start))
	}
	if d.holding != nil {
		d.holding.Release()
	}
	res.LatencyMs = millis(answered.Sub(d.start))
	endSpan(d.span, err)
	switch {
	case err == nil:
		res.Status = StatusOK
	case errors.Is(err, context.DeadlineExceeded) || gateway.CodeOf(err) == gateway.CodeTimeout:
		res.Status = StatusTimeout
		res.Error = gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("peer %q did not answer within %v", p.ID, d.timeout))
	default:
		res.Status = StatusError
		res.Error = gateway.ToError(err)
	}
	if n.log.Enabled(d.ctx, slog.LevelDebug) { // the arguments cost allocations even when dropped
		n.log.Debug("relay", "peer", p.ID, "messageId", msg.MessageID, "correlationId", msg.CorrelationID,
			"type", msg.Type, "status", res.Status, "latencyMs", res.LatencyMs)
	}
	outcome := "ok"
	if res.Error != nil {
		outcome = res.Error.Code
	}
	n.metrics.relayOut(p.ID, msg.ToAgent, res, answered.Sub(d.start))
	n.audit.write(auditEvent{Dir: "out", Kind: "deliver", Peer: p.ID, Agent: msg.ToAgent, MessageID: msg.MessageID,
		CorrelationID: msg.CorrelationID, Type: string(msg.Type), Outcome: outcome, LatencyMs: res.LatencyMs, Content: msg.Content})
	return res
}

// millis converts d to milliseconds rounded to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// conn returns the pooled connection to p. A handshake the peer refused
// keeps its code (UNAUTHORIZED, ...); any other failure is PEER_UNAVAILABLE.
func (n *Node) conn(ctx context.Context, p *peer) (*gateway.Client, error) {
	c, err := n.pool.Get(ctx, p.ID, n.dialer(p))
	var refused *gateway.Error
	switch {
	case err == nil:
		return c, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case gateway.Refused(err):
		return nil, err // already names the peer and what to fix
	case errors.As(err, &refused) && refused.Code != gateway.CodePeerUnavailable && refused.Code != gateway.CodeShuttingDown:
		return nil, fmt.Errorf("peer %q refused the connection: %w", p.ID, err)
	}
	return nil, fmt.Errorf("%w: cannot reach peer %q at %s: %v", ErrPeerUnavailable, p.ID, p.URL, err)
}

// roundRobin is the delegate rotation counter.
type roundRobin = atomic.Uint64
