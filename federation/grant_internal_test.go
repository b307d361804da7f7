package federation

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkReplayGuardSteady is the replay check once ids expire as fast
// as new ones come: each check forgets the oldest of 100,000 remembered
// ids and remembers one more.
func BenchmarkReplayGuardSteady(b *testing.B) {
	g := newReplayGuard(time.Hour)
	const live = 100_000
	ids := make([]string, live+1)
	for i := range ids {
		ids[i] = fmt.Sprint("m", i)
	}
	msg := &Message{FromServer: "a", Timestamp: time.Now().UnixMilli()}
	for _, id := range ids[:live] {
		msg.MessageID = id
		if err := g.check(msg, false); err != nil {
			b.Fatal(err)
		}
	}
	set := g.senders["a"]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Make the oldest remembered id expire, as time passing would.
		g.mu.Lock()
		oldest := set.order[set.head]
		set.seen[oldest] = seenID{}
		g.mu.Unlock()
		msg.MessageID = fmt.Sprint("n", i)
		i++
		if err := g.check(msg, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReplayGuardForgets: expired ids are forgotten (and may come again),
// live ones are still refused, across the compaction of the id list; and
// a sender's ids are capped at maxSeenPerSender, oldest forgotten first.
func TestReplayGuardForgets(t *testing.T) {
	g := newReplayGuard(time.Hour)
	msg := &Message{FromServer: "a", Timestamp: time.Now().UnixMilli()}
	send := func(id string) error { msg.MessageID = id; return g.check(msg, false) }
	for i := range 3000 {
		if err := send(fmt.Sprint("m", i)); err != nil {
			t.Fatal(err)
		}
	}
	set := g.senders["a"]
	g.mu.Lock()
	for _, id := range set.order[:2500] {
		set.seen[id] = seenID{} // expired
	}
	set.pruneLocked(time.Now())
	live, head := len(set.order)-set.head, set.head
	g.mu.Unlock()
	if live != 500 || head != 0 {
		t.Fatalf("after pruning 2,500 of 3,000: %d live, head %d; want 500 live, compacted to head 0", live, head)
	}
	if err := send("m10"); err != nil {
		t.Errorf("an expired id came again: %v", err)
	}
	if err := send("m2999"); err == nil {
		t.Error("a live id was accepted twice")
	}

	for i := range maxSeenPerSender {
		if err := send(fmt.Sprint("cap", i)); err != nil {
			t.Fatal(err)
		}
	}
	g.mu.Lock()
	live = len(set.order) - set.head
	g.mu.Unlock()
	if live != maxSeenPerSender {
		t.Errorf("%d ids remembered, want the cap %d", live, maxSeenPerSender)
	}
	if err := send("m2999"); err != nil {
		t.Errorf("the oldest id beyond the cap is still remembered: %v", err)
	}
	if err := send(fmt.Sprint("cap", maxSeenPerSender-1)); err == nil {
		t.Error("the newest id was forgotten")
	}
}
