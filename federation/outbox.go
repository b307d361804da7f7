package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/schedule"
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
	outboxConcurrency  = 64             // deliveries in flight at once
	processedKeep      = 24 * time.Hour // default retention of handled and delivered messages
	defaultMaxAttempts = 10             // federation.durable.maxAttempts
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

	// PeerAttempts counts the attempts that reached the peer's gateway;
	// federation.durable.maxAttempts bounds them.
	PeerAttempts int `json:"peerAttempts,omitempty"`
}

// outbox delivers durable messages with retries until they are answered or
// expire, surviving restarts: every state change is on disk before it is
// acted on.
type outbox struct {
	n    *Node
	st   *store.Store
	wake chan struct{} // a new message is due

	maxAttempts int           // attempts that reached the peer; 0: no limit
	maxAge      time.Duration // for messages without ttlMs; 0: no limit
	retention   time.Duration // of delivered entries and handled-message records

	mu      sync.Mutex // guards sched, running and the schedule's items
	sched   *schedule.Schedule
	running map[string]*schedule.Item // attempts in flight, by message id
}

func newOutbox(n *Node, st *store.Store) (*outbox, error) {
	d := n.cfg.Federation.Durable
	o := &outbox{n: n, st: st, wake: make(chan struct{}, 1), sched: schedule.New(),
		running:     map[string]*schedule.Item{},
		maxAttempts: max(d.MaxAttempts, 0), // negative: no limit
		maxAge:      time.Duration(d.MaxAgeMs) * time.Millisecond,
		retention:   time.Duration(d.RetentionMs) * time.Millisecond,
	}
	err := st.ForEach(store.Outbox, func(id string, v []byte) error {
		var e OutboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("outbox entry %q: %w", id, err)
		}
		if e.State == StateQueued {
			e.NextAttemptAt = 0 // resume at once after a restart
			o.sched.Add(o.itemOf(&e), time.Now())
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
		o.sched.Add(o.itemOf(e), now)
	}
	o.mu.Unlock()
	o.poke()
	return nil
}

// itemOf is the schedule's item for e, which expires at its ttl or else
// after maxAge.
func (o *outbox) itemOf(e *OutboxEntry) *schedule.Item {
	key := e.PeerID
	if e.Kind == "delegate" {
		key = schedule.DelegateKey(e.RequiredCapabilities)
	}
	return &schedule.Item{ID: e.MessageID, Key: key, Rank: e.Message.Priority.Rank(), CreatedAt: e.CreatedAt,
		Next: e.NextAttemptAt, Expires: o.deadline(e)}
}

// deadline is when e is dead if not delivered (Unix ms; 0: never).
func (o *outbox) deadline(e *OutboxEntry) int64 {
	if e.ExpiresAt == 0 && o.maxAge > 0 {
		return e.CreatedAt + o.maxAge.Milliseconds()
	}
	return e.ExpiresAt
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
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return // queued entries stay on disk
			}
			o.mu.Lock()
			it := o.sched.Next(time.Now())
			var actx context.Context
			if it != nil {
				actx, it.Stop = context.WithCancel(ctx)
				it.Done = make(chan struct{})
				o.running[it.ID] = it
			}
			o.mu.Unlock()
			if it == nil {
				<-slots
				break
			}
			wg.Go(func() {
				defer o.poke() // its slot is free again
				defer func() { <-slots }()
				o.attempt(actx, ctx, it)
			})
		}
		o.mu.Lock()
		wait := o.sched.Wait(time.Now())
		o.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-timer.C:
		case <-prune.C:
			o.n.pruneProcessed(time.Now().Add(-o.retention))
			o.pruneFinished(time.Now().Add(-o.retention))
			o.n.contexts.prune(time.Now().Add(-processedKeep))
		}
	}
}

// attempt loads the message from disk, delivers it once, records the
// outcome, and schedules it again if it is to be retried. actx is the
// attempt's own context (an operator's cancel ends it), ctx the outbox's.
func (o *outbox) attempt(actx, ctx context.Context, it *schedule.Item) {
	retry, class := true, schedule.None
	var e *OutboxEntry
	defer func() {
		it.Stop()
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.running, it.ID)
		close(it.Done)
		if o.sched.Record(it, class, time.Now()) {
			o.n.log.Debug("durable messages held for a peer that does not answer", "peer", it.Key)
		}
		switch {
		case !retry || e == nil || it.Cancelled:
			o.sched.Remove(it)
		case class == schedule.Down:
			o.sched.Park(it) // until the peer answers a probe or a heartbeat
		default:
			it.Next = e.NextAttemptAt
			o.sched.Add(it, time.Now())
		}
	}()
	e, err := o.get(it.ID)
	switch {
	case errors.Is(err, ErrUnknownMessage) || err == nil && e.State != StateQueued:
		retry = false // dropped or finished meanwhile
		return
	case err != nil: // storage trouble: try again later, do not forget it
		o.n.log.Error("outbox read failed", "messageId", it.ID, "err", err)
		e = &OutboxEntry{NextAttemptAt: time.Now().Add(time.Second).UnixMilli()}
		return
	}
	now := time.Now()
	if dl := o.deadline(e); dl != 0 && now.UnixMilli() >= dl {
		retry = !o.finish(e, StateDead, nil, o.expiredError(e))
		return
	}
	r := o.n.deliverEntry(actx, e)
	o.mu.Lock()
	cancelled := it.Cancelled
	o.mu.Unlock()
	if ctx.Err() != nil || cancelled {
		return // shutting down: the entry stays queued on disk; cancelled: the canceller records it
	}
	e.Attempts++
	class = classify(r)
	if class != schedule.Down {
		e.PeerAttempts++
	}
	switch {
	case r.Status == StatusOK:
		retry = !o.finish(e, StateDelivered, r, nil)
	case !retryable(r):
		retry = !o.finish(e, StateFailed, r, nil)
	case class != schedule.Down && o.maxAttempts > 0 && e.PeerAttempts >= o.maxAttempts:
		last := r.Error
		if last == nil {
			last = gateway.NewError(gateway.CodeTimeout, "no answer")
		}
		retry = !o.finish(e, StateDead, r, gateway.NewError(last.Code, fmt.Sprintf(
			"not delivered after %d attempts (federation.durable.maxAttempts); last error: %s", e.PeerAttempts, last.Message)))
	default:
		e.LastError = r.Error
		o.mu.Lock()
		delay := o.sched.RetryDelay(it, class)
		o.mu.Unlock()
		e.NextAttemptAt = now.Add(delay).UnixMilli()
		if dl := o.deadline(e); dl != 0 && e.NextAttemptAt >= dl {
			e.NextAttemptAt = dl
		}
		if err := o.save(e); err != nil {
			o.n.log.Error("outbox save failed", "messageId", e.MessageID, "err", err)
		}
	}
}

// expiredError says why e is dead: its ttl or maxAge passed.
func (o *outbox) expiredError(e *OutboxEntry) *gateway.Error {
	if e.TTLMs > 0 {
		return gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("not delivered within ttlMs %d after %d attempts", e.TTLMs, e.Attempts))
	}
	return gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("not delivered within federation.durable.maxAgeMs %d after %d attempts",
		o.maxAge.Milliseconds(), e.Attempts))
}

// finish records a final state, with why for a dead one; it reports
// whether that reached the disk (if not, the entry stays scheduled and is
// tried again).
func (o *outbox) finish(e *OutboxEntry, state string, r *Result, why *gateway.Error) bool {
	e.State, e.Result, e.NextAttemptAt, e.FinishedAt = state, r, 0, time.Now().UnixMilli()
	if r != nil && r.Error != nil {
		e.LastError = r.Error
	}
	if why != nil {
		e.LastError = why
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

// Outbox list bounds: the most entries in one page, and the most bytes of
// entries, so that a page always fits a frame (4 MiB).
const (
	maxOutboxPage      = 1000
	maxOutboxPageBytes = 2 << 20
)

// list returns up to limit stored entries in the given states (all when
// empty) whose ids sort after after, oldest first (ids begin with their
// creation time). next is the id to list after for the following page, or
// "" when there are no more. An entry too large for a page on its own is
// listed without its message and result; status shows them.
func (o *outbox) list(states []string, after string, limit int) (out []*OutboxEntry, next string, err error) {
	size := 0
	var bad error
	err = o.st.Scan(store.Outbox, after, func(id string, v []byte) bool {
		var e OutboxEntry
		if bad = json.Unmarshal(v, &e); bad != nil {
			bad = fmt.Errorf("outbox entry %q: %w", id, bad)
			return false
		}
		if len(states) > 0 && !contains(states, e.State) {
			return true
		}
		if len(out) == limit || len(out) > 0 && size+len(v) > maxOutboxPageBytes {
			next = out[len(out)-1].MessageID
			return false
		}
		if len(v) > maxOutboxPageBytes {
			e.Message, e.Result = nil, nil
		}
		size += len(v)
		out = append(out, &e)
		return true
	})
	return out, next, errors.Join(err, bad)
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

// cancel takes a queued entry out of the queue for good: it is dead with
// lastError CANCELLED. An attempt in flight is stopped and waited for
// first (its outcome is not recorded); if it had already been answered,
// the entry is no longer queued and cancel says what it became.
func (o *outbox) cancel(id string) (*OutboxEntry, error) {
	var stopped *schedule.Item // the attempt stopped for this cancel, unscheduled
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
		// reads the entry after it starts, and will find it dead.
		defer o.mu.Unlock()
		e, err := o.get(id)
		if err != nil {
			return nil, err
		}
		if e.State != StateQueued {
			return nil, fmt.Errorf("%w: message %q is %s, not queued; nothing to cancel", ErrInvalidParams, id, e.State)
		}
		if !o.finish(e, StateDead, nil, gateway.NewError(gateway.CodeCancelled, fmt.Sprintf("cancelled by an operator after %d attempts", e.Attempts))) {
			if stopped != nil { // still queued: schedule it again
				stopped.Cancelled, stopped.Next = false, e.NextAttemptAt
				o.sched.Add(stopped, time.Now())
				o.poke()
			}
			return nil, fmt.Errorf("cancel message %q: could not write the outbox; try again", id)
		}
		return e, nil
	}
}

// drop deletes an entry that is not queued.
func (o *outbox) drop(id string) error {
	e, err := o.get(id)
	if err != nil {
		return err
	}
	if e.State == StateQueued {
		return fmt.Errorf("%w: message %q is still queued; cancel it first (agentfed outbox cancel), or wait for it to be delivered or to expire", ErrInvalidParams, id)
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

// peerUp makes the queued messages for peer due now: a heartbeat reached
// it, so there is no reason to wait out their backoff. Durable delegations
// waiting for a capable peer are due again too.
func (o *outbox) peerUp(peer string) {
	o.mu.Lock()
	found := o.sched.PeerUp(peer)
	o.mu.Unlock()
	if found {
		o.poke()
	}
}
