// Package queue provides a counting semaphore whose waiters are admitted by
// priority: a higher rank first, first come first served within a rank.
// Waiters age: each Age spent waiting raises a waiter's rank by one, so a
// steady stream of urgent work cannot starve low priority work forever.
// The wait list is bounded: beyond MaxWaiting, Acquire fails at once with
// ErrFull instead of letting memory grow.
//
// Waiters may name a sender, and senders share the wait list fairly:
// within a rank, senders take turns (each sender's own waiters in order),
// and when the list is full a sender with fewer waiters than another takes
// the place of that one's newest, lowest-ranked waiter, which fails with
// ErrFull. So one sender can fill an idle list, but not keep others out of
// it, nor make their work wait behind all of its own. A Sem is safe for
// concurrent use.
package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrFull is returned by Acquire when MaxWaiting waiters already wait, or
// when a waiter's place was given to another sender's (see the package
// doc).
var ErrFull = errors.New("queue: full")

// Sem admits at most Limit holders at a time.
type Sem struct {
	limit, maxWaiting int
	age               time.Duration

	mu      sync.Mutex // guards the fields below
	busy    int
	waiting int                // waiters, in all ranks
	ranks   map[int]*rankQueue // the ranks that have waiters
	senders map[string]int     // waiters per sender, for senders that have any
	seq     uint64
}

// rankQueue is one rank's waiters, served a sender at a time in turn.
type rankQueue struct {
	bySender map[string][]*waiter // each sender's waiters, oldest first
	turn     []string             // the senders with waiters here, in serving order
	next     int                  // index in turn of the sender served next
}

type waiter struct {
	sender string
	rank   int
	since  time.Time
	seq    uint64
	ready  chan struct{} // closed when the waiter is granted a slot, or evicted
	full   bool          // set before ready is closed: evicted, not granted
}

// New returns a Sem with limit holders, at most maxWaiting waiters, and
// one rank of ageing per age waited (no ageing when age is 0).
func New(limit, maxWaiting int, age time.Duration) *Sem {
	return &Sem{limit: max(limit, 1), maxWaiting: maxWaiting, age: age}
}

// Acquire is AcquireFrom for an unnamed sender: all such callers are one
// sender.
func (s *Sem) Acquire(ctx context.Context, rank int) error {
	return s.AcquireFrom(ctx, "", rank)
}

// AcquireFrom waits for a slot on behalf of sender, admitting higher ranks
// first and senders in turn within a rank. It returns nil once the caller
// holds a slot, which it must give back with Release; or ErrFull, or ctx's
// error if ctx ends first.
func (s *Sem) AcquireFrom(ctx context.Context, sender string, rank int) error {
	if s.TryAcquire() {
		return nil
	}
	s.mu.Lock()
	if s.busy < s.limit && s.waiting == 0 { // freed meanwhile
		s.busy++
		s.mu.Unlock()
		return nil
	}
	if s.waiting >= s.maxWaiting && !s.evictForLocked(sender) {
		s.mu.Unlock()
		return ErrFull
	}
	s.seq++
	w := &waiter{sender: sender, rank: rank, since: time.Now(), seq: s.seq, ready: make(chan struct{})}
	s.pushLocked(w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		if w.full {
			return ErrFull
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: hand the slot on
			if !w.full {
				s.releaseLocked()
			}
		default:
			s.removeLocked(w)
		}
		return ctx.Err()
	}
}

// TryAcquire takes a slot if one is free and nobody waits, without
// blocking, and reports whether it did. A slot taken must be given back
// with Release.
func (s *Sem) TryAcquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy < s.limit && s.waiting == 0 {
		s.busy++
		return true
	}
	return false
}

// Release gives back a slot that Acquire, AcquireFrom or TryAcquire took,
// once per slot taken. It panics when no slot at all is held; a holder
// that releases twice while others hold slots is not detected (it frees
// another's slot), so each caller pairs one Release with one acquisition.
func (s *Sem) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy == 0 {
		panic("queue: Release without a slot held")
	}
	s.releaseLocked()
}

// releaseLocked passes the slot to the best waiter, or frees it. The rank
// is chosen by its oldest waiter (it has aged most and came first); within
// it, the sender whose turn it is gets the slot for its oldest waiter.
func (s *Sem) releaseLocked() {
	if s.waiting == 0 {
		s.busy--
		return
	}
	now := time.Now()
	var best *rankQueue
	var bestOldest *waiter
	for _, q := range s.ranks {
		if o := q.oldest(); best == nil || s.before(o, bestOldest, now) {
			best, bestOldest = q, o
		}
	}
	k := best.next
	w := best.bySender[best.turn[k]][0]
	best.next = k + 1 // the next sender's turn; removeLocked adjusts it
	s.removeLocked(w)
	if best.next >= len(best.turn) {
		best.next = 0
	}
	close(w.ready)
}

// oldest returns the rank's longest waiting waiter: one of the senders'
// first.
func (q *rankQueue) oldest() *waiter {
	var o *waiter
	for _, sender := range q.turn {
		if w := q.bySender[sender][0]; o == nil || w.seq < o.seq {
			o = w
		}
	}
	return o
}

// pushLocked adds w to its rank, its sender last in turn if new there.
func (s *Sem) pushLocked(w *waiter) {
	if s.ranks == nil {
		s.ranks = make(map[int]*rankQueue)
		s.senders = make(map[string]int)
	}
	q := s.ranks[w.rank]
	if q == nil {
		q = &rankQueue{bySender: make(map[string][]*waiter)}
		s.ranks[w.rank] = q
	}
	if len(q.bySender[w.sender]) == 0 {
		q.turn = append(q.turn, w.sender)
	}
	q.bySender[w.sender] = append(q.bySender[w.sender], w)
	s.senders[w.sender]++
	s.waiting++
}

// evictForLocked makes room for one more waiter of sender in a full list:
// the sender with the most waiters, if it has at least two more than
// sender, loses its newest waiter of its lowest rank, which fails with
// ErrFull. It reports whether there is room now.
func (s *Sem) evictForLocked(sender string) bool {
	mine := s.senders[sender]
	var victim string
	most := 0
	for k, n := range s.senders {
		if n > most {
			victim, most = k, n
		}
	}
	if most < mine+2 {
		return false
	}
	var w *waiter
	for r, q := range s.ranks {
		if ws := q.bySender[victim]; len(ws) > 0 && (w == nil || r < w.rank) {
			w = ws[len(ws)-1]
		}
	}
	s.removeLocked(w)
	w.full = true
	close(w.ready)
	return true
}

// before reports whether a should be admitted before b.
func (s *Sem) before(a, b *waiter, now time.Time) bool {
	ra, rb := s.effective(a, now), s.effective(b, now)
	if ra != rb {
		return ra > rb
	}
	return a.seq < b.seq
}

func (s *Sem) effective(w *waiter, now time.Time) int {
	if s.age <= 0 {
		return w.rank
	}
	return w.rank + int(now.Sub(w.since)/s.age)
}

// removeLocked takes w out of the wait list, if it is there.
func (s *Sem) removeLocked(w *waiter) {
	q := s.ranks[w.rank]
	if q == nil {
		return
	}
	ws := q.bySender[w.sender]
	i := slices.Index(ws, w)
	if i < 0 {
		return
	}
	ws = slices.Delete(ws, i, i+1)
	s.waiting--
	if s.senders[w.sender]--; s.senders[w.sender] == 0 {
		delete(s.senders, w.sender)
	}
	if len(ws) > 0 {
		q.bySender[w.sender] = ws
		return
	}
	delete(q.bySender, w.sender)
	j := slices.Index(q.turn, w.sender)
	q.turn = slices.Delete(q.turn, j, j+1)
	if j < q.next {
		q.next--
	}
	if q.next >= len(q.turn) {
		q.next = 0
	}
	if len(q.turn) == 0 {
		delete(s.ranks, w.rank)
	}
}

// Stats reports the holders and waiters now.
func (s *Sem) Stats() (busy, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy, s.waiting
}
