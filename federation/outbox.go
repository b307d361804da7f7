package federation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/outbox"
	"github.com/agentfed/agentfed/internal/schedule"
	"github.com/agentfed/agentfed/internal/store"
)

// The outbox of durable messages is internal/outbox's: it keeps them on
// disk, retries them and records their states. This file gives it the
// node's messages, deliveries and error codes.

// Durable message states.
const (
	StateQueued    = outbox.StateQueued    // on disk, waiting for (another) delivery attempt
	StateDelivered = outbox.StateDelivered // the peer answered; Result holds the answer
	StateFailed    = outbox.StateFailed    // the peer answered with an error retrying cannot fix
	StateDead      = outbox.StateDead      // ttlMs passed before any peer accepted it
)

// StatusQueued is the Result status of a durable message accepted into the
// outbox.
const StatusQueued = "queued"

// OutboxEntry is a durable message as the outbox keeps it and as status
// and the outbox list report it: its id, kind (send, delegate or
// broadcast), peer or required capabilities, State, attempts, times (Unix
// ms), lastError, the Message and, once answered, the Result. Its fields
// and their JSON names are internal/outbox's Entry's.
type OutboxEntry = outbox.Entry[Message, Result]

// Durable delivery defaults (federation.durable).
const (
	processedKeep      = 24 * time.Hour // default retention of handled and delivered messages
	defaultMaxAttempts = 10             // federation.durable.maxAttempts
)

func newOutbox(n *Node, st *store.Store) (*outbox.Outbox[Message, Result], error) {
	d := n.cfg.Federation.Durable
	return outbox.New(outbox.Config[Message, Result]{
		Store:        st,
		Deliver:      n.attemptEntry,
		Rank:         func(m *Message) int { return m.Priority.Rank() },
		AppendResult: appendResult,
		Log:          n.log,
		MaxAttempts:  d.MaxAttempts, // negative: no limit
		MaxAge:       time.Duration(d.MaxAgeMs) * time.Millisecond,
		Retention:    time.Duration(d.RetentionMs) * time.Millisecond,
		HeldGrace:    time.Duration(n.cfg.Federation.DefaultTimeoutMs) * time.Millisecond,
	})
}

// enqueue writes durable messages to the outbox, to be delivered from
// there. When it returns nil they survive any crash.
func (n *Node) enqueue(entries ...*OutboxEntry) error {
	return outboxError(n.outbox.Put(entries...))
}

// attemptEntry makes one delivery attempt of a durable message for the
// outbox and judges it: delivered, failed for good (no peer can do
// better), or to be tried again.
func (n *Node) attemptEntry(ctx context.Context, e *OutboxEntry) outbox.Report[Result] {
	r := n.deliverEntry(ctx, e)
	rep := outbox.Report[Result]{State: StateQueued, Result: r, Error: r.Error, Peer: classify(r)}
	switch {
	case r.Status == StatusOK:
		rep.State = StateDelivered
	case !retryable(r):
		rep.State = StateFailed
	}
	return rep
}

// classify says how an attempt's result bears on holding back its peer.
func classify(r *Result) schedule.Outcome {
	switch {
	case r.Status == StatusOK:
		return schedule.Up
	case r.Status == StatusTimeout || r.Error == nil || r.Error.Code == gateway.CodeTimeout:
		return schedule.Unsure
	case peerAnswered(r.Error):
		return schedule.Up
	}
	return schedule.Down
}

// outboxError gives an error of the outbox the sentinel, and so the code,
// that federation's callers match: the words stay the outbox's.
func outboxError(err error) error {
	for _, m := range []struct{ from, to error }{
		{outbox.ErrUnknown, ErrUnknownMessage},
		{outbox.ErrState, ErrInvalidParams},
		{outbox.ErrStorage, ErrStorage},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %w", m.to, err)
		}
	}
	return err
}
