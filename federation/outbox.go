package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
)

// Durable message states.
const (
	StateQueued    = "queued"    // on disk, waiting for (another) delivery attempt
	StateDelivered = "delivered" // the peer answered; Result holds the answer
	StateFailed    = "failed"    // the peer answered with an error retrying cannot fix
	StateDead      = "dead"      // ttlMs passed before any peer accepted it
)

// StatusQueued is the Result status of a durable message accepted into the
// outbox.
const StatusQueued = "queued"

// Outbox tuning.
const (
	outboxConcurrency = 64               // deliveries in flight at once
	outboxMaxBackoff  = 10 * time.Second // between attempts of one message
	processedKeep     = 24 * time.Hour   // how long receivers remember handled durable messages
)

// OutboxEntry is a durable message as the outbox keeps it and as status
// and the outbox list report it.
type OutboxEntry struct {
	MessageID            string         `json:"messageId"`
	Kind                 string         `json:"kind"` // send, delegate or broadcast
	PeerID               string         `json:"peerId,omitempty"`
	RequiredCapabilities []string       `json:"requiredCapabilities,omitempty"`
	Strategy             string         `json:"strategy,omitempty"`
	State                string         `json:"state"`
	Attempts             int            `json:"attempts"`
	CreatedAt            int64          `json:"createdAt"`           // Unix ms
	ExpiresAt            int64          `json:"expiresAt,omitempty"` // Unix ms; 0: never
	NextAttemptAt        int64          `json:"nextAttemptAt,omitempty"`
	FinishedAt           int64          `json:"finishedAt,omitempty"` // Unix ms of the final state
	LastError            *gateway.Error `json:"lastError,omitempty"`
	Result               *Result        `json:"result,omitempty"`
	Message              *Message       `json:"message"`
	TimeoutMs            int            `json:"timeoutMs,omitempty"`
	TTLMs                int            `json:"ttlMs,omitempty"`
}

// outbox delivers durable messages with retries until they are answered or
// expire, surviving restarts: every state change is on disk before it is
// acted on.
type outbox struct {
	n    *Node
	st   *store.Store
	wake chan struct{} // a new message is due

	mu    sync.Mutex // guards sched
	sched schedule
}

func newOutbox(n *Node, st *store.Store) (*outbox, error) {
	o := &outbox{n: n, st: st, wake: make(chan struct{}, 1), sched: newSchedule()}
	err := st.ForEach(store.Outbox, func(id string, v []byte) error {
		var e OutboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("outbox entry %q: %w", id, err)
		}
		if e.State == StateQueued {
			e.NextAttemptAt = 0 // resume at once after a restart
			o.sched.add(itemOf(&e), time.Now())
		}
		return nil
	})
	return o, err
}

// enqueue writes entries to disk (group-committed with concurrent callers)
// and schedules them. When it returns nil they survive any crash.
func (o *outbox) enqueue(entries ...*OutboxEntry) error {
	kvs := make([]store.KV, len(entries))
	for i, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		kvs[i] = store.KV{Key: e.MessageID, Value: b}
	}
	if err := o.st.PutBatch(store.Outbox, kvs...); err != nil {
		return fmt.Errorf("%w: write outbox: %v", ErrStorage, err) // nothing queued: the caller may retry
	}
	now := time.Now()
	o.mu.Lock()
	for _, e := range entries {
		o.sched.add(itemOf(e), now)
	}
	o.mu.Unlock()
	o.poke()
	return nil
}

// peerUp makes the queued messages for peer due now: a heartbeat reached
// it, so there is no reason to wait out their backoff.
func (o *outbox) peerUp(peer string) {
	o.mu.Lock()
	found := o.sched.wakePeer(peer)
	o.mu.Unlock()
	if found {
		o.poke()
	}
}

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// save persists e's current state.
func (o *outbox) save(e *OutboxEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return o.st.PutBatch(store.Outbox, store.KV{Key: e.MessageID, Value: b})
}

// run delivers due entries until ctx ends, then waits for deliveries in
// flight to stop. Entries interrupted by shutdown stay queued on disk.
func (o *outbox) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, outboxConcurrency)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		for {
			o.mu.Lock()
			it := o.sched.next(time.Now())
			o.mu.Unlock()
			if it == nil {
				break
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return // e stays queued on disk
			}
			wg.Go(func() {
				defer o.poke() // its slot is free again
				defer func() { <-slots }()
				o.attempt(ctx, it)
			})
		}
		o.mu.Lock()
		wait := o.sched.wait(time.Now())
		o.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-timer.C:
		case <-prune.C:
			o.n.pruneProcessed(time.Now().Add(-processedKeep))
			o.pruneFinished(time.Now().Add(-processedKeep))
			o.n.contexts.prune(time.Now().Add(-processedKeep))
		}
	}
}

// attempt loads the message from disk, delivers it once, records the
// outcome, and schedules it again if it is to be retried.
func (o *outbox) attempt(ctx context.Context, it *schedItem) {
	retry := true
	var e *OutboxEntry
	defer func() {
		o.mu.Lock()
		if retry && e != nil {
			it.next = e.NextAttemptAt
			o.sched.add(it, time.Now())
		} else {
			o.sched.remove(it)
		}
		o.mu.Unlock()
	}()
	e, err := o.get(it.id)
	switch {
	case errors.Is(err, ErrUnknownMessage) || err == nil && e.State != StateQueued:
		retry = false // dropped or finished meanwhile
		return
	case err != nil: // storage trouble: try again later, do not forget it
		o.n.log.Error("outbox read failed", "messageId", it.id, "err", err)
		e = &OutboxEntry{NextAttemptAt: time.Now().Add(time.Second).UnixMilli()}
		return
	}
	now := time.Now()
	if e.ExpiresAt != 0 && now.UnixMilli() >= e.ExpiresAt {
		retry = !o.finish(e, StateDead, nil)
		return
	}
	r := o.n.deliverEntry(ctx, e)
	if ctx.Err() != nil {
		return // shutting down: the entry stays queued on disk
	}
	e.Attempts++
	switch {
	case r.Status == StatusOK:
		retry = !o.finish(e, StateDelivered, r)
	case !retryable(r):
		retry = !o.finish(e, StateFailed, r)
	default:
		e.LastError = r.Error
		backoff := min(time.Duration(1<<min(e.Attempts, 15))*50*time.Millisecond, outboxMaxBackoff)
		e.NextAttemptAt = now.Add(backoff).UnixMilli()
		if e.ExpiresAt != 0 && e.NextAttemptAt >= e.ExpiresAt {
			e.NextAttemptAt = e.ExpiresAt
		}
		if err := o.save(e); err != nil {
			o.n.log.Error("outbox save failed", "messageId", e.MessageID, "err", err)
		}
	}
}

// finish records a final state; it reports whether that reached the disk
// (if not, the entry stays scheduled and is tried again).
func (o *outbox) finish(e *OutboxEntry, state string, r *Result) bool {
	e.State, e.Result, e.NextAttemptAt, e.FinishedAt = state, r, 0, time.Now().UnixMilli()
	if r != nil && r.Error != nil {
		e.LastError = r.Error
	}
	if state == StateDead {
		e.LastError = gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("not delivered within ttlMs %d after %d attempts", e.TTLMs, e.Attempts))
	}
	if err := o.save(e); err != nil {
		o.n.log.Error("outbox save failed", "messageId", e.MessageID, "err", err)
		e.State = StateQueued
		e.NextAttemptAt = time.Now().Add(time.Second).UnixMilli() // not a tight loop on a failing disk
		return false
	}
	level := slog.LevelInfo
	if state == StateDelivered {
		level = slog.LevelDebug
	}
	o.n.log.Log(context.Background(), level, "durable message "+state, "messageId", e.MessageID, "peer", e.PeerID, "attempts", e.Attempts)
	return true
}

// pruneFinished deletes delivered entries finished before cutoff, so
// the outbox does not grow without bound. Failed and dead entries stay
// until an operator retries or drops them.
func (o *outbox) pruneFinished(cutoff time.Time) {
	o.st.DeleteIf(store.Outbox, func(_ string, v []byte) bool {
		var e OutboxEntry
		return json.Unmarshal(v, &e) == nil && e.State == StateDelivered && e.FinishedAt < cutoff.UnixMilli()
	})
}

// get returns the stored entry for id.
func (o *outbox) get(id string) (*OutboxEntry, error) {
	b, err := o.st.Get(store.Outbox, id)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%w: no durable message %q in this gateway's outbox", ErrUnknownMessage, id)
	}
	var e OutboxEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// list returns stored entries in the given states (all when empty), oldest
// first, at most limit.
func (o *outbox) list(states []string, limit int) ([]*OutboxEntry, error) {
	var out []*OutboxEntry
	err := o.st.ForEach(store.Outbox, func(_ string, v []byte) error {
		var e OutboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		if len(states) == 0 || contains(states, e.State) {
			out = append(out, &e)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// retry puts a dead or failed entry back in the queue with a fresh ttl.
func (o *outbox) retry(id string) (*OutboxEntry, error) {
	e, err := o.get(id)
	if err != nil {
		return nil, err
	}
	if e.State != StateDead && e.State != StateFailed {
		return nil, fmt.Errorf("%w: message %q is %s; only dead or failed messages can be retried", ErrInvalidParams, id, e.State)
	}
	now := time.Now()
	e.State, e.Attempts, e.NextAttemptAt, e.Result, e.LastError = StateQueued, 0, 0, nil, nil
	if e.TTLMs > 0 {
		e.ExpiresAt = now.Add(time.Duration(e.TTLMs) * time.Millisecond).UnixMilli()
	}
	snapshot := *e // e belongs to the worker once enqueued
	return &snapshot, o.enqueue(e)
}

// drop deletes an entry that is not queued.
func (o *outbox) drop(id string) error {
	e, err := o.get(id)
	if err != nil {
		return err
	}
	if e.State == StateQueued {
		return fmt.Errorf("%w: message %q is still queued; wait for it to be delivered or to expire", ErrInvalidParams, id)
	}
	return o.st.PutBatch(store.Outbox, store.KV{Key: id})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
