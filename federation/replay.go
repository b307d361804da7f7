package federation

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

// replayGuard refuses messages whose timestamp is outside the window, and
// message ids already received from the same sender.
//
// What it remembers is bounded in bytes (and so in count), per sender and
// in total, and forgotten by time on a ticker (run) as well as on access.
// Forgetting is sound: a sender's remembered ids are exactly those stamped
// after its floor, and a message stamped at or before the floor is refused.
// An id is forgotten in one of three ways: its time passes (it would be
// stale anyway); its sender goes over its own budget (the floor rises to
// the id's stamp, so only that sender's older messages are refused); or the
// gateway restarts (the floor is what was persisted, below).
//
// Authenticated senders (a gateway.auth.peers credential) and
// unauthenticated ones (requireAuth: false) are kept apart: the first
// share a budget divided among the configured credentials; the second a
// pool that, when full, refuses new messages (OVERLOADED) rather than
// forget anything, so throw-away sender names cannot make a configured
// peer's captured messages acceptable again.
//
// Across restarts, the floors survive in the store's replay bucket. A
// clean shutdown (save) writes each sender's newest accepted stamp; while
// running, before accepting a message stamped after what is reserved on
// disk, the guard reserves further ahead (replayreserve.go), so that after a
// crash every message accepted before it is at or below a persisted floor.
type replayGuard struct {
	window     time.Duration
	st         *store.Store // nil: nothing persisted (tests)
	limits     replayLimits
	configured func() int // gateway.auth.peers entries, among which the authenticated budget is divided

	resMu sync.Mutex // serialises reservation writes

	mu          sync.Mutex // guards the fields below
	auth        map[string]*seenSet
	unauth      map[string]*seenSet
	unauthBytes int                    // cost of the unauthenticated pool, sets included
	unauthFloor int64                  // floor of every unauthenticated sender (a crash's reservation)
	reserved    map[string]reservation // reservation key -> what is reserved on disk
	writes      int                    // reservations written, for tests
	closed      bool                   // saved: accepts nothing more
}

// replayLimits bound the guard's memory. An id costs its length plus
// seenOverhead.
type replayLimits struct {
	authSender    int // bytes per authenticated sender, at most
	authTotal     int // bytes divided among the configured credentials
	authMinSender int // bytes per authenticated sender, at least
	unauthSender  int // bytes per unauthenticated sender
	unauthTotal   int // bytes of the whole unauthenticated pool
	unauthSenders int // unauthenticated senders at once
}

var defaultReplayLimits = replayLimits{
	authSender:    16 << 20,
	authTotal:     64 << 20,
	authMinSender: 1 << 20,
	unauthSender:  1 << 20,
	unauthTotal:   32 << 20,
	unauthSenders: 10_000,
}

const (
	seenOverhead = 96  // bytes per remembered id besides the id: map entry, order slot
	setOverhead  = 256 // bytes per sender remembered
)

// seenSet is one sender's remembered ids; order[head:] holds them oldest
// first. Forgetting advances head, and the slice is compacted only once
// half of it is forgotten, so that each id costs O(1).
type seenSet struct {
	seen  map[string]int64 // id -> stamp<<1 | durable
	order []seenRef
	head  int
	bytes int   // cost of the ids in seen
	floor int64 // Unix ms: messages stamped at or before it are refused
	maxTS int64 // newest stamp accepted
}

type seenRef struct {
	id    string
	until int64 // Unix ms after which the id can no longer come fresh
	ts    int64 // the message's stamp
}

func newReplayGuard(window time.Duration, st *store.Store, configured func() int) (*replayGuard, error) {
	g := &replayGuard{window: window, st: st, limits: defaultReplayLimits, configured: configured,
		auth: map[string]*seenSet{}, unauth: map[string]*seenSet{}, reserved: map[string]reservation{}}
	if st == nil {
		return g, nil
	}
	return g, g.load(time.Now())
}

// Keys of the replay bucket: an authenticated sender's floor, an
// unauthenticated sender's floor, and the unauthenticated pool's.
const (
	authKeyPrefix   = "a\x00"
	unauthKeyPrefix = "u\x00"
	unauthPoolKey   = "u"
)

func reservationKey(sender string, authenticated bool) string {
	if authenticated {
		return authKeyPrefix + sender
	}
	return unauthPoolKey
}

// load reads the floors a previous run left, dropping those too old to
// matter.
func (g *replayGuard) load(now time.Time) error {
	oldest := now.Add(-g.window).UnixMilli()
	_, err := g.st.DeleteIf(store.Replay, func(key string, v []byte) bool {
		ts, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || ts < oldest {
			return true
		}
		switch {
		case key == unauthPoolKey:
			g.unauthFloor = ts
			g.reserved[key] = reservation{ts: ts}
		case strings.HasPrefix(key, authKeyPrefix):
			g.auth[key[len(authKeyPrefix):]] = &seenSet{seen: map[string]int64{}, floor: ts, maxTS: ts}
			g.reserved[key] = reservation{ts: ts}
		case strings.HasPrefix(key, unauthKeyPrefix) && len(g.unauth) < g.limits.unauthSenders:
			g.unauth[key[len(unauthKeyPrefix):]] = &seenSet{seen: map[string]int64{}, floor: ts, maxTS: ts}
			g.unauthBytes += setOverhead
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("load replay floors: %w", err)
	}
	return nil
}

// check validates msg's timestamp and that its id is new from that
// sender. Every id is remembered with whether it came durable: a durable
// message may arrive again durable (the receiver's once-only store answers
// the redelivery without running the agent), but any other repeat, such
// as a delivered plain message resent as durable, is REPLAYED.
func (g *replayGuard) check(msg *Message, durable, authenticated bool) error {
	now := time.Now()
	skew := now.Sub(time.UnixMilli(msg.Timestamp))
	if skew > g.window || skew < -g.window {
		return fmt.Errorf("%w: message %q has timestamp %s, %v from this gateway's clock (window ±%v); check the sender's clock",
			ErrStale, msg.MessageID, time.UnixMilli(msg.Timestamp).UTC().Format(time.RFC3339), skew.Round(time.Second), g.window)
	}
	for {
		g.mu.Lock()
		reserve, err := g.checkLocked(now, msg, durable, authenticated)
		g.mu.Unlock()
		if reserve.ts == 0 || err != nil {
			return err
		}
		if err := g.reserve(reservationKey(msg.FromServer, authenticated), reserve); err != nil {
			return err
		}
	}
}

// checkLocked does check's work under mu. When the message's stamp is
// beyond what is reserved on disk, it returns what to reserve first and
// records nothing.
func (g *replayGuard) checkLocked(now time.Time, msg *Message, durable, authenticated bool) (reservation, error) {
	if g.closed {
		return reservation{}, fmt.Errorf("%w: this gateway is stopping; send again later", ErrShuttingDown)
	}
	sender, ts := msg.FromServer, msg.Timestamp
	pool := g.unauth
	if authenticated {
		pool = g.auth
	}
	set := pool[sender]
	if set != nil {
		g.pruneLocked(authenticated, sender, set, now)
		set = pool[sender]
	}
	if set == nil {
		if !authenticated && (len(g.unauth) >= g.limits.unauthSenders || g.unauthBytes+setOverhead > g.limits.unauthTotal) {
			return reservation{}, g.poolFull(sender)
		}
		set = &seenSet{seen: map[string]int64{}}
		if !authenticated {
			set.floor = g.unauthFloor
			g.unauthBytes += setOverhead
		}
		pool[sender] = set
	}
	if ts <= set.floor {
		e := *ErrReplayed
		e.Message = fmt.Sprintf("%s: message %q from %q is stamped %s, not after %s, the newest stamp this gateway may no longer remember from that sender (it restarted, or the sender went over its replay memory); if it is not a replay, send it again with a new timestamp",
			ErrReplayed.Message, msg.MessageID, sender, stamp(ts), stamp(set.floor))
		e.Retryable = true
		return reservation{}, &e
	}
	if seen, dup := set.seen[msg.MessageID]; dup {
		if seen&1 == 1 && durable {
			return reservation{}, nil
		}
		return reservation{}, fmt.Errorf("%w: message %q from %q was already received", ErrReplayed, msg.MessageID, sender)
	}
	if r := g.reserved[reservationKey(sender, authenticated)]; g.st != nil && ts > r.ts {
		return r.next(ts, now.UnixMilli()), nil
	}
	cost := len(msg.MessageID) + seenOverhead
	budget := g.senderBudget(authenticated)
	for set.bytes+cost > budget && set.head < len(set.order) {
		g.forgetOldestLocked(set, authenticated)
	}
	if !authenticated && g.unauthBytes+cost > g.limits.unauthTotal {
		return reservation{}, g.poolFull(sender)
	}
	// A message stamped up to a window ahead stays fresh until a window
	// after its stamp: remember its id that long (now + 2 windows covers it,
	// and keeps order sorted by expiry).
	v := ts << 1
	if durable {
		v |= 1
	}
	set.seen[msg.MessageID] = v
	set.order = append(set.order, seenRef{id: msg.MessageID, until: now.Add(2 * g.window).UnixMilli(), ts: ts})
	set.bytes += cost
	set.maxTS = max(set.maxTS, ts)
	if !authenticated {
		g.unauthBytes += cost
	}
	return reservation{}, nil
}

// stamp formats a message timestamp (Unix ms) for an error.
func stamp(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

func (g *replayGuard) poolFull(sender string) error {
	e := *ErrOverloaded
	e.Message = fmt.Sprintf("%s: the replay memory for unauthenticated senders is full; %q must wait, or connect with a token listed in gateway.auth.peers",
		ErrOverloaded.Message, sender)
	e.Retryable, e.RetryAfterMs = true, int(min(g.window, 10*time.Second).Milliseconds())
	return &e
}

// senderBudget is how many bytes of ids one sender of the kind may keep.
func (g *replayGuard) senderBudget(authenticated bool) int {
	if !authenticated {
		return g.limits.unauthSender
	}
	n := 1
	if g.configured != nil {
		n = max(n, g.configured())
	}
	return min(g.limits.authSender, max(g.limits.authTotal/n, g.limits.authMinSender))
}

// reserve persists a floor of at least r.ts under key, so that a crash
// forgets nothing accepted up to r.ts.
func (g *replayGuard) reserve(key string, r reservation) error {
	g.resMu.Lock()
	defer g.resMu.Unlock()
	g.mu.Lock()
	done := g.reserved[key].ts >= r.ts
	g.mu.Unlock()
	if done {
		return nil
	}
	if err := g.st.PutBatch(store.Replay, store.KV{Key: key, Value: strconv.AppendInt(nil, r.ts, 10)}); err != nil {
		return fmt.Errorf("record replay floor: %w", err)
	}
	g.mu.Lock()
	g.reserved[key] = r
	g.writes++
	g.mu.Unlock()
	return nil
}

// forgetOldestLocked forgets set's oldest id, raising its floor to the
// id's stamp.
func (g *replayGuard) forgetOldestLocked(set *seenSet, authenticated bool) {
	r := set.order[set.head]
	set.floor = max(set.floor, r.ts)
	g.dropOldestLocked(set, authenticated)
}

func (g *replayGuard) dropOldestLocked(set *seenSet, authenticated bool) {
	r := set.order[set.head]
	delete(set.seen, r.id)
	set.order[set.head] = seenRef{} // let the string go
	set.head++
	cost := len(r.id) + seenOverhead
	set.bytes -= cost
	if !authenticated {
		g.unauthBytes -= cost
	}
}

// pruneLocked forgets set's ids whose time has passed, and the set itself
// once it holds nothing that still matters.
func (g *replayGuard) pruneLocked(authenticated bool, sender string, set *seenSet, now time.Time) {
	ms := now.UnixMilli()
	for set.head < len(set.order) && set.order[set.head].until < ms {
		g.dropOldestLocked(set, authenticated) // stale by now: no floor needed
	}
	if set.head > 1024 && 2*set.head > len(set.order) || set.head == len(set.order) && set.head > 0 {
		n := copy(set.order, set.order[set.head:])
		clear(set.order[n:])
		set.order, set.head = set.order[:n], 0
	}
	if len(set.order) == 0 && set.floor < now.Add(-g.window).UnixMilli() {
		if authenticated {
			delete(g.auth, sender)
		} else {
			delete(g.unauth, sender)
			g.unauthBytes -= setOverhead
		}
	}
}

// prune forgets everything whose time has passed, from every sender.
func (g *replayGuard) prune(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for sender, set := range g.auth {
		g.pruneLocked(true, sender, set, now)
	}
	for sender, set := range g.unauth {
		g.pruneLocked(false, sender, set, now)
	}
}

// run prunes on a ticker until ctx ends, so that memory is given back
// whether or not the senders send again.
func (g *replayGuard) run(ctx context.Context) {
	t := time.NewTicker(min(max(g.window/20, 50*time.Millisecond), 5*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			g.prune(now)
		}
	}
}

// save persists every sender's exact floor, its newest accepted stamp, and
// stops accepting: called at shutdown, after the last relay.
func (g *replayGuard) save() error {
	g.mu.Lock()
	g.closed = true
	var kvs []store.KV
	for prefix, pool := range map[string]map[string]*seenSet{authKeyPrefix: g.auth, unauthKeyPrefix: g.unauth} {
		for sender, set := range pool {
			if f := max(set.floor, set.maxTS); f > 0 {
				kvs = append(kvs, store.KV{Key: prefix + sender, Value: strconv.AppendInt(nil, f, 10)})
			}
		}
	}
	g.mu.Unlock()
	if g.st == nil {
		return nil
	}
	// The exact floors cover every unauthenticated sender: the pool's
	// reservation is no longer needed.
	kvs = append(kvs, store.KV{Key: unauthPoolKey})
	if err := g.st.PutBatch(store.Replay, kvs...); err != nil {
		return fmt.Errorf("save replay floors: %w", err)
	}
	return nil
}

// replayStats is what the guard holds, for tests and health.
type replayStats struct {
	AuthSenders, UnauthSenders, AuthIDs, UnauthIDs, AuthBytes, UnauthBytes int
}

func (g *replayGuard) stats() replayStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := replayStats{AuthSenders: len(g.auth), UnauthSenders: len(g.unauth), UnauthBytes: g.unauthBytes}
	for _, set := range g.auth {
		s.AuthIDs += len(set.seen)
		s.AuthBytes += set.bytes + setOverhead
	}
	for _, set := range g.unauth {
		s.UnauthIDs += len(set.seen)
	}
	return s
}
