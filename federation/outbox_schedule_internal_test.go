package federation

import (
	"encoding/json"

	"fmt"
	"github.com/agentfed/agentfed/internal/store"
	"testing"
	"time"
)

func entry(id, peer string, prio Priority, created, next int64) *schedItem {
	return itemOf(&OutboxEntry{MessageID: id, PeerID: peer, CreatedAt: created, NextAttemptAt: next, Message: &Message{Priority: prio}})
}

func drain(s *schedule, now time.Time) []string {
	var out []string
	for e := s.next(now); e != nil; e = s.next(now) {
		out = append(out, e.id)
	}
	return out
}

func TestScheduleOrder(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := newSchedule()
	s.add(entry("low-old", "p", PriorityLow, 1, 0), now)
	s.add(entry("normal", "p", PriorityNormal, 2, 0), now)
	s.add(entry("urgent-new", "p", PriorityUrgent, 5, 0), now)
	s.add(entry("urgent-old", "p", PriorityUrgent, 3, 0), now)
	s.add(entry("later", "p", PriorityUrgent, 0, now.UnixMilli()+500), now)
	if got, want := fmt.Sprint(drain(&s, now)), "[urgent-old urgent-new normal low-old]"; got != want {
		t.Fatalf("due order %s; want %s", got, want)
	}
	if w := s.wait(now); w != 500*time.Millisecond {
		t.Fatalf("wait %v; want 500ms", w)
	}
	if got := drain(&s, now.Add(500*time.Millisecond)); fmt.Sprint(got) != "[later]" {
		t.Fatalf("after its backoff: %v", got)
	}
}

func TestScheduleWakePeer(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := newSchedule()
	a := entry("a", "up", PriorityNormal, 1, now.UnixMilli()+60_000)
	s.add(a, now)
	s.add(entry("b", "other", PriorityNormal, 2, now.UnixMilli()+60_000), now)
	if !s.wakePeer("up") || s.wakePeer("up") {
		t.Fatal("wakePeer should report waiting entries once")
	}
	if got := drain(&s, now); fmt.Sprint(got) != "[a]" {
		t.Fatalf("after wakePeer: %v; want only the woken peer's entry", got)
	}
	// a's stale waiting item must not bring it back.
	s.remove(a)
	if got := drain(&s, now.Add(time.Hour)); fmt.Sprint(got) != "[b]" {
		t.Fatalf("an hour later: %v; want [b]", got)
	}
}

func BenchmarkSchedule(b *testing.B) {
	now := time.Now()
	s := newSchedule()
	for i := range 1_000_000 {
		s.add(entry(fmt.Sprint(i), "p", PriorityNormal, int64(i), 0), now)
	}
	b.ResetTimer()
	for i := range b.N {
		e := s.next(now)
		if e == nil {
			b.Fatal("empty")
		}
		e.next = 0
		e.createdAt = int64(1_000_000 + i)
		s.add(e, now)
	}
}

// TestScheduleRemoveAfterRequeue: an attempt that finishes a message must
// not unschedule it if an operator queued it again meanwhile.
func TestScheduleRemoveAfterRequeue(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := newSchedule()
	it := entry("m", "p", PriorityNormal, 1, 0)
	s.add(it, now)
	running := s.next(now) // the attempt starts
	requeued := entry("m", "p", PriorityNormal, 1, 0)
	s.add(requeued, now) // retry while the attempt is finishing
	s.remove(running)    // the attempt's deferred remove
	if got := drain(&s, now); fmt.Sprint(got) != "[m]" {
		t.Fatalf("after a requeue during the attempt: %v; want [m]", got)
	}
}

// TestPruneFinished: delivered entries finished before the cutoff go;
// recent ones, and failed ones whatever their age, stay.
func TestPruneFinished(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &outbox{st: st}
	cutoff := time.UnixMilli(1_000_000)
	for _, e := range []OutboxEntry{
		{MessageID: "delivered-old", State: StateDelivered, FinishedAt: 999_000},
		{MessageID: "delivered-new", State: StateDelivered, FinishedAt: 1_001_000},
		{MessageID: "failed-old", State: StateFailed, FinishedAt: 999_000},
	} {
		b, _ := json.Marshal(e)
		st.Put(store.Outbox, e.MessageID, b)
	}
	o.pruneFinished(cutoff)
	var left []string
	st.ForEach(store.Outbox, func(k string, _ []byte) error { left = append(left, k); return nil })
	if fmt.Sprint(left) != "[delivered-new failed-old]" {
		t.Fatalf("after prune: %v", left)
	}
}

// BenchmarkHeldBacklogProbe: one probe of a held peer (release one
// message, start it, hold it again) costs the same whatever the peer's
// backlog; the held messages are not touched.
func BenchmarkHeldBacklogProbe(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			now := time.Now()
			s := newSchedule()
			for i := range n {
				s.park(entry(fmt.Sprint(i), "down", PriorityNormal, int64(i), 0))
			}
			var last *schedItem
			b.ResetTimer()
			for range b.N {
				last = s.unparkOne("down", last)
				if s.next(now) != last {
					b.Fatal("the released message is not the next to start")
				}
				s.park(last)
			}
		})
	}
}

// TestScheduleParkHoldsUntilWoken: a parked message does not come due with
// time, unless it can expire (then at its deadline, to be marked dead);
// wakePeer releases the rest.
func TestScheduleParkHoldsUntilWoken(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := newSchedule()
	s.park(entry("held", "down", PriorityNormal, 1, 0))
	expiring := entry("expiring", "down", PriorityNormal, 2, 0)
	expiring.expires = now.UnixMilli() + 500
	s.park(expiring)
	if got := drain(&s, now.Add(time.Hour)); fmt.Sprint(got) != "[expiring]" {
		t.Fatalf("an hour later: %v; want only the expiring message", got)
	}
	if !s.wakePeer("down") {
		t.Fatal("wakePeer found nothing held")
	}
	if got := drain(&s, now); fmt.Sprint(got) != "[held]" {
		t.Fatalf("after wakePeer: %v; want [held]", got)
	}
}
