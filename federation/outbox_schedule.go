package federation

import (
	"container/heap"
	"time"
)

// schedule orders the queued durable messages: those waiting out a
// backoff by due time, those due by priority (urgent first) then age. Every
// operation is O(log n), so a million queued messages cost no scans. It is
// not safe for concurrent use: the outbox holds its mutex.
type schedule struct {
	waiting waitHeap
	ready   readyHeap
	where   map[string]int                     // messageId -> slotWaiting, slotReady or slotRunning
	backoff map[string]map[string]*OutboxEntry // peer -> its entries waiting out a backoff
}

const (
	slotWaiting = iota + 1
	slotReady
	slotRunning
)

func newSchedule() schedule {
	return schedule{where: map[string]int{}, backoff: map[string]map[string]*OutboxEntry{}}
}

// add schedules e: ready if due at now, else waiting.
func (s *schedule) add(e *OutboxEntry, now time.Time) {
	if e.NextAttemptAt <= now.UnixMilli() {
		s.where[e.MessageID] = slotReady
		heap.Push(&s.ready, e)
		return
	}
	s.where[e.MessageID] = slotWaiting
	heap.Push(&s.waiting, waitItem{e: e, at: e.NextAttemptAt})
	if s.backoff[e.PeerID] == nil {
		s.backoff[e.PeerID] = map[string]*OutboxEntry{}
	}
	s.backoff[e.PeerID][e.MessageID] = e
}

// remove forgets a finished entry.
func (s *schedule) remove(e *OutboxEntry) {
	delete(s.where, e.MessageID)
	if b := s.backoff[e.PeerID]; b != nil {
		delete(b, e.MessageID)
	}
}

// next returns the most urgent due entry and marks it running, or nil.
// Heap items left behind by wakePeer or remove are skipped.
func (s *schedule) next(now time.Time) *OutboxEntry {
	for s.waiting.Len() > 0 && s.waiting[0].at <= now.UnixMilli() {
		it := heap.Pop(&s.waiting).(waitItem)
		if s.where[it.e.MessageID] == slotWaiting && it.e.NextAttemptAt == it.at {
			delete(s.backoff[it.e.PeerID], it.e.MessageID)
			s.where[it.e.MessageID] = slotReady
			heap.Push(&s.ready, it.e)
		}
	}
	for s.ready.Len() > 0 {
		e := heap.Pop(&s.ready).(*OutboxEntry)
		if s.where[e.MessageID] == slotReady {
			s.where[e.MessageID] = slotRunning
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
		e.NextAttemptAt = 0
		s.where[id] = slotReady
		heap.Push(&s.ready, e)
	}
	delete(s.backoff, peer)
	return len(b) > 0
}

type waitItem struct {
	e  *OutboxEntry
	at int64 // e.NextAttemptAt when pushed; a changed entry makes the item stale
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

type readyHeap []*OutboxEntry

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	ri, rj := h[i].Message.Priority.Rank(), h[j].Message.Priority.Rank()
	if ri != rj {
		return ri > rj
	}
	return h[i].CreatedAt < h[j].CreatedAt
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(*OutboxEntry)) }
func (h *readyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
