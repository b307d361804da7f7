package schedule

import (
	"fmt"
	"testing"
	"time"
)

func item(id, key string, rank int, created, next int64) *Item {
	return &Item{ID: id, Key: key, Rank: rank, CreatedAt: created, Next: next}
}

func drain(s *Schedule, now time.Time) []string {
	var out []string
	for it := s.Next(now); it != nil; it = s.Next(now) {
		out = append(out, it.ID)
	}
	return out
}

func TestScheduleOrder(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := New()
	s.Add(item("low-old", "p", 0, 1, 0), now)
	s.Add(item("normal", "p", 1, 2, 0), now)
	s.Add(item("urgent-new", "p", 3, 5, 0), now)
	s.Add(item("urgent-old", "p", 3, 3, 0), now)
	s.Add(item("later", "p", 3, 0, now.UnixMilli()+500), now)
	if got, want := fmt.Sprint(drain(s, now)), "[urgent-old urgent-new normal low-old]"; got != want {
		t.Fatalf("due order %s; want %s", got, want)
	}
	if w := s.Wait(now); w != 500*time.Millisecond {
		t.Fatalf("wait %v; want 500ms", w)
	}
	if got := drain(s, now.Add(500*time.Millisecond)); fmt.Sprint(got) != "[later]" {
		t.Fatalf("after its backoff: %v", got)
	}
}

func TestSchedulePeerUp(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := New()
	a := item("a", "up", 1, 1, now.UnixMilli()+60_000)
	s.Add(a, now)
	s.Add(item("b", "other", 1, 2, now.UnixMilli()+60_000), now)
	if !s.PeerUp("up") || s.PeerUp("up") {
		t.Fatal("PeerUp should report waiting messages once")
	}
	if got := drain(s, now); fmt.Sprint(got) != "[a]" {
		t.Fatalf("after PeerUp: %v; want only the woken peer's message", got)
	}
	// a's stale waiting item must not bring it back.
	s.Remove(a)
	if got := drain(s, now.Add(time.Hour)); fmt.Sprint(got) != "[b]" {
		t.Fatalf("an hour later: %v; want [b]", got)
	}
}

// TestScheduleRemoveAfterRequeue: an attempt that finishes a message must
// not unschedule it if an operator queued it again meanwhile.
func TestScheduleRemoveAfterRequeue(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := New()
	s.Add(item("m", "p", 1, 1, 0), now)
	running := s.Next(now)              // the attempt starts
	s.Add(item("m", "p", 1, 1, 0), now) // retry while the attempt is finishing
	s.Remove(running)                   // the attempt's deferred remove
	if got := drain(s, now); fmt.Sprint(got) != "[m]" {
		t.Fatalf("after a requeue during the attempt: %v; want [m]", got)
	}
}

// TestScheduleParkHoldsUntilWoken: a parked message does not come due with
// time, unless it can expire (then at its deadline, to be marked dead);
// PeerUp releases the rest.
func TestScheduleParkHoldsUntilWoken(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := New()
	s.Park(item("held", "down", 1, 1, 0))
	expiring := item("expiring", "down", 1, 2, 0)
	expiring.Expires = now.UnixMilli() + 500
	s.Park(expiring)
	if got := drain(s, now.Add(time.Hour)); fmt.Sprint(got) != "[expiring]" {
		t.Fatalf("an hour later: %v; want only the expiring message", got)
	}
	if !s.PeerUp("down") {
		t.Fatal("PeerUp found nothing held")
	}
	if got := drain(s, now); fmt.Sprint(got) != "[held]" {
		t.Fatalf("after PeerUp: %v; want [held]", got)
	}
}

// TestGateProbesOneAtATime: once an attempt finds its peer down, that
// peer's other messages are held; after the gate's backoff exactly one is
// released as a probe; a probe that reaches the peer releases them all,
// while the other peers' messages were never held.
func TestGateProbesOneAtATime(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	s := New()
	for i := range 3 {
		s.Add(item(fmt.Sprint("d", i), "down", 1, int64(i), 0), now)
	}
	s.Add(item("x", "other", 1, 10, 0), now)
	first := s.Next(now)
	if first.ID != "d0" {
		t.Fatalf("first attempt %s; want d0", first.ID)
	}
	if !s.Record(first, Down, now) {
		t.Fatal("a Down outcome did not begin holding the peer")
	}
	s.Park(first)
	if got := drain(s, now); fmt.Sprint(got) != "[x]" {
		t.Fatalf("while down: %v; want only the other peer's message", got)
	}
	later := now.Add(MaxBackoff * 2) // past any jittered first backoff
	probe := s.Next(later)
	if probe == nil || probe.Key != "down" || s.Next(later) != nil {
		t.Fatalf("after the backoff: probe %v and more; want exactly one probe of the down peer", probe)
	}
	s.Record(probe, Up, later)
	s.Remove(probe)
	if got := drain(s, later); len(got) != 2 {
		t.Fatalf("after the probe got through: %v; want the two held messages", got)
	}
}

func BenchmarkSchedule(b *testing.B) {
	now := time.Now()
	s := New()
	for i := range 1_000_000 {
		s.Add(item(fmt.Sprint(i), "p", 1, int64(i), 0), now)
	}
	b.ResetTimer()
	for i := range b.N {
		it := s.Next(now)
		if it == nil {
			b.Fatal("empty")
		}
		it.Next = 0
		it.CreatedAt = int64(1_000_000 + i)
		s.Add(it, now)
	}
}

// BenchmarkHeldBacklogProbe: one probe of a held peer (release one
// message, start it, hold it again) costs the same whatever the peer's
// backlog; the held messages are not touched.
func BenchmarkHeldBacklogProbe(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			now := time.Now()
			s := New()
			for i := range n {
				s.Park(item(fmt.Sprint(i), "down", 1, int64(i), 0))
			}
			var last *Item
			b.ResetTimer()
			for range b.N {
				last = s.unparkOne("down", last)
				if s.next(now) != last {
					b.Fatal("the released message is not the next to start")
				}
				s.Park(last)
			}
		})
	}
}
