package federation

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
)

// BenchmarkReplayGuardSteady is the replay check once ids expire as fast
// as new ones come: each check forgets the oldest of 100,000 remembered
// ids and remembers one more.
func BenchmarkReplayGuardSteady(b *testing.B) {
	g, _ := newReplayGuard(time.Hour, nil, nil)
	const live = 100_000
	msg := &Message{FromServer: "a", Timestamp: time.Now().UnixMilli()}
	for i := range live {
		msg.MessageID = fmt.Sprint("m", i)
		if err := g.check(msg, false, true); err != nil {
			b.Fatal(err)
		}
	}
	set := g.auth["a"]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Make the oldest remembered id expire, as time passing would.
		g.mu.Lock()
		set.order[set.head].until = 0
		g.mu.Unlock()
		msg.MessageID = fmt.Sprint("n", i)
		i++
		if err := g.check(msg, false, true); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReplayGuardForgets: expired ids are forgotten (and may come again),
// live ones are still refused, across the compaction of the id list; a
// sender over its budget forgets its oldest ids and refuses what is
// stamped before them.
func TestReplayGuardForgets(t *testing.T) {
	g, _ := newReplayGuard(time.Hour, nil, nil)
	g.limits.authSender, g.limits.authMinSender = 1000*(seenOverhead+6), 0
	now := time.Now().UnixMilli()
	msg := &Message{FromServer: "a"}
	send := func(id string, ts int64) error {
		msg.MessageID, msg.Timestamp = id, ts
		return g.check(msg, false, true)
	}
	for i := range 1000 {
		if err := send(fmt.Sprintf("m%05d", i), now-1000+int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	set := g.auth["a"]
	g.mu.Lock()
	for i := range 900 {
		set.order[i].until = 0 // expired
	}
	g.pruneLocked(true, "a", set, time.Now())
	live, floor := len(set.order)-set.head, set.floor
	g.mu.Unlock()
	if live != 100 || floor != 0 {
		t.Fatalf("after 900 of 1,000 expired: %d live, floor %d; want 100, 0 (expired ids need no floor)", live, floor)
	}
	if err := send("m00010", now); err != nil {
		t.Errorf("an expired id came again: %v", err)
	}
	if err := send("m00999", now); code(err) != CodeReplayed {
		t.Errorf("a live id came again: %v; want REPLAYED", err)
	}
	// Over budget: the oldest are forgotten, and what is stamped before
	// them is refused from then on.
	for i := range 1000 {
		if err := send(fmt.Sprintf("c%05d", i), now+int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	g.mu.Lock()
	live, bytes, floor := len(set.seen), set.bytes, set.floor
	g.mu.Unlock()
	if bytes > g.limits.authSender || live > 1000 || floor < now {
		t.Fatalf("over budget: %d ids, %d bytes, floor %d; want at most %d bytes and a floor raised to %d or later", live, bytes, floor, g.limits.authSender, now)
	}
	if err := send("m00950", now-50); code(err) != CodeReplayed {
		t.Errorf("a forgotten id came again: %v; want REPLAYED", err)
	}
	if err := send("fresh", now+5000); err != nil {
		t.Errorf("a new message after the budget filled: %v", err)
	}
}

func code(err error) string { return gateway.CodeOf(err) }

// TestReplayGuardUnauthenticatedPool: unauthenticated senders fill their
// own pool, which then refuses (OVERLOADED) rather than forgetting; an
// authenticated sender's ids are untouched and it is still served.
func TestReplayGuardUnauthenticatedPool(t *testing.T) {
	g, _ := newReplayGuard(time.Hour, nil, func() int { return 1 })
	g.limits.unauthTotal, g.limits.unauthSenders = 50*(setOverhead+seenOverhead+20), 1000
	now := time.Now().UnixMilli()
	pinned := &Message{FromServer: "pinned", MessageID: "captured", Timestamp: now}
	if err := g.check(pinned, false, true); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := range 200 {
		m := &Message{FromServer: fmt.Sprint("throwaway-", i), MessageID: fmt.Sprint("x", i), Timestamp: now}
		if err := g.check(m, false, false); code(err) == CodeOverloaded {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused == 0 {
		t.Fatal("200 throw-away senders all accepted into a pool sized for 50")
	}
	if s := g.stats(); s.UnauthBytes > g.limits.unauthTotal {
		t.Fatalf("pool holds %d bytes, over its %d", s.UnauthBytes, g.limits.unauthTotal)
	}
	if err := g.check(pinned, false, true); code(err) != CodeReplayed {
		t.Fatalf("the pinned peer's captured message after the flood: %v; want REPLAYED", err)
	}
}

// TestReplayGuardPrunesByTime: a ticker forgets senders that never send
// again.
func TestReplayGuardPrunesByTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, _ := newReplayGuard(time.Second, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { g.run(ctx); close(done) }()
		for i := range 100 {
			m := &Message{FromServer: fmt.Sprint("s", i), MessageID: "m", Timestamp: time.Now().UnixMilli()}
			if err := g.check(m, false, i%2 == 0); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(3500 * time.Millisecond)
		if s := g.stats(); s.AuthSenders+s.UnauthSenders != 0 || s.UnauthBytes != 0 {
			t.Errorf("after 3.5 windows of silence: %+v; want nothing kept", s)
		}
		cancel()
		<-done
	})
}

// openReplayGuard opens the store in dir and a guard with a minute's
// window on it, as a gateway starting there does.
func openReplayGuard(t *testing.T, dir string) (*store.Store, *replayGuard) {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newReplayGuard(time.Minute, st, nil)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st, g
}

// TestReplayGuardSurvivesCrash: a guard that never saved (the process was
// killed) still refuses, after a restart, what it accepted.
func TestReplayGuardSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	st, g := openReplayGuard(t, dir)
	now := time.Now().UnixMilli()
	auth := &Message{FromServer: "pinned", MessageID: "a1", Timestamp: now}
	anon := &Message{FromServer: "anon", MessageID: "u1", Timestamp: now}
	for _, m := range []*Message{auth, anon} {
		if err := g.check(m, false, m == auth); err != nil {
			t.Fatal(err)
		}
	}
	st.Close() // no save: a crash
	st, g = openReplayGuard(t, dir)
	defer st.Close()
	for _, m := range []*Message{auth, anon} {
		if err := g.check(m, false, m == auth); code(err) != CodeReplayed {
			t.Errorf("%s's message after a crash: %v; want REPLAYED", m.FromServer, err)
		}
	}
	fresh := &Message{FromServer: "pinned", MessageID: "a2", Timestamp: now + 2*reserveAhead.Milliseconds()}
	if err := g.check(fresh, false, true); err != nil {
		t.Errorf("a message stamped after the reservation: %v", err)
	}
}
