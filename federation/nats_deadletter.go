package federation

// Dead letters over NATS. A durable message that exhausts its consumer's
// MaxDeliver (federation.durable.maxAttempts of the receiving gateway) is
// skipped by JetStream, which publishes the max-deliveries advisory
// $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>. The
// receiving gateway (one of its site, in its queue group) reads the
// message from its stream and hands it back to the gateway that sent it as
// a dead outcome (nats_outcome.go), which the sender's outcome stream keeps
// until the sender takes it. The sender's outbox entry is then dead: its
// operator lists, retries (then delivered by the outbox as any durable
// send, a request with retries) or drops it.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/gateway"
)

const (
	natsMaxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
	natsMaxLastErrors         = 4096 // retryable failures remembered for dead letters
)

func natsAdvisorySubject(serverID string) string {
	return natsMaxDeliveriesAdvisory + natsStreamName(serverID) + ".*"
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

// watchDeadLetters subscribes the max-deliveries advisories of this
// gateway's stream, in the site's queue group so that one gateway of a
// site handles each.
func (n *Node) watchDeadLetters(l *natsLink) error {
	subject := natsAdvisorySubject(n.serverID)
	sub, err := l.bus.Conn().QueueSubscribe(subject, natsQueue(n.serverID), func(m *nats.Msg) {
		// Not under the link's limit of handlers: the NATS server
		// publishes one advisory per dead message and never again, so a
		// refused one would leave its sender never told.
		l.handlers.Go(func() { n.onMaxDeliveries(l, m) })
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	l.subs = append(l.subs, sub)
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
	id := raw.Header.Get(jetstream.MsgIDHeader)
	if checkIdent("the sender token of the NATS subject", sender, true) != nil || checkIdent("messageId", id, true) != nil {
		return
	}
	out := &natsOutcome{MessageID: id, State: StateDead, Error: lastErr, Deliveries: int(adv.Deliveries), Request: raw.Data}
	if err := n.publishOutcome(ctx, l.durable, sender, out); err != nil {
		n.log.Warn("durable message dead after max deliveries; its dead letter was not stored for its sender", "messageId", clip(id, 200),
			"sender", sender, "deliveries", adv.Deliveries, "err", err)
		return
	}
	n.log.Info("durable message dead after max deliveries, handed back to its sender", "messageId", clip(id, 200),
		"sender", sender, "deliveries", adv.Deliveries)
}

// forget forgets the last error of a message that is now acked
// or terminated.
func (d *natsDurable) forget(m jetstream.Msg) {
	if md, err := m.Metadata(); err == nil {
		d.lastErrs.take(md.Sequence.Stream)
	}
}
