package federation

import (
	"container/heap"
	"context"
	"math"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// schedule orders the queued durable messages: those waiting out a
// backoff by due time, those due by priority (urgent first) then age. Every
// operation is O(log n), so a million queued messages cost no scans, and it
// holds only a small item per message: the message itself stays on disk
// until its attempt. It is not safe for concurrent use: the outbox holds
// its mutex.
type schedule struct {
	waiting waitHeap
	ready   readyHeap
	where   map[string]int                   // messageId -> slotWaiting, slotReady or slotRunning
	backoff map[string]map[string]*schedItem // peer -> its items waiting out a backoff or parked
}

// schedItem is what the schedule keeps of one queued message.
type schedItem struct {
	id        string
	peer      string // the peer, or for a delegation delegateGate and its capabilities
	rank      int    // priority rank
	createdAt int64  // Unix ms
	next      int64  // Unix ms of the next attempt; 0: now
	expires   int64  // Unix ms when it is dead if not delivered; 0: never

	// Kept while the message is queued, guarded by the outbox's mutex.
	bo        *backoff.ExponentialBackOff // its retry schedule, once it has failed
	probe     bool                        // the attempt probes its down peer
	stop      context.CancelFunc          // ends the attempt in flight
	done      chan struct{}               // closed when the attempt in flight ends
	cancelled bool                        // an operator cancelled it during an attempt
}

// delegateGate prefixes the peer key of durable delegations, which are not
// tied to one peer: those needing the same capabilities wait together.
const delegateGate = "delegate\x00"

func itemOf(e *OutboxEntry) *schedItem {
	peer := e.PeerID
	if e.Kind == "delegate" {
		peer = delegateGate + strings.Join(e.RequiredCapabilities, "\x00")
	}
	return &schedItem{id: e.MessageID, peer: peer, rank: e.Message.Priority.Rank(), createdAt: e.CreatedAt, next: e.NextAttemptAt, expires: e.ExpiresAt}
}

const (
	slotWaiting = iota + 1
	slotReady
	slotRunning
)

func newSchedule() schedule {
	return schedule{where: map[string]int{}, backoff: map[string]map[string]*schedItem{}}
}

// add schedules e: ready if due at now, else waiting.
func (s *schedule) add(e *schedItem, now time.Time) {
	if e.next <= now.UnixMilli() {
		s.where[e.id] = slotReady
		heap.Push(&s.ready, e)
		return
	}
	s.where[e.id] = slotWaiting
	heap.Push(&s.waiting, waitItem{e: e, at: e.next})
	if s.backoff[e.peer] == nil {
		s.backoff[e.peer] = map[string]*schedItem{}
	}
	s.backoff[e.peer][e.id] = e
}

// park holds a message of a down peer without attempting it: it waits
// with the peer's backoff items until wakePeer, or, if it can expire, until
// then (its attempt then marks it dead).
func (s *schedule) park(e *schedItem) {
	s.where[e.id] = slotWaiting
	if s.backoff[e.peer] == nil {
		s.backoff[e.peer] = map[string]*schedItem{}
	}
	s.backoff[e.peer][e.id] = e
	e.next = math.MaxInt64 // leaves any waiting heap item stale
	if e.expires != 0 {
		e.next = e.expires
		heap.Push(&s.waiting, waitItem{e: e, at: e.next})
	}
}

// unparkOne makes one of peer's waiting messages due now, to probe the
// peer, and returns it (nil if there is none): prefer if it still waits,
// else any.
func (s *schedule) unparkOne(peer string, prefer *schedItem) *schedItem {
	b := s.backoff[peer]
	e := prefer
	if e == nil || b[e.id] != e {
		e = nil
		for _, x := range b {
			e = x
			break
		}
	}
	if e == nil {
		return nil
	}
	delete(b, e.id)
	e.next = 0
	s.where[e.id] = slotReady
	heap.Push(&s.ready, e)
	return e
}

// remove forgets a message whose attempt finished it. If it was queued
// again meanwhile (an operator's retry), it is not running any more and
// stays scheduled.
func (s *schedule) remove(e *schedItem) {
	if s.where[e.id] != slotRunning {
		return
	}
	delete(s.where, e.id)
	if b := s.backoff[e.peer]; b != nil {
		delete(b, e.id)
	}
}

// next returns the most urgent due entry and marks it running, or nil.
// Heap items left behind by wakePeer or remove are skipped.
func (s *schedule) next(now time.Time) *schedItem {
	for s.waiting.Len() > 0 && s.waiting[0].at <= now.UnixMilli() {
		it := heap.Pop(&s.waiting).(waitItem)
		if s.where[it.e.id] == slotWaiting && it.e.next == it.at {
			delete(s.backoff[it.e.peer], it.e.id)
			s.where[it.e.id] = slotReady
			heap.Push(&s.ready, it.e)
		}
	}
	for s.ready.Len() > 0 {
		e := heap.Pop(&s.ready).(*schedItem)
		if s.where[e.id] == slotReady {
			s.where[e.id] = slotRunning
			return e
		}
	}
	return nil
}

// wait is how long until the next waiting entry is due (at most an hour).
func (s *schedule) wait(now time.Time) time.Duration {
	if s.waiting.Len() == 0 {
		return time.Hour
	}
	return max(time.UnixMilli(s.waiting[0].at).Sub(now), 0)
}

// wakePeer makes peer's waiting entries due now; it reports whether there
// were any.
func (s *schedule) wakePeer(peer string) bool {
	b := s.backoff[peer]
	for id, e := range b {
		e.next = 0
		s.where[id] = slotReady
		heap.Push(&s.ready, e)
	}
	delete(s.backoff, peer)
	return len(b) > 0
}

type waitItem struct {
	e  *schedItem
	at int64 // e.next when pushed; a changed item makes this one stale
}

type waitHeap []waitItem

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waitItem)) }
func (h *waitHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

type readyHeap []*schedItem

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank > h[j].rank
	}
	return h[i].createdAt < h[j].createdAt
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(*schedItem)) }
func (h *readyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
