package outbox

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/schedule"
	"github.com/agentfed/agentfed/internal/store"
)

// List bounds: the most entries in one page, and the most bytes of
// entries, so that a page always fits a frame (4 MiB).
const (
	MaxPage      = 1000
	maxPageBytes = 2 << 20
)

// Get returns the stored entry for id (ErrUnknown if there is none).
func (o *Outbox[M, R]) Get(id string) (*Entry[M, R], error) {
	b, err := o.st.Get(store.Outbox, id)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, &refusal{ErrUnknown, fmt.Sprintf("no durable message %q in this gateway's outbox", id)}
	}
	return decodeEntry[M, R](b)
}

// List returns up to limit stored entries in the given states (all when
// empty) whose ids sort after after, oldest first (ids begin with their
// creation time). next is the id to list after for the following page, or
// "" when there are no more. An entry too large for a page on its own is
// listed without its message and result; Get returns them.
func (o *Outbox[M, R]) List(states []string, after string, limit int) (out []*Entry[M, R], next string, err error) {
	size := 0
	var bad error
	err = o.st.Scan(store.Outbox, after, func(id string, v []byte) bool {
		var e *Entry[M, R]
		if e, bad = decodeEntry[M, R](v); bad != nil {
			bad = fmt.Errorf("outbox entry %q: %w", id, bad)
			return false
		}
		if len(states) > 0 && !slices.Contains(states, e.State) {
			return true
		}
		if len(out) == limit || len(out) > 0 && size+len(v) > maxPageBytes {
			next = out[len(out)-1].MessageID
			return false
		}
		if len(v) > maxPageBytes {
			e.Message, e.Result = nil, nil
		}
		size += len(v)
		out = append(out, e)
		return true
	})
	return out, next, errors.Join(err, bad)
}

// Counts counts the stored entries by state.
func (o *Outbox[M, R]) Counts() map[string]int {
	counts := map[string]int{StateQueued: 0, StateDelivered: 0, StateFailed: 0, StateDead: 0}
	o.st.ForEach(store.Outbox, func(_ string, v []byte) error {
		if e, err := decodeHeader[M, R](v); err == nil {
			if _, ok := counts[e.State]; ok {
				counts[e.State]++
			}
		}
		return nil
	})
	return counts
}

// Retry puts a dead or failed entry back in the queue with a fresh ttl.
func (o *Outbox[M, R]) Retry(id string) (*Entry[M, R], error) {
	e, err := o.Get(id)
	if err != nil {
		return nil, err
	}
	if e.State != StateDead && e.State != StateFailed {
		return nil, &refusal{ErrState, fmt.Sprintf("message %q is %s; only dead or failed messages can be retried", id, e.State)}
	}
	now := time.Now()
	e.State, e.Attempts, e.NextAttemptAt, e.Result, e.LastError = StateQueued, 0, 0, nil, nil
	e.Stream = "" // one a stream held is delivered by the outbox now
	if e.TTLMs > 0 {
		e.ExpiresAt = now.Add(time.Duration(e.TTLMs) * time.Millisecond).UnixMilli()
	}
	snapshot := *e // e belongs to the worker once queued
	return &snapshot, o.Put(e)
}

// Cancel takes a queued entry out of the queue for good: it is dead with
// lastError CANCELLED. An attempt in flight is stopped and waited for
// first (its outcome is not recorded); if it had already been answered,
// the entry is no longer queued and Cancel says what it became.
func (o *Outbox[M, R]) Cancel(id string) (*Entry[M, R], error) {
	if e, err := o.Get(id); err == nil && e.State == StateQueued && e.Stream != "" {
		return nil, HeldError(e.MessageID, e.Stream)
	}
	return o.settle(id, "cancel", func(e *Entry[M, R]) (string, *R, *gateway.Error) {
		return StateDead, nil, gateway.NewError(gateway.CodeCancelled, fmt.Sprintf("cancelled by an operator after %d attempts", e.Attempts))
	})
}

// Finish records the final state (StateDelivered, StateFailed or
// StateDead) of the queued message id, which another path settled, with
// its result r, if any, and why it failed, if it did. As with Cancel, an
// attempt in flight is stopped first and its outcome not recorded. It
// returns the entry as recorded.
func (o *Outbox[M, R]) Finish(id, state string, r *R, why *gateway.Error) (*Entry[M, R], error) {
	if state != StateDelivered && state != StateFailed && state != StateDead {
		return nil, fmt.Errorf("outbox: finish message %q as %q: not a final state", id, state)
	}
	return o.settle(id, "finish", func(*Entry[M, R]) (string, *R, *gateway.Error) { return state, r, why })
}

// settle records the final state that final gives the queued entry id,
// after stopping any attempt of it in flight; verb names the operation in
// errors.
func (o *Outbox[M, R]) settle(id, verb string, final func(*Entry[M, R]) (string, *R, *gateway.Error)) (*Entry[M, R], error) {
	var stopped *schedule.Item // the attempt stopped for this, unscheduled
	for {
		o.mu.Lock()
		if it := o.running[id]; it != nil {
			it.Cancelled = true
			it.Stop()
			done := it.Done
			o.mu.Unlock()
			<-done // bounded by the delivery's timeout; the stop ends it at once
			stopped = it
			continue
		}
		// Not running, and it cannot start while o.mu is held: an attempt
		// reads the entry after it starts, and will find it settled.
		defer o.mu.Unlock()
		e, err := o.Get(id)
		if err != nil {
			return nil, err
		}
		if e.State != StateQueued {
			return nil, &refusal{ErrState, fmt.Sprintf("message %q is %s, not queued; nothing to %s", id, e.State, verb)}
		}
		state, r, why := final(e)
		if !o.finish(e, state, r, why, false) { // o.mu is held: at once
			if stopped != nil { // still queued: schedule it again
				stopped.Cancelled, stopped.Next = false, e.NextAttemptAt
				o.sched.Add(stopped, time.Now())
				o.poke()
			}
			return nil, fmt.Errorf("%s message %q: could not write the outbox; try again", verb, id)
		}
		return e, nil
	}
}

// Drop deletes an entry that is not queued.
func (o *Outbox[M, R]) Drop(id string) error {
	e, err := o.Get(id)
	if err != nil {
		return err
	}
	if e.State == StateQueued {
		return &refusal{ErrState, fmt.Sprintf("message %q is still queued; cancel it first (agentfed outbox cancel), or wait for it to be delivered or to expire", id)}
	}
	return o.st.PutBatch(store.Outbox, store.KV{Key: id})
}

// HeldError is why the entry of message id, held by stream, cannot be
// cancelled.
func HeldError(id, stream string) error {
	return &refusal{ErrState, fmt.Sprintf("message %q is held by the JetStream stream %s of its receiver, which this gateway cannot take it out of; it ends with its ttlMs, or when the receiver has handled it", id, stream)}
}

// DeleteHeld deletes the entry of a message that its stream did not take
// after all.
func (o *Outbox[M, R]) DeleteHeld(id string) error {
	return o.st.PutBatch(store.Outbox, store.KV{Key: id})
}
