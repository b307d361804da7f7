package schedule

import (
	"container/heap"
	"math"
	"time"
)

// Schedule orders the queued messages: those waiting out a backoff by due
// time, those due by rank then age, and those of peers that do not answer
// held apart. Every operation is O(log n) but for a peer coming back, so a
// million queued messages cost no scans.
type Schedule struct {
	waiting waitHeap
	ready   readyHeap
	where   map[string]int              // Item.ID -> slotWaiting, slotReady or slotRunning
	backoff map[string]map[string]*Item // Item.Key -> its items waiting out a backoff or parked
	gates   map[string]*gate            // peers that do not answer, by Item.Key
}

const (
	slotWaiting = iota + 1
	slotReady
	slotRunning
)

// New returns an empty schedule.
func New() *Schedule {
	return &Schedule{where: map[string]int{}, backoff: map[string]map[string]*Item{}, gates: map[string]*gate{}}
}

// Add schedules it: due if its Next is not after now, else waiting. An
// item added again (an operator's retry) replaces the earlier one.
func (s *Schedule) Add(it *Item, now time.Time) {
	if it.Next <= now.UnixMilli() {
		s.where[it.ID] = slotReady
		heap.Push(&s.ready, it)
		return
	}
	s.where[it.ID] = slotWaiting
	heap.Push(&s.waiting, waitItem{it: it, at: it.Next})
	s.backoffOf(it.Key)[it.ID] = it
}

func (s *Schedule) backoffOf(key string) map[string]*Item {
	b := s.backoff[key]
	if b == nil {
		b = map[string]*Item{}
		s.backoff[key] = b
	}
	return b
}

// Park holds a message of a down peer without attempting it: it waits
// with the peer's backoff items until the peer answers, or, if it can
// expire, until then (its attempt then marks it dead).
func (s *Schedule) Park(it *Item) {
	s.where[it.ID] = slotWaiting
	s.backoffOf(it.Key)[it.ID] = it
	it.Next = math.MaxInt64 // leaves any waiting heap item stale
	if it.Expires != 0 {
		it.Next = it.Expires
		heap.Push(&s.waiting, waitItem{it: it, at: it.Next})
	}
}

// unparkOne makes one of key's waiting messages due now, to probe its
// peer, and returns it (nil if there is none): prefer if it still waits,
// else any.
func (s *Schedule) unparkOne(key string, prefer *Item) *Item {
	b := s.backoff[key]
	it := prefer
	if it == nil || b[it.ID] != it {
		it = nil
		for _, x := range b {
			it = x
			break
		}
	}
	if it == nil {
		return nil
	}
	delete(b, it.ID)
	it.Next = 0
	s.where[it.ID] = slotReady
	heap.Push(&s.ready, it)
	return it
}

// Remove forgets a message whose attempt finished it. If it was added
// again meanwhile (an operator's retry), it is not running any more and
// stays scheduled.
func (s *Schedule) Remove(it *Item) {
	if s.where[it.ID] != slotRunning {
		return
	}
	delete(s.where, it.ID)
	if b := s.backoff[it.Key]; b != nil {
		delete(b, it.ID)
	}
}

// Next returns the most urgent due message and marks it running, or nil.
// A message of a peer that does not answer is held back, unless it is the
// peer's probe or has expired (its attempt then marks it dead).
func (s *Schedule) Next(now time.Time) *Item {
	s.releaseProbes(now)
	it := s.next(now)
	for it != nil && s.hold(it, now) {
		it = s.next(now)
	}
	return it
}

// next is Next without the gates. Heap items left behind by wakePeer or
// Remove are skipped.
func (s *Schedule) next(now time.Time) *Item {
	for s.waiting.Len() > 0 && s.waiting[0].at <= now.UnixMilli() {
		w := heap.Pop(&s.waiting).(waitItem)
		if s.where[w.it.ID] == slotWaiting && w.it.Next == w.at {
			delete(s.backoff[w.it.Key], w.it.ID)
			s.where[w.it.ID] = slotReady
			heap.Push(&s.ready, w.it)
		}
	}
	for s.ready.Len() > 0 {
		it := heap.Pop(&s.ready).(*Item)
		if s.where[it.ID] == slotReady {
			s.where[it.ID] = slotRunning
			return it
		}
	}
	return nil
}

// Wait is how long until a message may be due (at most an hour): the next
// waiting one's time, or the next probe of a held peer.
func (s *Schedule) Wait(now time.Time) time.Duration {
	return min(s.wait(now), s.probeWait(now))
}

func (s *Schedule) wait(now time.Time) time.Duration {
	if s.waiting.Len() == 0 {
		return time.Hour
	}
	return max(time.UnixMilli(s.waiting[0].at).Sub(now), 0)
}

// wakePeer makes key's waiting messages due now; it reports whether there
// were any.
func (s *Schedule) wakePeer(key string) bool {
	b := s.backoff[key]
	for id, it := range b {
		it.Next = 0
		s.where[id] = slotReady
		heap.Push(&s.ready, it)
	}
	delete(s.backoff, key)
	return len(b) > 0
}

type waitItem struct {
	it *Item
	at int64 // it.Next when pushed; a changed item makes this one stale
}

type waitHeap []waitItem

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waitItem)) }
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

type readyHeap []*Item

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].Rank != h[j].Rank {
		return h[i].Rank > h[j].Rank
	}
	return h[i].CreatedAt < h[j].CreatedAt
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(*Item)) }
func (h *readyHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
