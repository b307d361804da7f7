package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/schedule"
	"github.com/agentfed/agentfed/internal/store"
)

const (
	// concurrency is how many deliveries are in flight at once. A
	// receiver answers a durable message once its processed record is
	// written, with a gather delay (federation's recordEvery), so a
	// delivery takes that long at least: 64 would cap delivery at a few
	// thousand a second.
	concurrency = 128
	// recording is how many more attempts may be writing their outcome
	// (gathered for outcomeEvery) after their delivery's slot is free.
	recording = 4 * concurrency
	// outcomeEvery is how long an attempt's outcome waits for others, to
	// be written in one transaction with them (store.Gather): nobody waits
	// on it, and outcomes written as each delivery ended took a commit
	// every one or two dozen, so that the senders of new messages waited
	// behind them (docs/BENCHMARKS.md, "Durable accepts").
	outcomeEvery = 10 * time.Millisecond
)

// Config is what an Outbox needs from its owner. Store, Deliver and Rank
// are required.
type Config[M, R any] struct {
	Store *store.Store // entries live in its store.Outbox bucket

	// Deliver makes one delivery attempt of e now and reports how it went.
	// It may set e.PeerID (a delegation's chosen peer). ctx ends when the
	// outbox stops or an operator cancels the message.
	Deliver func(ctx context.Context, e *Entry[M, R]) Report[R]
	// Rank is a message's priority: higher goes first.
	Rank func(m *M) int
	// AppendResult, if set, appends a result's JSON encoding to dst,
	// byte for byte as json.Marshal writes it, faster; nil: json.Marshal.
	AppendResult func(dst []byte, r *R) ([]byte, error)

	Log         *slog.Logger  // nil: no logs
	MaxAttempts int           // attempts that reached the peer; 0 or less: no limit
	MaxAge      time.Duration // for messages without ttlMs; 0: no limit
	Retention   time.Duration // how long delivered entries are kept after they finish
	// HeldGrace is how long past its ttl (or MaxAge) an entry held by a
	// stream (Entry.Stream) waits for its outcome before it is dead: a
	// handling begun just before may still answer. The entry's own
	// timeout, if it has one, counts instead.
	HeldGrace time.Duration
}

// Outbox delivers durable messages with retries until they are answered
// or expire, surviving restarts: every state change is on disk before it
// is acted on.
type Outbox[M, R any] struct {
	cfg      Config[M, R]
	st       *store.Store
	outcomes *store.Gather // the attempts' outcomes, batched
	log      *slog.Logger
	wake     chan struct{} // a new message is due

	mu      sync.Mutex // guards sched, running and the schedule's items
	sched   *schedule.Schedule
	running map[string]*schedule.Item // attempts in flight, by message id
}

// New opens the outbox kept in cfg.Store and schedules its queued entries,
// due at once. It does not deliver until Run.
func New[M, R any](cfg Config[M, R]) (*Outbox[M, R], error) {
	if cfg.Store == nil || cfg.Deliver == nil || cfg.Rank == nil {
		return nil, errors.New("outbox: Config needs a Store, Deliver and Rank")
	}
	o := &Outbox[M, R]{cfg: cfg, st: cfg.Store, outcomes: cfg.Store.Gather(store.Outbox, outcomeEvery), log: cfg.Log,
		wake: make(chan struct{}, 1), sched: schedule.New(), running: map[string]*schedule.Item{}}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	err := o.st.ForEach(store.Outbox, func(id string, v []byte) error {
		e, err := decodeEntry[M, R](v)
		if err != nil {
			return fmt.Errorf("outbox entry %q: %w", id, err)
		}
		if e.State == StateQueued && e.Stream == "" {
			e.NextAttemptAt = 0 // resume at once after a restart
			o.sched.Add(o.itemOf(e), time.Now())
		}
		return nil
	})
	return o, err
}

// Put writes entries to disk (group-committed with concurrent callers) and
// schedules those that are queued (but for those a stream holds). When it returns nil they survive any
// crash; when it returns an error (ErrStorage), none was written.
func (o *Outbox[M, R]) Put(entries ...*Entry[M, R]) error {
	kvs := make([]store.KV, len(entries))
	for i, e := range entries {
		b, err := e.encode(o.cfg.AppendResult)
		if err != nil {
			return err
		}
		kvs[i] = store.KV{Key: e.MessageID, Value: b}
	}
	if err := o.st.PutBatch(store.Outbox, kvs...); err != nil {
		return &refusal{ErrStorage, fmt.Sprintf("write outbox: %v", err)} // nothing queued: the caller may retry
	}
	now, queued := time.Now(), false
	o.mu.Lock()
	for _, e := range entries {
		if e.State == StateQueued && e.Stream == "" {
			o.sched.Add(o.itemOf(e), now)
			queued = true
		}
	}
	o.mu.Unlock()
	if queued {
		o.poke()
	}
	return nil
}

// itemOf is the schedule's item for e, which expires at its ttl or else
// after MaxAge.
func (o *Outbox[M, R]) itemOf(e *Entry[M, R]) *schedule.Item {
	key := e.PeerID
	if e.Kind == "delegate" {
		key = schedule.DelegateKey(e.RequiredCapabilities)
	}
	return &schedule.Item{ID: e.MessageID, Key: key, Rank: o.cfg.Rank(e.Message), CreatedAt: e.CreatedAt,
		Next: e.NextAttemptAt, Expires: o.deadline(e)}
}

// deadline is when e is dead if not delivered (Unix ms; 0: never).
func (o *Outbox[M, R]) deadline(e *Entry[M, R]) int64 {
	if e.ExpiresAt == 0 && o.cfg.MaxAge > 0 {
		return e.CreatedAt + o.cfg.MaxAge.Milliseconds()
	}
	return e.ExpiresAt
}

func (o *Outbox[M, R]) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// save persists e's current state: at once, or with the next batch of
// outcomes when gathered.
func (o *Outbox[M, R]) save(e *Entry[M, R], gathered bool) error {
	b, err := e.encode(o.cfg.AppendResult)
	if err != nil {
		return err
	}
	kv := store.KV{Key: e.MessageID, Value: b}
	if gathered {
		return o.outcomes.Put(kv)
	}
	return o.st.PutBatch(store.Outbox, kv)
}

// Run delivers due entries until ctx ends, then waits for deliveries in
// flight to stop. Entries interrupted by shutdown stay queued on disk.
// Every minute it deletes the delivered entries older than Retention.
//
// An attempt holds one of concurrency slots while it delivers, and one of
// recording more while it writes the outcome: the next delivery need not
// wait for that write. An attempt that found its peer down, or its entry
// expired, keeps its delivery slot until the outcome is written.
func (o *Outbox[M, R]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, concurrency)
	writing := make(chan struct{}, recording)
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
				actx = o.begin(ctx, it)
			}
			o.mu.Unlock()
			if it == nil {
				<-slots
				break
			}
			wg.Go(func() {
				freed := false
				free := func() { // the delivery is over: its slot is free again
					if !freed {
						freed = true
						<-slots
						o.poke()
					}
				}
				defer free()
				o.attempt(actx, ctx, it, func() { writing <- struct{}{}; free() })
				if freed {
					<-writing
					o.poke() // the entry may be due again: the schedule's next wait changed
				}
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
			o.pruneFinished(time.Now().Add(-o.cfg.Retention))
			o.ExpireHeld(time.Now())
		}
	}
}

// attempt loads the message from disk, delivers it once, records the
// outcome, and schedules it again if it is to be retried. actx is the
// attempt's own context (an operator's cancel ends it), ctx the outbox's.
// It calls delivered once the delivery is over, before the outcome is
// written (with the next batch of outcomes), unless the peer was down;
// the entry is neither scheduled again nor taken off the running attempts
// before it is on disk.
func (o *Outbox[M, R]) attempt(actx, ctx context.Context, it *schedule.Item, delivered func()) {
	retry, class := true, schedule.None
	var e *Entry[M, R]
	defer func() {
		next := int64(-1) // not again
		if retry && e != nil {
			next = e.NextAttemptAt
		}
		o.end(it, class, next)
	}()
	e, err := o.Get(it.ID)
	switch {
	case errors.Is(err, ErrUnknown) || err == nil && (e.State != StateQueued || e.Stream != ""):
		retry = false // dropped or finished meanwhile, or held by a stream
		return
	case err != nil: // storage trouble: try again later, do not forget it
		o.log.Error("outbox read failed", "messageId", it.ID, "err", err)
		e = &Entry[M, R]{NextAttemptAt: time.Now().Add(time.Second).UnixMilli()}
		return
	}
	now := time.Now()
	if dl := o.deadline(e); dl != 0 && now.UnixMilli() >= dl {
		retry = !o.finish(e, StateDead, nil, o.expiredError(e), true)
		return
	}
	rep := o.cfg.Deliver(actx, e)
	if rep.Peer != schedule.Down {
		// The delivery's slot is free for the next while the outcome
		// waits for its write. Not after a down peer: its gate closes
		// only once the outcome is written (the deferred Record), and
		// until then each freed slot would take another of its backlog,
		// an attempt and a rewrite each, hundreds within one write.
		delivered()
	}
	o.mu.Lock()
	cancelled := it.Cancelled
	o.mu.Unlock()
	if ctx.Err() != nil || cancelled {
		return // shutting down: the entry stays queued on disk; cancelled: the canceller records it
	}
	e.Attempts++
	class = rep.Peer
	if class != schedule.Down {
		e.PeerAttempts++
	}
	switch {
	case rep.State == StateDelivered || rep.State == StateFailed:
		retry = !o.finish(e, rep.State, rep.Result, rep.Error, true)
	case class != schedule.Down && o.cfg.MaxAttempts > 0 && e.PeerAttempts >= o.cfg.MaxAttempts:
		last := rep.Error
		if last == nil {
			last = gateway.NewError(gateway.CodeTimeout, "no answer")
		}
		retry = !o.finish(e, StateDead, rep.Result, gateway.NewError(last.Code, fmt.Sprintf(
			"not delivered after %d attempts (federation.durable.maxAttempts); last error: %s", e.PeerAttempts, last.Message)), true)
	default:
		e.LastError = rep.Error
		o.mu.Lock()
		delay := o.sched.RetryDelay(it, class)
		o.mu.Unlock()
		e.NextAttemptAt = now.Add(delay).UnixMilli()
		if dl := o.deadline(e); dl != 0 && e.NextAttemptAt >= dl {
			e.NextAttemptAt = dl
		}
		if err := o.save(e, true); err != nil {
			o.log.Error("outbox save failed", "messageId", e.MessageID, "err", err)
		}
	}
}

// begin registers the attempt of it, which the schedule has just marked
// running, and returns the attempt's context. o.mu is held.
func (o *Outbox[M, R]) begin(ctx context.Context, it *schedule.Item) context.Context {
	actx, stop := context.WithCancel(ctx)
	it.Stop, it.Done = stop, make(chan struct{})
	o.running[it.ID] = it
	return actx
}

// end is the attempt of it's bookkeeping once its outcome (class) is on
// disk: it is no longer running, and it is scheduled again at next (Unix
// ms; parked if its peer was down), or, if next is negative, taken off the
// schedule.
//
// An operator's Retry may have queued the message again between the
// outcome's write and end, and a newer attempt of it may already run:
// the message's place in the schedule and in the running attempts is then
// that attempt's, and end leaves them alone.
func (o *Outbox[M, R]) end(it *schedule.Item, class schedule.Outcome, next int64) {
	it.Stop()
	o.mu.Lock()
	defer o.mu.Unlock()
	close(it.Done)
	if o.sched.Record(it, class, time.Now()) {
		o.log.Debug("durable messages held for a peer that does not answer", "peer", it.Key)
	}
	if o.running[it.ID] != it {
		return
	}
	delete(o.running, it.ID)
	switch {
	case next < 0 || it.Cancelled:
		o.sched.Remove(it)
	case class == schedule.Down:
		o.sched.Park(it) // until the peer answers a probe or a heartbeat
	default:
		it.Next = next
		o.sched.Add(it, time.Now())
	}
}

// expiredError says why e is dead: its ttl or MaxAge passed.
func (o *Outbox[M, R]) expiredError(e *Entry[M, R]) *gateway.Error {
	if e.TTLMs > 0 {
		return gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("not delivered within ttlMs %d after %d attempts", e.TTLMs, e.Attempts))
	}
	return gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("not delivered within federation.durable.maxAgeMs %d after %d attempts",
		o.cfg.MaxAge.Milliseconds(), e.Attempts))
}

// finish records a final state, with the result r and why it failed, if
// it did, with the next batch of outcomes when gathered; it reports
// whether that reached the disk (if not, the entry stays scheduled and is
// tried again).
func (o *Outbox[M, R]) finish(e *Entry[M, R], state string, r *R, why *gateway.Error, gathered bool) bool {
	e.State, e.Result, e.NextAttemptAt, e.FinishedAt = state, r, 0, time.Now().UnixMilli()
	if why != nil {
		e.LastError = why
	}
	if err := o.save(e, gathered); err != nil {
		o.log.Error("outbox save failed", "messageId", e.MessageID, "err", err)
		e.State = StateQueued
		e.NextAttemptAt = time.Now().Add(time.Second).UnixMilli() // not a tight loop on a failing disk
		return false
	}
	level := slog.LevelInfo
	if state == StateDelivered {
		level = slog.LevelDebug
	}
	o.log.Log(context.Background(), level, "durable message "+state, "messageId", e.MessageID, "peer", e.PeerID, "attempts", e.Attempts)
	return true
}

// pruneFinished deletes delivered entries finished before cutoff, so
// the outbox does not grow without bound. Failed and dead entries stay
// until an operator retries or drops them.
func (o *Outbox[M, R]) pruneFinished(cutoff time.Time) {
	o.st.DeleteIf(store.Outbox, func(_ string, v []byte) bool {
		e, err := decodeHeader[M, R](v)
		return err == nil && e.State == StateDelivered && e.FinishedAt < cutoff.UnixMilli()
	})
}

// PeerUp makes the queued messages for peer due now: it answered (a
// heartbeat reached it, say), so there is no reason to wait out their
// backoff. Durable delegations waiting for a capable peer are due again
// too.
func (o *Outbox[M, R]) PeerUp(peer string) {
	o.mu.Lock()
	found := o.sched.PeerUp(peer)
	o.mu.Unlock()
	if found {
		o.poke()
	}
}

// ExpireHeld marks dead the queued entries held by a stream whose ttl (or
// MaxAge) passed, plus their timeout (else HeldGrace) and a second, before now with no
// outcome: the stream has dropped the message, and nobody will answer it.
// Run checks every minute.
func (o *Outbox[M, R]) ExpireHeld(now time.Time) {
	var expired []string
	_ = o.st.ForEach(store.Outbox, func(id string, v []byte) error {
		e, err := decodeHeader[M, R](v)
		if err != nil || e.State != StateQueued || e.Stream == "" {
			return nil
		}
		grace := o.cfg.HeldGrace
		if e.TimeoutMs > 0 {
			grace = time.Duration(e.TimeoutMs) * time.Millisecond
		}
		grace += time.Second
		if dl := o.deadline(e); dl != 0 && now.After(time.UnixMilli(dl).Add(grace)) {
			expired = append(expired, id)
		}
		return nil
	})
	for _, id := range expired {
		if e, err := o.Get(id); err == nil && e.State == StateQueued && e.Stream != "" {
			o.finish(e, StateDead, nil, o.expiredError(e), false)
		}
	}
}
