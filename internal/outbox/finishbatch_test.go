package outbox

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
)

// newTestOutbox is an outbox on a fresh store holding entries, not run.
func newTestOutbox(t *testing.T, entries ...Entry[string, string]) (*Outbox[string, string], *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o, err := New(Config[string, string]{Store: st, Rank: func(*string) int { return 0 },
		Deliver: func(context.Context, *Entry[string, string]) Report[string] { return Report[string]{} }})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := o.Put(&e); err != nil {
			t.Fatal(err)
		}
	}
	return o, st
}

// TestFinishBatchIsFinishes: FinishBatch settles a batch as one Finish
// per entry does: the same states, results and errors on disk; an entry
// already final is left as is, a missing one is not handed over, and an
// unreadable one does not hold up the others. A second batch changes
// nothing. An entry that is not final, or a store that cannot write, fails
// the batch and writes nothing.
func TestFinishBatchIsFinishes(t *testing.T) {
	msg, old := "m", "old"
	entries := []Entry[string, string]{
		{MessageID: "q1", Kind: "send", PeerID: "a@r", State: StateQueued, Message: &msg, Stream: "S"},
		{MessageID: "q2", Kind: "send", PeerID: "a@r", State: StateQueued, Message: &msg, Stream: "S"},
		{MessageID: "q3", Kind: "send", PeerID: "a@r", State: StateQueued, Message: &msg, Stream: "S"},
		{MessageID: "d1", Kind: "send", PeerID: "a@r", State: StateDelivered, Message: &msg, Result: &old},
	}
	answer := "answer"
	why := gateway.NewError(gateway.CodeTimeout, "cannot")
	type finishing struct {
		state  string
		result *string
		why    *gateway.Error
	}
	want := map[string]finishing{"q1": {StateDelivered, &answer, nil}, "q2": {StateFailed, nil, why}, "q3": {StateDead, nil, why},
		"d1": {StateFailed, nil, why}, "missing": {StateDead, nil, nil}, "bad": {StateDead, nil, nil}}
	ids := []string{"q1", "q2", "q3", "d1", "missing", "bad"}

	one, _ := newTestOutbox(t, entries...)
	for _, id := range ids {
		f := want[id]
		_, err := one.Finish(id, f.state, f.result, f.why)
		switch id {
		case "d1":
			if !errors.Is(err, ErrState) {
				t.Fatalf("Finish(d1) = %v; want ErrState", err)
			}
		case "missing", "bad":
			if err == nil {
				t.Fatalf("Finish(%s) = nil; want an error", id)
			}
		default:
			if err != nil {
				t.Fatalf("Finish(%s) = %v", id, err)
			}
		}
	}

	batch, st := newTestOutbox(t, entries...)
	if err := st.Put(store.Outbox, "bad", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	handed := map[string]bool{}
	finishAll := func(stored map[string]*Entry[string, string]) []*Entry[string, string] {
		var out []*Entry[string, string]
		for id, e := range stored {
			handed[id] = true
			if e.State != StateQueued {
				continue // final already
			}
			f := want[id]
			e.State, e.Result, e.NextAttemptAt, e.FinishedAt = f.state, f.result, 0, 1
			if f.why != nil {
				e.LastError = f.why
			}
			out = append(out, e)
		}
		return out
	}
	if err := batch.FinishBatch(ids, finishAll); err != nil {
		t.Fatalf("FinishBatch = %v", err)
	}
	if !reflect.DeepEqual(handed, map[string]bool{"q1": true, "q2": true, "q3": true, "d1": true}) {
		t.Errorf("FinishBatch handed over %v; want q1, q2, q3 and d1, not the missing and the unreadable one", handed)
	}
	same := func(when string) {
		t.Helper()
		for _, id := range []string{"q1", "q2", "q3", "d1"} {
			a, err1 := one.Get(id)
			b, err2 := batch.Get(id)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: Get(%s) = %v, %v", when, id, err1, err2)
			}
			a.FinishedAt, b.FinishedAt = 0, 0
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s: %s after Finish = %+v; after FinishBatch = %+v", when, id, a, b)
			}
		}
	}
	same("first batch")

	if err := batch.FinishBatch(ids, finishAll); err != nil {
		t.Fatalf("second FinishBatch = %v", err)
	}
	same("second batch")

	fresh, st2 := newTestOutbox(t, entries...)
	err := fresh.FinishBatch([]string{"q1", "q2"}, func(stored map[string]*Entry[string, string]) []*Entry[string, string] {
		stored["q1"].State = StateDelivered
		return []*Entry[string, string]{stored["q1"], stored["q2"]} // q2 still queued
	})
	if err == nil || errors.Is(err, ErrStorage) {
		t.Fatalf("FinishBatch with a queued entry = %v; want a refusal", err)
	}
	if e, _ := fresh.Get("q1"); e.State != StateQueued {
		t.Errorf("after a refused batch q1 is %s; want queued (nothing written)", e.State)
	}
	st2.Close()
	err = fresh.FinishBatch([]string{"q1"}, finishAll)
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("FinishBatch on a closed store = %v; want ErrStorage", err)
	}
}
