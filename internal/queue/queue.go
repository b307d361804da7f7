// Package queue provides a counting semaphore whose waiters are admitted by
// priority: a higher rank first, first come first served within a rank.
// Waiters age: each Age spent waiting raises a waiter's rank by one, so a
// steady stream of urgent work cannot starve low priority work forever.
// The wait list is bounded: beyond MaxWaiting, Acquire fails at once with
// ErrFull instead of letting memory grow. A Sem is safe for concurrent use.
package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrFull is returned by Acquire when MaxWaiting waiters already wait.
var ErrFull = errors.New("queue: full")

// Sem admits at most Limit holders at a time.
type Sem struct {
	limit, maxWaiting int
	age               time.Duration

	mu      sync.Mutex // guards busy, waiting, ranks and seq
	busy    int
	waiting int               // waiters, in all ranks
	ranks   map[int][]*waiter // each rank's waiters, oldest first
	seq     uint64
}

type waiter struct {
	rank  int
	since time.Time
	seq   uint64
	ready chan struct{} // closed when the waiter is granted a slot
}

// New returns a Sem with limit holders, at most maxWaiting waiters, and
// one rank of ageing per age waited (no ageing when age is 0).
func New(limit, maxWaiting int, age time.Duration) *Sem {
	return &Sem{limit: max(limit, 1), maxWaiting: maxWaiting, age: age}
}

// Acquire waits for a slot, admitting higher ranks first. It returns a
// release func that must be called exactly once, or ErrFull, or ctx's
// error if ctx ends first.
func (s *Sem) Acquire(ctx context.Context, rank int) (release func(), err error) {
	if release := s.TryAcquire(); release != nil {
		return release, nil
	}
	s.mu.Lock()
	if s.busy < s.limit && s.waiting == 0 { // freed meanwhile
		s.busy++
		s.mu.Unlock()
		return s.releaseOnce(), nil
	}
	if s.waiting >= s.maxWaiting {
		s.mu.Unlock()
		return nil, ErrFull
	}
	s.seq++
	w := &waiter{rank: rank, since: time.Now(), seq: s.seq, ready: make(chan struct{})}
	if s.ranks == nil {
		s.ranks = make(map[int][]*waiter)
	}
	s.ranks[rank] = append(s.ranks[rank], w)
	s.waiting++
	s.mu.Unlock()

	select {
	case <-w.ready:
		return s.releaseOnce(), nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: hand the slot on
			s.releaseLocked()
		default:
			s.removeLocked(w)
		}
		return nil, ctx.Err()
	}
}

// TryAcquire takes a slot if one is free and nobody waits, without
// blocking; otherwise it returns nil.
func (s *Sem) TryAcquire() (release func()) {
	s.mu.Lock()
	if s.busy < s.limit && s.waiting == 0 {
		s.busy++
		s.mu.Unlock()
		return s.releaseOnce()
	}
	s.mu.Unlock()
	return nil
}

func (s *Sem) releaseOnce() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.releaseLocked()
			s.mu.Unlock()
		})
	}
}

// releaseLocked passes the slot to the best waiter, or frees it. Within
// a rank the oldest waiter is the best (it has aged most and came first),
// so only each rank's oldest is compared: O(ranks), not O(waiters).
func (s *Sem) releaseLocked() {
	if s.waiting == 0 {
		s.busy--
		return
	}
	now := time.Now()
	var best *waiter
	for _, q := range s.ranks {
		if len(q) > 0 && (best == nil || s.before(q[0], best, now)) {
			best = q[0]
		}
	}
	q := s.ranks[best.rank]
	q[0] = nil
	s.ranks[best.rank] = q[1:]
	s.waiting--
	close(best.ready)
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

func (s *Sem) removeLocked(w *waiter) {
	q := s.ranks[w.rank]
	if i := slices.Index(q, w); i >= 0 {
		s.ranks[w.rank] = slices.Delete(q, i, i+1)
		s.waiting--
	}
}

// Stats reports the holders and waiters now.
func (s *Sem) Stats() (busy, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy, s.waiting
}
