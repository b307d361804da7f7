package federation

// Durable messages over NATS: each gateway's JetStream stream
// AF_DURABLE_<serverId> holds the messages for its agents (the
// messageId as Nats-Msg-Id, so a repeated publish is stored once), and
// each local agent has a durable consumer shared by the gateways of its
// site (explicit ack, AckWait from the timeout, MaxDeliver from
// federation.durable.maxAttempts with backoff). The receiver handles a
// messageId at most once per sender (deliverOnce), so a redelivery
// returns the kept reply instead of running the agent again. A PubAck is
// what makes send's result "queued".

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/gateway"
)

const (
	natsStream       = "AF_DURABLE"
	natsSetupTimeout = 30 * time.Second       // for the streams and consumers at start: a forming cluster may take a while
	natsSetupAttempt = 2 * time.Second        // for one request of it, asked again while the cluster does not answer
	natsSetupPause   = 100 * time.Millisecond // before asking again a stream that has no leader yet
	natsMaxBackoffs  = 5
	natsPubAckWait   = 2 * time.Second       // for one publish's acknowledgement
	natsPublishSpan  = 30 * time.Second      // for all of a durable send's attempts
	natsRetryPause   = 50 * time.Millisecond // between them
	natsElectionWait = 10 * time.Second      // for a stream to answer again
	natsFetchWait    = 10 * time.Second      // a fetch's long poll (the server ends it a second sooner)
	natsFetchPause   = time.Second           // after a fetch failed
)

func natsDurableSubject(serverID, agentID string) string {
	return "af.durable." + serverID + "." + agentID
}

// natsDurable is a node's JetStream side: the stream and its consumers.
type natsDurable struct {
	js           jetstream.JetStream
	maxPayload   int64 // of the NATS system
	consumes     []jetstream.ConsumeContext
	lastErrs     natsLastErrors     // for dead letters (nats_deadletter.go)
	outcomes     chan jetstream.Msg // taken by the outcome consumer, for runOutcomes
	outcomesQuit chan struct{}      // closed by stop
	outcomesDone chan struct{}      // closed when runOutcomes returns
	holds        *natsHolds         // outbox entries of durable sends, written in batches
	pub          *natsOutcomePub    // outcomes this gateway publishes, in batches
	ackWait      time.Duration      // the consumers' (their backoff starts with it)
	fetchers     sync.WaitGroup     // each agent consumer's natsHeld.fetch
	// stopping ends with stop: fetches end, and messages that arrive
	// meanwhile go back to the stream.
	stopping context.Context
	quit     context.CancelFunc
	// resultStreams is, by sender serverId, the zero time for one whose
	// outcome stream exists, or when it was found missing.
	resultStreams sync.Map
}

// startNATSDurable makes the stream (idempotent: every gateway does) and
// starts a consumer for each local agent. Without JetStream on the NATS
// system, durable messages to NATS peers are refused with a clear error.
func (n *Node) startNATSDurable(l *natsLink) error {
	js, err := jetstream.New(l.bus.Conn())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), natsSetupTimeout)
	defer cancel()
	// An embedded server with users makes every user's stream, since a
	// user may not make streams (it could capture others' subjects).
	servers := []string{n.serverID}
	if n.cfg.NATS.Embedded != nil {
		for _, u := range NATSPermissions(&n.cfg) {
			servers = append(servers, u.ServerID)
		}
	}
	for _, s := range servers {
		err = retryUnanswered(ctx, func(ctx context.Context) error { return n.natsStreamFor(ctx, js, s, n.natsDurableStreamConfig(s)) })
		if err == nil {
			err = retryUnanswered(ctx, func(ctx context.Context) error { return n.natsStreamFor(ctx, js, s, n.natsResultStreamConfig(s)) })
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, nats.ErrNoResponders) {
			n.log.Warn("the NATS system has no JetStream: durable messages to NATS peers are refused")
			return nil
		}
		if err != nil {
			return fmt.Errorf("JetStream streams of %q: %w", s, err)
		}
	}
	d := &natsDurable{js: js, maxPayload: l.bus.Conn().MaxPayload(), holds: newNATSHolds(n),
		outcomes: make(chan jetstream.Msg, natsOutcomeBatch), outcomesQuit: make(chan struct{}), outcomesDone: make(chan struct{})}
	d.stopping, d.quit = context.WithCancel(context.Background())
	d.pub = newNATSOutcomePub(l.ctx, n, d)
	l.durable = d
	go n.runOutcomes(l)
	if err := n.watchDeadLetters(l); err != nil {
		return err
	}
	if err := n.consumeOutcomes(ctx, l, d); err != nil {
		return err
	}
	ackWait := time.Duration(n.cfg.Federation.DefaultTimeoutMs) * time.Millisecond
	maxDeliver, backoffs := cmp.Or(n.cfg.Federation.Durable.MaxAttempts, defaultMaxAttempts), natsMaxBackoffs
	if maxDeliver < 0 {
		maxDeliver = -1 // no limit
	} else {
		backoffs = min(maxDeliver-1, natsMaxBackoffs)
	}
	var backoff []time.Duration
	for i := range backoffs {
		backoff = append(backoff, ackWait<<i)
	}
	d.ackWait = ackWait
	for _, id := range sortedKeys(n.agents) {
		var cons jetstream.Consumer
		err := retryUnanswered(ctx, func(ctx context.Context) (err error) {
			cons, err = js.CreateOrUpdateConsumer(ctx, natsStreamName(n.serverID), jetstream.ConsumerConfig{
				Durable: "af-" + id, FilterSubject: natsDurableSubject(n.serverID, id) + ".*",
				AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: maxDeliver, BackOff: backoff})
			return err
		})
		if err != nil {
			return fmt.Errorf("JetStream consumer for agent %q: %w", id, err)
		}
		a := n.agents[id]
		h := newNATSHeld(d, a.cfg.MaxConcurrency+a.cfg.MaxQueue, n.log.With("agent", id))
		d.fetchers.Go(func() {
			h.fetch(cons, func(m jetstream.Msg) {
				l.handle(func() {
					defer h.release(m)
					n.handleNATSDurable(l.ctx, d, m)
				}, func(err error) { h.release(m); d.refuse(m, err) })
			})
		})
	}
	return nil
}

// handleNATSDurable serves one durable message as federation.relay does,
// hands its outcome to the sender (nats_outcome.go) and acks it; an error
// a retry may cure asks for redelivery, any other ends it (the log names
// it, the sender learns it failed). An outcome JetStream did not store
// asks for redelivery too: the kept reply is sent again.
func (n *Node) handleNATSDurable(ctx context.Context, d *natsDurable, m jetstream.Msg) {
	id, err := n.natsSender(m.Subject())
	if err == nil {
		err = n.admitPeer(id, MethodRelay)
	}
	var reply *Message
	if err == nil {
		reply, err = n.serveRelay(ctx, id, m.Data())
	}
	from := "?"
	if id != nil {
		from = id.PeerID
	}
	e := gateway.ToError(err)
	if err != nil && (e.Retryable || e.Code == gateway.CodeTimeout || e.Code == gateway.CodeShuttingDown || e.Code == CodeOverloaded) {
		d.refuse(m, e)
		return
	}
	if out := outcomeOfRelay(m, reply, err); out != nil && id != nil {
		perr := n.publishOutcome(ctx, d, id.PeerID, out)
		if errors.Is(perr, errNoOutcomeStream) {
			if ok, suppressed := n.remoteLog.Allow(); ok {
				n.log.Warn("the sender of a durable message cannot be told its outcome", "from", from, "messageId", out.MessageID, "err", perr, "suppressed", suppressed)
			}
		} else if perr != nil {
			n.log.Warn("the outcome of a durable message was not stored for its sender; it is handled again", "from", from, "messageId", out.MessageID, "err", perr)
			d.retry(m)
			return
		}
	}
	d.forget(m)
	if err != nil {
		n.log.Warn("durable message refused", "from", from, "subject", clip(m.Subject(), 200), "code", e.Code, "err", err)
		_ = m.Term()
		return
	}
	// A plain ack: a lost one (its error was never acted on) brings a
	// redelivery, answered from the processed record as any is.
	_ = m.Ack()
}

// natsHeld is what this gateway holds of one agent's consumer: at most
// places messages (the agent's maxConcurrency + maxQueue) at once, handled
// or waiting in the agent's queue. The gateway fetches only as many as it
// has free places for, so what the agent cannot take waits in the stream,
// where it spends none of its deliveries, instead of being fetched and
// refused as busy again and again, or waiting in a client buffer while its
// AckWait runs. Every half AckWait, each message held is marked in
// progress, so that JetStream does not deliver it again, to another
// gateway of the site, which would run the agent a second time, while
// this one works on it.
type natsHeld struct {
	d      *natsDurable
	log    *slog.Logger
	places chan struct{} // a token for each message held or fetch place reserved
	mu     sync.Mutex    // guards msgs; held while marking them in progress
	msgs   map[jetstream.Msg]struct{}
	empty  chan struct{} // a token when msgs becomes empty
}

func newNATSHeld(d *natsDurable, places int, log *slog.Logger) *natsHeld {
	h := &natsHeld{d: d, log: log, places: make(chan struct{}, places), msgs: map[jetstream.Msg]struct{}{},
		empty: make(chan struct{}, 1)}
	go h.keep()
	return h
}

// fetch fetches the consumer's messages for the free places, long polling,
// and hands each to handle as it arrives, until stop. Those that arrive at
// stop go back at once, for another gateway of the site.
func (h *natsHeld) fetch(cons jetstream.Consumer, handle func(jetstream.Msg)) {
	failing := false
	for {
		k := h.reserve()
		if k == 0 {
			return
		}
		var err error
		if h.d.js.Conn().IsConnected() {
			err = h.fetchOnce(cons, k, handle)
		} else {
			// A fetch now would wait in the client's reconnect buffer and
			// reach the server late, where it could take messages that
			// nothing reads any more: they would wait out their AckWait.
			h.unreserve(k)
			err = nats.ErrConnectionReconnecting
		}
		switch {
		case err == nil || h.d.stopping.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			if failing && err == nil {
				h.log.Info("fetching durable messages works again")
				failing = false
			}
			continue
		case !failing:
			h.log.Warn("fetching durable messages failed; trying again every second until it works", "err", err)
			failing = true
		}
		select { // not at once: the consumer, or the connection, is gone
		case <-time.After(natsFetchPause):
		case <-h.d.stopping.Done():
		}
	}
}

// fetchOnce fetches at most k messages, for the k places reserved, and
// hands each to handle as it arrives; then it gives back the places left.
func (h *natsHeld) fetchOnce(cons jetstream.Consumer, k int, handle func(jetstream.Msg)) error {
	defer func() { h.unreserve(k) }()
	// Its deadline makes the fetch a long poll that the server ends a
	// second before it (a 408); stop cancels it. What reaches the gateway
	// at stop goes back at once; a message still on its way then waits
	// out its AckWait.
	ctx, cancel := context.WithTimeout(h.d.stopping, natsFetchWait)
	defer cancel()
	b, err := cons.Fetch(k, jetstream.FetchContext(ctx))
	if err != nil {
		return err
	}
	for m := range b.Messages() {
		k--
		if hm, ok := h.hold(m); ok {
			handle(hm)
		}
	}
	return b.Error()
}

// reserve waits for a free place and takes every place free then, and
// reports how many; none at stop.
func (h *natsHeld) reserve() int {
	select {
	case <-h.d.stopping.Done(): // first: a free place must not fetch at stop
		return 0
	default:
	}
	select {
	case h.places <- struct{}{}:
	case <-h.d.stopping.Done():
		return 0
	}
	k := 1
	for k < cap(h.places) {
		select {
		case h.places <- struct{}{}:
			k++
		default:
			return k
		}
	}
	return k
}

// unreserve gives back k places reserved and not taken.
func (h *natsHeld) unreserve(k int) {
	for range k {
		<-h.places
	}
}

// hold holds m, fetched for a place reserved for it, and returns it as
// handlers must use it: acknowledging it ends its marks first. At stop it
// gives m back at once, and its place, and reports false: checked under
// mu, as keep decides there to end its marks.
func (h *natsHeld) hold(m jetstream.Msg) (jetstream.Msg, bool) {
	h.mu.Lock()
	if h.d.stopping.Err() != nil {
		h.mu.Unlock()
		<-h.places
		_ = m.Nak()
		return nil, false
	}
	h.msgs[m] = struct{}{}
	h.mu.Unlock()
	return heldMsg{m, h}, true
}

// release frees m's place once it is handled.
func (h *natsHeld) release(m jetstream.Msg) {
	h.forget(m)
	<-h.places
}

func (h *natsHeld) forget(m jetstream.Msg) {
	if hm, ok := m.(heldMsg); ok {
		m = hm.Msg
	}
	h.mu.Lock()
	delete(h.msgs, m)
	if len(h.msgs) == 0 {
		select {
		case h.empty <- struct{}{}: // for keep, after stop
		default:
		}
	}
	h.mu.Unlock()
}

// keep marks the messages held in progress every half AckWait, and after
// stop until the last one held is handled: the site's other gateways
// must not be handed them meanwhile. It marks them holding mu, so that a
// mark is never sent after the message's ack or nak (heldMsg), which it
// would undo: a mark after a delayed nak brings the redelivery forward.
func (h *natsHeld) keep() {
	t := time.NewTicker(max(h.d.ackWait/2, time.Millisecond))
	defer t.Stop()
	stopping := h.d.stopping.Done()
	for {
		select {
		case <-t.C:
		case <-stopping:
			stopping = nil // tick on
		case <-h.empty:
		}
		h.mu.Lock()
		if stopping == nil && len(h.msgs) == 0 {
			h.mu.Unlock()
			return
		}
		for m := range h.msgs { // each a publish to the connection's buffer
			_ = m.InProgress()
		}
		h.mu.Unlock()
	}
}

// heldMsg is a message held by a natsHeld: its ack, nak or term first
// ends its marks in progress. Every method that settles a message is
// here, the ones federation does not call too: one left to the embedded
// Msg would settle it with keep still marking it.
type heldMsg struct {
	jetstream.Msg
	h *natsHeld
}

func (m heldMsg) Ack() error {
	m.h.forget(m.Msg)
	return m.Msg.Ack()
}

func (m heldMsg) DoubleAck(ctx context.Context) error {
	m.h.forget(m.Msg)
	return m.Msg.DoubleAck(ctx)
}

func (m heldMsg) Nak() error {
	m.h.forget(m.Msg)
	return m.Msg.Nak()
}

func (m heldMsg) NakWithDelay(d time.Duration) error {
	m.h.forget(m.Msg)
	return m.Msg.NakWithDelay(d)
}

func (m heldMsg) Term() error {
	m.h.forget(m.Msg)
	return m.Msg.Term()
}

func (m heldMsg) TermWithReason(reason string) error {
	m.h.forget(m.Msg)
	return m.Msg.TermWithReason(reason)
}

// refuse asks JetStream for m again later (retry), keeping err for the
// dead letter should m run out of deliveries: its agent was busy, or the
// gateway already handles as many messages as it may.
func (d *natsDurable) refuse(m jetstream.Msg, err error) {
	if md, merr := m.Metadata(); merr == nil {
		d.lastErrs.set(md.Sequence.Stream, gateway.ToError(err))
	}
	d.retry(m)
}

// retry asks JetStream for m again as if its delivery had not been
// acknowledged in time: a nak delayed by the AckWait starts the consumer's
// backoff for m's delivery count (the AckWait, then twice that, ...), as
// the outbox's retries do over WebSocket; up to half an AckWait more
// spreads a burst refused together. A plain nak is redelivered at once, so
// an agent busy for a moment (its queue full) spent every delivery of a
// burst in milliseconds and the messages became dead letters.
func (d *natsDurable) retry(m jetstream.Msg) {
	_ = m.NakWithDelay(d.ackWait + rand.N(d.ackWait/2+1))
}

// stop stops fetching and lets the messages already held be handled;
// those that arrive meanwhile go back to the stream.
func (d *natsDurable) stop() {
	defer d.holds.close()
	d.quit()
	for _, cc := range d.consumes {
		cc.Drain()
	}
	d.fetchers.Wait()
	for _, cc := range d.consumes {
		select {
		case <-cc.Closed():
		case <-time.After(natsDrainTimeout):
		}
	}
	d.pub.stop()
	close(d.outcomesQuit)
	<-d.outcomesDone
}

// queueNATS is a durable send to a peer on NATS: stored in the stream,
// queued once JetStream acknowledges it. With ttlMs, JetStream removes the
// message once it has waited that long (at least a second, JetStream's
// finest message TTL), delivered or not.
func (n *Node) queueNATS(ctx context.Context, p *peer, msg *Message, timeoutMs, ttlMs int) (*Result, error) {
	d := n.nats.durable
	if d == nil {
		return nil, fmt.Errorf("%w: durable messages to %q need JetStream on the NATS system, which it does not have", ErrPeerUnavailable, p.ID)
	}
	params := RelayParams{TargetAgent: p.AgentID, Message: msg, TimeoutMs: n.timeout(timeoutMs, p).Milliseconds(), Durable: true}
	if _, err := n.protectOutbound(p, &params); err != nil {
		return nil, err
	}
	data, err := params.MarshalJSON()
	if err != nil {
		return nil, err
	}
	nm := nats.NewMsg(natsDurableSubject(natsServerOf(p), p.AgentID) + "." + n.serverID)
	nm.Header.Set(jetstream.MsgIDHeader, msg.MessageID)
	nm.Data = data
	ctx, stop := n.natsDeniable(ctx, nm.Subject)
	defer stop()
	var opts []jetstream.PublishOpt
	if ttlMs > 0 {
		opts = append(opts, jetstream.WithMsgTTL(max(time.Duration(ttlMs)*time.Millisecond, time.Second)))
	}
	// The outbox entry is written with the next batch (nats_hold.go), while
	// JetStream stores the message: queued means both are done.
	e := n.outboxEntry("send", msg, MessageOptions{TimeoutMs: timeoutMs, TTLMs: ttlMs})
	e.PeerID, e.Stream = p.ID, natsStreamName(natsServerOf(p))
	written := d.holds.hold(e)
	err = n.publishNATS(ctx, d.js, nm, opts)
	if err != nil {
		d.holds.unhold(msg.MessageID)
	}
	if errors.Is(context.Cause(ctx), errNATSDenied) {
		return nil, n.natsDenied(p)
	} else if err != nil {
		return nil, fmt.Errorf("%w: JetStream did not store message %q for %q: %v", ErrPeerUnavailable, msg.MessageID, p.ID, err)
	}
	// JetStream has the message, so it is queued whatever happens to the
	// entry; a failed write is logged (its outcome then finds no entry).
	<-written.done
	return &Result{PeerID: p.ID, MessageID: msg.MessageID, Status: StatusQueued}, nil
}

// publishNATS publishes m until JetStream acknowledges it, each attempt
// waiting natsPubAckWait: a publish that went to a server that then died
// is never answered, and during a leader election none is. Each retry
// carries the same Nats-Msg-Id, so the stream keeps one copy. It gives up
// when ctx ends or after natsPublishSpan.
func (n *Node) publishNATS(ctx context.Context, js jetstream.JetStream, m *nats.Msg, opts []jetstream.PublishOpt) error {
	// One context per attempt, none for the span: most publishes take one
	// attempt, and each context with a deadline costs a timer.
	end := time.Now().Add(natsPublishSpan)
	var quietSince time.Time // of the no-responders answers in a row
	for {
		actx, acancel := context.WithTimeout(ctx, min(natsPubAckWait, time.Until(end)))
		_, err := js.PublishMsg(actx, m, opts...)
		acancel()
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil || !time.Now().Before(end):
			return err
		case errors.As(err, &apiErr) && apiErr.Code != 503: // refused, not unavailable: retrying will not help
			return err
		case errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders):
			// An election, or a stream that does not exist (its gateway
			// never started): wait out the first only.
			if quietSince.IsZero() {
				quietSince = time.Now()
			} else if time.Since(quietSince) > natsElectionWait {
				return fmt.Errorf("no JetStream stream took it for %v (the receiving gateway has never started, or its stream has no leader): %w", natsElectionWait, err)
			}
		default:
			quietSince = time.Time{}
		}
		sleepCtx(ctx, min(natsRetryPause, time.Until(end)))
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// natsDurableStreamConfig is the stream that holds the durable messages
// for server's agents.
func (n *Node) natsDurableStreamConfig(server string) jetstream.StreamConfig {
	dedupe := n.natsRetention()
	return jetstream.StreamConfig{Name: natsStreamName(server), Subjects: []string{natsDurableSubject(server, ">")},
		Storage: jetstream.FileStorage, Duplicates: dedupe, MaxAge: dedupe, Replicas: n.cfg.NATS.replicas(), AllowMsgTTL: true}
}

// natsStreamFor makes sure stream sc of gateway server exists: it is
// looked up first, since a gateway on an embedded server with users may
// read its streams but not make or change them.
func (n *Node) natsStreamFor(ctx context.Context, js jetstream.JetStream, server string, sc jetstream.StreamConfig) error {
	if server != n.serverID || n.cfg.NATS.Embedded != nil {
		_, err := js.CreateOrUpdateStream(ctx, sc)
		return err
	}
	if _, err := js.Stream(ctx, sc.Name); err == nil || !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err := js.CreateStream(ctx, sc)
	return err
}

// retryUnanswered runs f with natsSetupAttempt to answer, again while
// ctx lasts and f fails as a forming cluster makes it fail: a JetStream
// request made while the cluster is still electing its leaders goes
// unanswered, not refused; and a stream placed before every server has
// reported, or published to before it has a leader, is refused at once
// (asked again after natsSetupPause). A cluster that never forms still
// fails, with its last answer, when ctx ends.
func retryUnanswered(ctx context.Context, f func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, natsSetupAttempt)
		err := f(actx)
		cancel()
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if err == nil || !(timedOut || natsForming(err)) || ctx.Err() != nil {
			return err
		}
		if !timedOut {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(natsSetupPause):
			}
		}
	}
}

// JetStream's answers, by nats-server's error codes, while a cluster's
// servers have not all reported to its meta leader yet.
const (
	natsErrNoPeers         jetstream.ErrorCode = 10005 // no suitable peers for placement (peer offline)
	natsErrClusterNotAvail jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
)

// natsForming reports whether err is an answer a forming cluster gives
// at once and may not give a moment later.
func natsForming(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) && (api.ErrorCode == natsErrNoPeers || api.ErrorCode == natsErrClusterNotAvail) {
		return true
	}
	return errors.Is(err, jetstream.ErrNoStreamResponse)
}

// watchNATSBucket watches every key of kv for as long as life lasts,
// asking again while the forming cluster does not answer, until setup
// ends.
func watchNATSBucket(setup, life context.Context, kv jetstream.KeyValue) (jetstream.KeyWatcher, error) {
	var w jetstream.KeyWatcher
	err := retryUnanswered(setup, func(context.Context) (err error) {
		w, err = kv.WatchAll(life) // its own request times out on its own
		return err
	})
	return w, err
}
