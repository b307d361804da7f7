package federation

// The outcome of a durable message over NATS, back to its sender. The
// sender keeps a queued outbox entry for each durable message it published
// (its Stream names the receiver's stream that holds it). When the
// receiving gateway has finished the message (answered, failed it for good,
// or JetStream stopped delivering it: a dead letter) it publishes the
// outcome on af.result.<sender>.<receiver>, which the sender's own stream
// AF_RESULT_<sender> keeps until one of the sender's gateways takes it with
// the durable consumer af-results, even if none was running when the
// outcome was published. The sender then moves the entry to delivered
// (with the reply), failed or dead, as the outbox does for a WebSocket peer.
//
// The receiver publishes the outcome before it acks the message: if the
// publish fails the message is redelivered, and deliverOnce answers it with
// the kept reply without running the agent again. A repeated outcome changes
// nothing. The stream is bounded: outcomes older than
// federation.durable.retentionMs go, as do the oldest past natsResultMaxMsgs
// (natsResultMaxPerSubject per receiver, so that one receiver cannot push
// out the others' outcomes).

import (
	"cmp"
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/gateway"
)

const (
	natsResultStream        = "AF_RESULT"
	natsResultConsumer      = "af-results"
	natsResultMaxMsgs       = 1_000_000 // outcomes a sender's stream keeps at most
	natsResultMaxPerSubject = 100_000   // of them from one receiver
	natsMaxOutcome          = 4 << 20   // bytes of one outcome
	natsResultAckWait       = 30 * time.Second
	natsResultRetry         = time.Second           // before an outcome the store refused is taken again
	natsResultRecheck       = 10 * time.Second      // before a missing outcome stream is looked up again
	natsOutcomeEvery        = 20 * time.Millisecond // for more outcomes to write with the first of a batch
	natsOutcomeBatch        = 1000                  // outcomes written at once at most
)

func natsResultSubject(sender, receiver string) string { return "af.result." + sender + "." + receiver }
func natsResultStreamName(serverID string) string      { return natsResultStream + "_" + serverID }

// natsOutcome is what a receiving gateway publishes to the sender of a
// durable message once it has finished it.
type natsOutcome struct {
	MessageID string         `json:"messageId"`
	State     string         `json:"state"` // delivered, failed or dead
	Reply     *Message       `json:"reply,omitempty"`
	Error     *gateway.Error `json:"error,omitempty"` // failed: why; dead: the last retryable error, if known
	// Deliveries is, for a dead letter, how often JetStream delivered it.
	Deliveries int `json:"deliveries,omitempty"`
	// Request is, for a dead letter, the RelayParams as stored in the
	// stream: a sender that has no entry for it (queued before it kept
	// one) makes one from it. Left out when it does not fit.
	Request json.RawMessage `json:"request,omitempty"`
}

// natsResultStreamConfig is the stream that keeps server's outcomes.
func (n *Node) natsResultStreamConfig(server string) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: natsResultStreamName(server), Subjects: []string{natsResultSubject(server, "*")},
		Storage: jetstream.FileStorage, MaxAge: n.natsRetention(), Replicas: n.cfg.NATS.replicas(),
		MaxMsgs: natsResultMaxMsgs, MaxMsgsPerSubject: natsResultMaxPerSubject, MaxMsgSize: natsMaxOutcome, Discard: jetstream.DiscardOld}
}

// consumeOutcomes starts taking this gateway's outcomes, with a durable
// consumer its site's gateways share.
func (n *Node) consumeOutcomes(ctx context.Context, l *natsLink, d *natsDurable) error {
	var cons jetstream.Consumer
	err := retryUnanswered(ctx, func(ctx context.Context) (err error) {
		cons, err = d.js.CreateOrUpdateConsumer(ctx, natsResultStreamName(n.serverID), jetstream.ConsumerConfig{
			Durable: natsResultConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: natsResultAckWait, MaxDeliver: -1})
		return err
	})
	if err != nil {
		return fmt.Errorf("JetStream consumer for the outcomes of durable messages: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case d.outcomes <- m:
		case <-d.outcomesQuit: // stopping: not acked, so taken again later
		}
	})
	if err != nil {
		return fmt.Errorf("consume the outcomes of durable messages: %w", err)
	}
	d.consumes = append(d.consumes, cc)
	return nil
}

// publishOutcome hands out to the gateway that sent the message, through
// its outcome stream. It returns once JetStream has stored it.
func (n *Node) publishOutcome(ctx context.Context, d *natsDurable, sender string, out *natsOutcome) error {
	data, err := out.appendJSON(nil)
	if err != nil {
		return err
	}
	max := min(int(d.maxPayload), natsMaxOutcome)
	if len(data) > max && out.Request != nil {
		out.Request = nil // the sender has its own entry
		data, err = out.appendJSON(nil)
	}
	if err == nil && len(data) > max {
		tooLarge := &natsOutcome{MessageID: out.MessageID, State: StateFailed, Error: gateway.NewError(gateway.CodeTooLarge,
			fmt.Sprintf("gateway %q answered, but its reply is %d bytes, over the %d the NATS system carries", n.serverID, len(data), max))}
		data, err = tooLarge.appendJSON(nil)
	}
	if err != nil {
		return err
	}
	if err := d.checkResultStream(ctx, sender); err != nil {
		return err
	}
	return d.pub.publish(ctx, sender, data)
}

// errNoOutcomeStream: the sender has no outcome stream, so it cannot be
// told (it has never started, or it predates outcomes).
var errNoOutcomeStream = errors.New("the sender has no outcome stream")

// checkResultStream returns errNoOutcomeStream if sender has no outcome
// stream. A stream seen is remembered; one missing is looked up again
// after natsResultRecheck. Asking tells a missing stream from one that
// has no leader for a moment, which a publish does not.
func (d *natsDurable) checkResultStream(ctx context.Context, sender string) error {
	if v, ok := d.resultStreams.Load(sender); ok && (v.(time.Time).IsZero() || time.Since(v.(time.Time)) < natsResultRecheck) {
		if v.(time.Time).IsZero() {
			return nil
		}
		return fmt.Errorf("%w (%s)", errNoOutcomeStream, natsResultStreamName(sender))
	}
	actx, cancel := context.WithTimeout(ctx, natsPubAckWait)
	defer cancel()
	_, err := d.js.Stream(actx, natsResultStreamName(sender))
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		d.resultStreams.Store(sender, time.Now())
		return fmt.Errorf("%w (%s)", errNoOutcomeStream, natsResultStreamName(sender))
	case err == nil:
		d.resultStreams.Store(sender, time.Time{})
	}
	return nil // not known now: the publish tries, through an election
}

// outcomeOfRelay is the outcome a receiver publishes for a durable
// message it has finished: the reply, or the error that ended it.
func outcomeOfRelay(m jetstream.Msg, reply *Message, err error) *natsOutcome {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if checkIdent("messageId", id, true) != nil {
		return nil // not one an agentfed gateway sent: nobody to tell
	}
	if err != nil {
		return &natsOutcome{MessageID: id, State: StateFailed, Error: gateway.ToError(err)}
	}
	return &natsOutcome{MessageID: id, State: StateDelivered, Reply: reply}
}

// runOutcomes keeps the outcomes the consumer takes, a batch at a time:
// one write for the batch (one fsync, not one per outcome), then each
// outcome is acked. One the store could not keep comes back later, one
// that is wrong is dropped (and logged). It returns when d.outcomes is
// closed and drained.
func (n *Node) runOutcomes(l *natsLink) {
	d := l.durable
	defer close(d.outcomesDone)
	for {
		select {
		case m := <-d.outcomes:
			n.keepOutcomes(l, collect(d.outcomes, m, natsOutcomeBatch, natsOutcomeEvery))
		case <-d.outcomesQuit:
			var batch []jetstream.Msg
			for { // what the stopped consumer had handed over
				select {
				case m := <-d.outcomes:
					batch = append(batch, m)
				default:
					if len(batch) > 0 {
						n.keepOutcomes(l, batch)
					}
					return
				}
			}
		}
	}
}

// outcomeBatch is the entries a batch of outcomes finishes.
type outcomeBatch struct {
	entries map[string]*OutboxEntry // to write, by message id
	held    []*OutboxEntry          // taken from the pending holds, as they were
}

func (n *Node) keepOutcomes(l *natsLink, msgs []jetstream.Msg) {
	b := &outcomeBatch{entries: map[string]*OutboxEntry{}}
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = n.keepOutcomeBatch(l, b, m.Subject(), m.Data())
	}
	werr := n.writeOutcomes(l, b)
	for i, m := range msgs {
		err := errs[i]
		if err == nil && werr != nil {
			err = fmt.Errorf("%w: write outbox: %v", ErrStorage, werr)
		}
		switch {
		case err == nil:
			_ = m.Ack()
		case errors.Is(err, ErrStorage):
			_ = m.NakWithDelay(natsResultRetry)
		default:
			if ok, suppressed := n.remoteLog.Allow(); ok {
				n.log.Warn("outcome of a durable message over NATS refused", "subject", clip(m.Subject(), 200), "err", err, "suppressed", suppressed)
			}
			_ = m.Term()
		}
	}
	if werr == nil {
		for _, e := range b.entries {
			if e.State != StateDelivered {
				n.log.Info("durable message "+e.State, "messageId", e.MessageID, "peer", e.PeerID, "attempts", e.Attempts)
			}
		}
	}
}

// writeOutcomes writes the entries b finished. A held entry (not written
// yet) that b took and did not finish, its outcome refused, is held again,
// as it was: written with the next batch of holds, still queued. So are
// all of b's held entries when the write fails.
func (n *Node) writeOutcomes(l *natsLink, b *outcomeBatch) error {
	entries := make([]*OutboxEntry, 0, len(b.entries))
	for _, e := range b.entries {
		entries = append(entries, e)
	}
	var err error
	if len(entries) > 0 {
		if err = n.outbox.Put(entries...); err != nil {
			n.log.Error("outbox save failed", "outcomes", len(entries), "err", err)
		}
	}
	for _, e := range b.held {
		if err != nil || b.entries[e.MessageID] == nil {
			l.durable.holds.hold(e)
		}
	}
	return err
}

// entry is message id's outbox entry as b has it: finished earlier in the
// batch, pending its first write, or on disk.
func (n *Node) entryFor(l *natsLink, b *outcomeBatch, id string) (*OutboxEntry, error) {
	if e := b.entries[id]; e != nil {
		return e, nil
	}
	h := l.durable.holds
	h.flushMu.Lock() // a batch being written is on disk once this is held
	defer h.flushMu.Unlock()
	if e := h.take(id); e != nil {
		c := *e
		b.held = append(b.held, &c)
		return e, nil
	}
	e, err := n.outbox.Get(id)
	return e, outboxError(err)
}

// keepOutcomeBatch applies the outcomes of one published batch (a JSON
// array) from the receiver named in subject. An outcome that is wrong is
// logged and skipped; the others stand.
func (n *Node) keepOutcomeBatch(l *natsLink, b *outcomeBatch, subject string, data []byte) error {
	receiver := subject[strings.LastIndexByte(subject, '.')+1:]
	if len(data) > natsMaxOutcome {
		return fmt.Errorf("%w: outcomes from %s are %d bytes, over %d", ErrTooLarge, quoteBounded(receiver), len(data), natsMaxOutcome)
	}
	outs, err := splitOutcomes(data)
	if err != nil {
		return fmt.Errorf("%w: outcomes from %s: %v", ErrInvalidParams, quoteBounded(receiver), err)
	}
	for _, raw := range outs {
		err := n.keepOutcome(l, b, subject, raw)
		if errors.Is(err, ErrStorage) {
			return err
		}
		if err != nil {
			if ok, suppressed := n.remoteLog.Allow(); ok {
				n.log.Warn("outcome of a durable message over NATS refused", "subject", clip(subject, 200), "err", err, "suppressed", suppressed)
			}
		}
	}
	return nil
}

// keepOutcome applies an outcome from the receiver named in subject to
// the outbox entry of its message, in b. Only the receiver the message
// was sent to may finish it.
func (n *Node) keepOutcome(l *natsLink, b *outcomeBatch, subject string, data []byte) error {
	receiver := subject[strings.LastIndexByte(subject, '.')+1:]
	if err := checkIdent("the receiver token of the NATS subject", receiver, true); err != nil {
		return err
	}
	if len(data) > natsMaxOutcome {
		return fmt.Errorf("%w: outcome from %q is %d bytes, over %d", ErrTooLarge, receiver, len(data), natsMaxOutcome)
	}
	var out natsOutcome
	if err := out.decode(data); err != nil {
		return fmt.Errorf("%w: outcome from %q: %v", ErrInvalidParams, receiver, err)
	}
	if err := checkIdent("messageId", out.MessageID, true); err != nil {
		return fmt.Errorf("outcome from %q: %w", receiver, err)
	}
	e, err := n.entryFor(l, b, out.MessageID)
	switch {
	case errors.Is(err, ErrUnknownMessage) && out.State == StateDead && out.Request != nil:
		e, err := deadLetterEntry(n.serverID, receiver, &out)
		if err == nil {
			b.entries[e.MessageID] = e
		}
		return err
	case errors.Is(err, ErrUnknownMessage):
		// An operator dropped it, or it was never this gateway's, or its
		// entry was not written yet when the sender crashed.
		return fmt.Errorf("%w: no outbox entry for message %q from %q", ErrUnknownMessage, out.MessageID, receiver)
	case err != nil:
		return fmt.Errorf("%w: read outbox: %v", ErrStorage, err)
	}
	if server := e.PeerID[strings.LastIndexByte(e.PeerID, '@')+1:]; server != receiver {
		return fmt.Errorf("%w: gateway %q sent an outcome for message %q, which was sent to %q", ErrForbidden, receiver, out.MessageID, e.PeerID)
	}
	// A message the sender gave up on (its ttl passed; still held by the
	// stream as far as it knows) may have been answered meanwhile: the
	// receiver's word is final.
	if e.State != StateQueued && !(e.State == StateDead && e.Stream != "" && out.State != StateDead) {
		return nil // finished already
	}
	switch out.State {
	case StateDelivered:
		finishDelivered(l, e, receiver, out.Reply, n.acceptReply)
	case StateFailed:
		if out.Error == nil {
			return fmt.Errorf("%w: outcome failed from %q has no error", ErrInvalidParams, receiver)
		}
		settle(e, StateFailed, &Result{PeerID: e.PeerID, MessageID: e.MessageID, Status: StatusError, Error: boundError(out.Error)}, nil)
	case StateDead:
		e.Attempts, e.PeerAttempts = out.Deliveries, out.Deliveries
		e.Stream = "" // JetStream delivers it no more: final
		settle(e, StateDead, nil, deadLetterError(receiver, &out))
	default:
		return fmt.Errorf("%w: outcome from %q has state %s; want delivered, failed or dead", ErrInvalidParams, receiver, quoteBounded(out.State))
	}
	b.entries[e.MessageID] = e
	return nil
}

// finishDelivered settles e with reply as its answer, checked (by accept)
// as a reply over WebSocket is.
func finishDelivered(l *natsLink, e *OutboxEntry, receiver string, reply *Message, accept func(*peer, *Message, *Message, *ecdh.PrivateKey) error) {
	r := &Result{PeerID: e.PeerID, MessageID: e.MessageID, Status: StatusOK, Response: reply}
	var err error
	if reply == nil {
		err = fmt.Errorf("%w: outcome delivered from %q has no reply", ErrInvalidParams, receiver)
	} else if err = reply.Validate(); err == nil {
		err = accept(l.peerOf(e.PeerID), e.Message, reply, nil)
	}
	if err != nil {
		r.Status, r.Response, r.Error = StatusError, nil, gateway.ToError(err)
		settle(e, StateFailed, r, nil)
		return
	}
	if e.CreatedAt > 0 {
		r.LatencyMs = millis(time.Since(time.UnixMilli(e.CreatedAt)))
	}
	settle(e, StateDelivered, r, nil)
}

// peerOf is the NATS peer id as this gateway knows it, for checking
// its replies; one no longer in the directory has no keys pinned.
func (l *natsLink) peerOf(id string) *peer {
	if l.registry != nil {
		dir := l.registry.directory()
		if i, ok := slices.BinarySearchFunc(dir, id, byPeerID); ok {
			return dir[i]
		}
	}
	return newPeer(PeerConfig{ID: id, Name: id}, SourceNATS)
}

// boundError is e with its code and message clipped: it came from another
// gateway.
func boundError(e *gateway.Error) *gateway.Error {
	return gateway.NewError(clip(e.Code, 64), clip(e.Message, 1000))
}

// deadLetterError says why a message is dead: JetStream's max deliveries,
// with the agent's last retryable error.
func deadLetterError(receiver string, out *natsOutcome) *gateway.Error {
	why, code := "no answer", gateway.CodeTimeout
	if out.Error != nil {
		why, code = clip(out.Error.Message, 500), clip(out.Error.Code, 64)
	}
	return gateway.NewError(code, fmt.Sprintf("not handled after %d deliveries (max deliveries of the JetStream consumer of %q, its federation.durable.maxAttempts); last error: %s",
		out.Deliveries, receiver, why))
}

// deadLetterEntry is the dead outbox entry of a dead letter for a
// message this gateway has no entry for (it was queued before senders kept
// one, or its entry was lost).
func deadLetterEntry(self, receiver string, out *natsOutcome) (*OutboxEntry, error) {
	var params RelayParams
	if err := params.UnmarshalJSON(out.Request); err != nil || params.Message == nil {
		return nil, fmt.Errorf("%w: dead letter from %q: its request is not a relay request: %v", ErrInvalidParams, receiver, err)
	}
	msg := params.Message
	if err := msg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: dead letter from %q: %v", ErrInvalidParams, receiver, err)
	}
	if err := checkIdent("targetAgent", params.TargetAgent, true); err != nil {
		return nil, err
	}
	if msg.FromServer != self || msg.MessageID != out.MessageID {
		return nil, fmt.Errorf("%w: dead letter from %q is for message %s from %s, not this gateway's %q", ErrInvalidParams, receiver,
			quoteBounded(msg.MessageID), quoteBounded(msg.FromServer), out.MessageID)
	}
	return &OutboxEntry{MessageID: msg.MessageID, Kind: "send", PeerID: natsPeerID(receiver, params.TargetAgent), State: StateDead,
		Attempts: out.Deliveries, PeerAttempts: out.Deliveries, CreatedAt: msg.Timestamp, FinishedAt: time.Now().UnixMilli(),
		Message: msg, TimeoutMs: int(max(min(params.TimeoutMs, natsResponseTTL.Milliseconds()), 0)),
		LastError: deadLetterError(receiver, out)}, nil
}

// settle sets e's final state, with its result r and why it failed, if
// it did (the error in r else).
func settle(e *OutboxEntry, state string, r *Result, why *gateway.Error) {
	e.State, e.Result, e.NextAttemptAt, e.FinishedAt = state, r, 0, time.Now().UnixMilli()
	if r != nil && r.Error != nil {
		e.LastError = r.Error
	}
	if why != nil {
		e.LastError = why
	}
}

// natsRetention is how long the streams keep messages and outcomes:
// federation.durable.retentionMs.
func (n *Node) natsRetention() time.Duration {
	return time.Duration(cmp.Or(n.cfg.Federation.Durable.RetentionMs, int(processedKeep.Milliseconds()))) * time.Millisecond
}
