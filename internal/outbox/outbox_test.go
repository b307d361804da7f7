package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/schedule"
	"github.com/agentfed/agentfed/internal/store"
)

// TestPruneFinished: delivered entries finished before the cutoff go;
// recent ones, and failed ones whatever their age, stay.
func TestPruneFinished(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &Outbox[string, string]{st: st}
	cutoff := time.UnixMilli(1_000_000)
	for _, e := range []Entry[string, string]{
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

// TestFinishStopsAttempt: Finish records a final state by message id,
// with the result another path learned, while an attempt of the message
// is in flight; the attempt is stopped and its outcome not recorded. A
// second Finish, or one of an unknown id, is refused.
func TestFinishStopsAttempt(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	attempting, ended := make(chan struct{}, 1), make(chan struct{})
	o, err := New(Config[string, string]{Store: st, Rank: func(*string) int { return 0 },
		Deliver: func(ctx context.Context, e *Entry[string, string]) Report[string] {
			defer close(ended)
			attempting <- struct{}{}
			<-ctx.Done()
			late := "late"
			return Report[string]{State: StateDelivered, Result: &late, Peer: schedule.Up}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	msg := "hello"
	if err := o.Put(&Entry[string, string]{MessageID: "m1", Kind: "send", PeerID: "p", State: StateQueued, Message: &msg}); err != nil {
		t.Fatal(err)
	}
	<-attempting
	answer := "answer"
	e, err := o.Finish("m1", StateDelivered, &answer, nil)
	if err != nil || e.State != StateDelivered || *e.Result != "answer" {
		t.Fatalf("Finish = %+v, %v; want delivered with the answer", e, err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Finish returned while the attempt was still in flight")
	}
	if e, err := o.Get("m1"); err != nil || e.State != StateDelivered || *e.Result != "answer" || e.Attempts != 0 {
		t.Fatalf("Get after Finish = %+v, %v; want delivered with the answer, no attempt recorded", e, err)
	}
	if _, err := o.Finish("m1", StateFailed, nil, nil); !errors.Is(err, ErrState) {
		t.Fatalf("second Finish: %v; want ErrState", err)
	}
	if _, err := o.Finish("nope", StateDead, nil, nil); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Finish of an unknown message: %v; want ErrUnknown", err)
	}
}

// TestDownPeerBacklogAttempts: a backlog for a peer that cannot be reached
// costs at most one attempt per delivery slot before the peer's gate holds
// the rest back, then one probe per backoff interval. When an attempt freed
// its slot before its outcome was written, each freed slot took another of
// the backlog until the first outcome's write closed the gate: 641 attempts
// (and rewrites) in 300 ms in a reviewer's run, against 65 before.
func TestDownPeerBacklogAttempts(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var attempts atomic.Int64
	o, err := New(Config[string, string]{Store: st, Rank: func(*string) int { return 0 },
		Deliver: func(ctx context.Context, e *Entry[string, string]) Report[string] {
			attempts.Add(1)
			return Report[string]{State: StateQueued, Peer: schedule.Down,
				Error: gateway.NewError(gateway.CodePeerUnavailable, "down")}
		}})
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]*Entry[string, string], 4*(concurrency+recording))
	msg := "hello"
	for i := range entries {
		entries[i] = &Entry[string, string]{MessageID: fmt.Sprintf("m%06d", i), Kind: "send", PeerID: "p",
			State: StateQueued, Message: &msg, CreatedAt: time.Now().UnixMilli()}
	}
	if err := o.Put(entries...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The gate's probes come at 100 ms doubling, jittered by half: at most
	// five in the first second.
	const most = concurrency + 8
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n := attempts.Load(); n > most {
			t.Fatalf("%d attempts to a down peer within a second; want at most %d (one per delivery slot, then probes)", n, most)
		}
	}
	if attempts.Load() == 0 {
		t.Fatal("no attempt was made")
	}
}

// TestRetryBeforeAttemptEnds: an operator's Retry may queue a message
// again once its attempt's outcome is on disk but before the attempt's
// bookkeeping has run, and a newer attempt may start in between. The old
// attempt's end then leaves the newer one registered and scheduled, so
// that a Cancel still stops it. (It used to take it off both: the newer
// attempt ran where no Cancel or Finish could stop it.) The steps are
// Run's and attempt's own, taken one at a time.
func TestRetryBeforeAttemptEnds(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o, err := New(Config[string, string]{Store: st, Rank: func(*string) int { return 0 },
		Deliver: func(context.Context, *Entry[string, string]) Report[string] {
			t.Error("Deliver called: the test takes each step itself")
			return Report[string]{}
		}})
	if err != nil {
		t.Fatal(err)
	}
	msg := "hello"
	if err := o.Put(&Entry[string, string]{MessageID: "m1", Kind: "send", PeerID: "p", State: StateQueued, Message: &msg}); err != nil {
		t.Fatal(err)
	}
	start := func() (*schedule.Item, context.Context) { // as Run starts an attempt
		o.mu.Lock()
		defer o.mu.Unlock()
		it := o.sched.Next(time.Now())
		if it == nil {
			t.Fatal("nothing due")
		}
		return it, o.begin(context.Background(), it)
	}
	old, _ := start()
	e, err := o.Get("m1")
	if err != nil {
		t.Fatal(err)
	}
	e.Attempts++
	if !o.finish(e, StateFailed, nil, gateway.NewError(gateway.CodeInternal, "no"), false) { // the old attempt's outcome
		t.Fatal("could not write the outcome")
	}
	if _, err := o.Retry("m1"); err != nil {
		t.Fatal(err)
	}
	newer, actx := start()
	o.end(old, schedule.Up, -1) // the old attempt's bookkeeping, late

	o.mu.Lock()
	running := o.running["m1"]
	o.mu.Unlock()
	if running != newer {
		t.Fatalf("after the old attempt ended, the running attempt of m1 is %p; want the newer one, %p", running, newer)
	}
	go func() { // the newer attempt, stopped by the Cancel
		<-actx.Done()
		o.end(newer, schedule.None, -1)
	}()
	if e, err := o.Cancel("m1"); err != nil || e.State != StateDead {
		t.Fatalf("Cancel = %+v, %v; want dead", e, err)
	}
	if e, err := o.Get("m1"); err != nil || e.State != StateDead || e.LastError.Code != gateway.CodeCancelled {
		t.Fatalf("Get after Cancel = %+v, %v; want dead, CANCELLED", e, err)
	}
}
