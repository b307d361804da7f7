package federation

// Dead letters over NATS. A durable message that exhausts its consumer's
// MaxDeliver (federation.durable.maxAttempts of the receiving gateway) is
// skipped by JetStream, which publishes the max-deliveries advisory
// $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>. The
// receiving gateway (one of its site, in its queue group) reads the
// message from its stream and hands it back to the gateway that sent it
// on af.dead.<sender>.<receiver> (the last token names the publisher, as
// on every agentfed subject). The sender keeps it in its outbox as a
// dead entry, which its operator lists, retries (then delivered by the
// outbox as any durable send, a request with retries) or drops.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/outbox"
)

const (
	natsMaxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
	natsDeadNoticeWait        = 5 * time.Second // for the sender to take a dead letter
	natsDeadNoticeTries       = 3
	natsMaxDeadLetter         = 4 << 20 // bytes of a dead-letter notice
	natsMaxLastErrors         = 4096    // retryable failures remembered for dead letters
)

func natsDeadSubject(sender, receiver string) string { return "af.dead." + sender + "." + receiver }
func natsAdvisorySubject(serverID string) string {
	return natsMaxDeliveriesAdvisory + natsStreamName(serverID) + ".*"
}

// natsDeadLetter is the notice a receiving gateway sends the sender of a
// durable message JetStream stopped delivering.
type natsDeadLetter struct {
	Deliveries int             `json:"deliveries"`
	LastError  *gateway.Error  `json:"lastError,omitempty"`
	Request    json.RawMessage `json:"request"` // the RelayParams as stored in the stream
}

// natsLastErrors remembers why each message of the stream was last given
// back for redelivery, by stream sequence, so that its dead letter can say.
type natsLastErrors struct {
	mu   sync.Mutex
	errs map[uint64]*gateway.Error
}

func (l *natsLastErrors) set(seq uint64, e *gateway.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errs == nil {
		l.errs = map[uint64]*gateway.Error{}
	}
	if _, ok := l.errs[seq]; ok || len(l.errs) < natsMaxLastErrors {
		l.errs[seq] = e
	}
}

// take returns and forgets the last error of seq (nil if none is known).
func (l *natsLastErrors) take(seq uint64) *gateway.Error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.errs[seq]
	delete(l.errs, seq)
	return e
}

// watchDeadLetters subscribes the receiving side (the max-deliveries
// advisories of this gateway's stream) and the sending side (dead letters
// for this gateway), both in the site's queue group so that one gateway
// of a site handles each.
func (n *Node) watchDeadLetters(l *natsLink) error {
	conn := l.bus.Conn()
	for subject, handle := range map[string]func(*nats.Msg){
		natsAdvisorySubject(n.serverID):  func(m *nats.Msg) { n.onMaxDeliveries(l, m) },
		natsDeadSubject(n.serverID, "*"): func(m *nats.Msg) { n.onDeadLetter(l, m) },
	} {
		sub, err := conn.QueueSubscribe(subject, natsQueue(n.serverID), func(m *nats.Msg) {
			l.handlers.Go(func() { handle(m) })
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		l.subs = append(l.subs, sub)
	}
	return nil
}

// onMaxDeliveries hands the message an advisory names back to its sender.
func (n *Node) onMaxDeliveries(l *natsLink, m *nats.Msg) {
	var adv server.JSConsumerDeliveryExceededAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.Stream != natsStreamName(n.serverID) {
		n.log.Warn("malformed JetStream max-deliveries advisory", "subject", clip(m.Subject, 200))
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, natsSetupTimeout)
	defer cancel()
	lastErr := l.durable.lastErrs.take(adv.StreamSeq)
	stream, err := l.durable.js.Stream(ctx, adv.Stream)
	var raw *jetstream.RawStreamMsg
	if err == nil {
		raw, err = stream.GetMsg(ctx, adv.StreamSeq)
	}
	if err != nil {
		n.log.Warn("durable message dead after max deliveries, but it could not be read back from the stream", "stream", adv.Stream,
			"seq", adv.StreamSeq, "deliveries", adv.Deliveries, "err", err)
		return
	}
	sender := raw.Subject[strings.LastIndexByte(raw.Subject, '.')+1:]
	if checkIdent("the sender token of the NATS subject", sender, true) != nil {
		return
	}
	data, err := json.Marshal(natsDeadLetter{Deliveries: int(adv.Deliveries), LastError: lastErr, Request: raw.Data})
	if err == nil && len(data) > natsMaxDeadLetter {
		err = fmt.Errorf("%d bytes, over %d", len(data), natsMaxDeadLetter)
	}
	for try := 0; err == nil || try == 0; try++ {
		if err == nil {
			_, err = l.bus.Conn().Request(natsDeadSubject(sender, n.serverID), data, natsDeadNoticeWait)
		}
		if err == nil || try+1 == natsDeadNoticeTries || l.ctx.Err() != nil {
			break
		}
		err = nil
	}
	id := raw.Header.Get(jetstream.MsgIDHeader)
	if err != nil {
		n.log.Warn("durable message dead after max deliveries; its sender did not take the dead letter", "messageId", clip(id, 200),
			"sender", sender, "deliveries", adv.Deliveries, "err", err)
		return
	}
	n.log.Info("durable message dead after max deliveries, handed back to its sender", "messageId", clip(id, 200),
		"sender", sender, "deliveries", adv.Deliveries)
}

// onDeadLetter keeps a dead letter from a receiving gateway in the outbox
// as a dead entry, and acknowledges it. A repeated one changes nothing.
func (n *Node) onDeadLetter(l *natsLink, m *nats.Msg) {
	err := n.keepDeadLetter(l, m.Subject, m.Data)
	if err != nil {
		n.log.Warn("NATS dead letter refused", "subject", clip(m.Subject, 200), "err", err)
		_ = m.Respond([]byte(clip(err.Error(), 500)))
		return
	}
	_ = m.Respond([]byte("ok"))
}

func (n *Node) keepDeadLetter(l *natsLink, subject string, data []byte) error {
	receiver := subject[strings.LastIndexByte(subject, '.')+1:]
	if err := checkIdent("the receiver token of the NATS subject", receiver, true); err != nil {
		return err
	}
	if len(data) > natsMaxDeadLetter {
		return fmt.Errorf("%w: dead letter from %q is %d bytes, over %d", ErrTooLarge, receiver, len(data), natsMaxDeadLetter)
	}
	var dl natsDeadLetter
	var params RelayParams
	if err := json.Unmarshal(data, &dl); err != nil {
		return fmt.Errorf("%w: dead letter from %q: %v", ErrInvalidParams, receiver, err)
	}
	if err := params.UnmarshalJSON(dl.Request); err != nil || params.Message == nil {
		return fmt.Errorf("%w: dead letter from %q: its request is not a relay request: %v", ErrInvalidParams, receiver, err)
	}
	msg := params.Message
	if err := msg.Validate(); err != nil {
		return fmt.Errorf("%w: dead letter from %q: %v", ErrInvalidParams, receiver, err)
	}
	if err := checkIdent("targetAgent", params.TargetAgent, true); err != nil {
		return err
	}
	if msg.FromServer != n.serverID {
		return fmt.Errorf("%w: dead letter from %q is for a message from %s, not from this gateway", ErrInvalidParams, receiver, quoteBounded(msg.FromServer))
	}
	l.deadMu.Lock() // one dead letter at a time: a repeat finds the first kept
	defer l.deadMu.Unlock()
	if _, err := n.outbox.Get(msg.MessageID); err == nil {
		return nil // already kept
	} else if !errors.Is(err, outbox.ErrUnknown) {
		return err
	}
	why := "no answer"
	code := gateway.CodeTimeout
	if dl.LastError != nil {
		why, code = clip(dl.LastError.Message, 500), clip(dl.LastError.Code, 64)
	}
	now := time.Now().UnixMilli()
	e := &OutboxEntry{MessageID: msg.MessageID, Kind: "send", PeerID: natsPeerID(receiver, params.TargetAgent), State: StateDead,
		Attempts: dl.Deliveries, PeerAttempts: dl.Deliveries, CreatedAt: msg.Timestamp, FinishedAt: now,
		Message: msg, TimeoutMs: int(max(min(params.TimeoutMs, natsResponseTTL.Milliseconds()), 0)),
		LastError: gateway.NewError(code, fmt.Sprintf("not handled after %d deliveries (max deliveries of the JetStream consumer of %q, its federation.durable.maxAttempts); last error: %s",
			dl.Deliveries, receiver, why))}
	if err := n.enqueue(e); err != nil {
		return err
	}
	n.log.Info("durable message dead", "messageId", e.MessageID, "peer", e.PeerID, "attempts", e.Attempts)
	return nil
}

// forget forgets the last error of a message that is now acked
// or terminated.
func (d *natsDurable) forget(m jetstream.Msg) {
	if md, err := m.Metadata(); err == nil {
		d.lastErrs.take(md.Sequence.Stream)
	}
}
