package federation

import (
	"strconv"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

// TestReplayReservationSteadySender: a sender that keeps sending gets
// reservations reaching further ahead, so fewer fsynced writes, while every
// message accepted stays at or below the floor on disk and a crash refuses
// the sender's fresh messages for at most reserveAheadMax of its stamps; a
// sender that pauses is back to reserveAhead.
func TestReplayReservationSteadySender(t *testing.T) {
	dir := t.TempDir()
	st, g := openReplayGuard(t, dir)
	onDisk := func() int64 {
		t.Helper()
		v, err := st.Get(store.Replay, authKeyPrefix+"steady")
		if err != nil {
			t.Fatal(err)
		}
		ts, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			t.Fatalf("floor on disk %q: %v", v, err)
		}
		return ts
	}
	// 10 s of stamps, one every 200 ms (stamped ahead of the clock, within
	// the window, so that the test need not wait).
	base := time.Now().UnixMilli()
	var sent []*Message
	for k := range 50 {
		m := &Message{FromServer: "steady", MessageID: "s" + strconv.Itoa(k), Timestamp: base + int64(k)*200}
		if err := g.check(m, false, true); err != nil {
			t.Fatalf("message %d: %v", k, err)
		}
		if f := onDisk(); f < m.Timestamp {
			t.Fatalf("message %d stamped %d accepted with %d on disk", k, m.Timestamp, f)
		}
		sent = append(sent, m)
	}
	last := sent[len(sent)-1].Timestamp
	if g.writes > 5 {
		t.Errorf("%d reservations written for 10 s of a steady sender's stamps; want at most 5 (one a second is 9)", g.writes)
	}
	if over := onDisk() - last; over > reserveAheadMax.Milliseconds() {
		t.Errorf("floor on disk %d ms past the last stamp accepted; want at most %v", over, reserveAheadMax)
	}
	// A pause longer than the reservation's reach: back to reserveAhead.
	later := &Message{FromServer: "steady", MessageID: "later", Timestamp: last + 30_000}
	if err := g.check(later, false, true); err != nil {
		t.Fatal(err)
	}
	if f, want := onDisk(), later.Timestamp+reserveAhead.Milliseconds(); f != want {
		t.Errorf("after a pause the floor on disk is %d; want %d (the stamp + %v)", f, want, reserveAhead)
	}
	sent = append(sent, later)

	st.Close() // no save: a crash
	st, g = openReplayGuard(t, dir)
	defer st.Close()
	for _, m := range sent {
		if err := g.check(m, false, true); code(err) != CodeReplayed {
			t.Fatalf("message %q after a crash: %v; want REPLAYED", m.MessageID, err)
		}
	}
	fresh := &Message{FromServer: "steady", MessageID: "fresh", Timestamp: later.Timestamp + reserveAhead.Milliseconds() + 1}
	if err := g.check(fresh, false, true); err != nil {
		t.Errorf("a message stamped after the reservation: %v", err)
	}
}
