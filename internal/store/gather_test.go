package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agentfed/agentfed/internal/tstest"
)

const gatherEvery = 10 * time.Millisecond

// Gathered records are written together when the delay ends: none is on
// disk (nor its Put returned) before, all are when it does, and a record
// that comes later starts a batch of its own.
func TestGatherWritesABatchAfterTheDelay(t *testing.T) {
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	synctest.Test(t, func(t *testing.T) {
		g := st.Gather(Processed, gatherEvery)
		const n = 40
		var returned atomic.Int64
		errs := make(chan error, n+1)
		put := func(i int) {
			errs <- g.Put(KV{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint(`{"at":`, i, `}`))})
			returned.Add(1)
		}
		for i := range n {
			go put(i)
		}
		onDisk := func() int {
			c := 0
			for i := range n + 1 {
				if v, err := st.Get(Processed, fmt.Sprint("k", i)); err == nil && v != nil {
					c++
				}
			}
			return c
		}
		time.Sleep(gatherEvery / 2)
		synctest.Wait()
		if got, d := returned.Load(), onDisk(); got != 0 || d != 0 {
			t.Fatalf("half way through the delay: %d puts returned, %d records on disk; want none (gathered)", got, d)
		}
		time.Sleep(gatherEvery / 2)
		synctest.Wait()
		if got, d := returned.Load(), onDisk(); got != n || d != n {
			t.Fatalf("after the delay: %d puts returned, %d records on disk; want %d", got, d, n)
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		go put(n) // alone: waits its own delay
		synctest.Wait()
		if returned.Load() != n {
			t.Fatalf("a record after the batch returned before its own delay")
		}
		time.Sleep(gatherEvery)
		synctest.Wait()
		if err := <-errs; err != nil || onDisk() != n+1 {
			t.Fatalf("the later record: %v, %d on disk; want written", err, onDisk())
		}
	})
}

// A record that cannot be written fails alone: the others of its batch
// are written.
func TestGatherFailsOnlyTheBadRecord(t *testing.T) {
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	synctest.Test(t, func(t *testing.T) {
		g := st.Gather(Outbox, gatherEvery)
		errs := make(chan error, 3)
		for _, k := range []string{"a", "", "b"} { // bbolt refuses an empty key
			go func() { errs <- g.Put(KV{Key: k, Value: []byte(`{}`)}) }()
		}
		failed := 0
		for range 3 {
			if <-errs != nil {
				failed++
			}
		}
		if failed != 1 {
			t.Fatalf("%d puts failed; want only the empty key's", failed)
		}
		for _, k := range []string{"a", "b"} {
			if v, err := st.Get(Outbox, k); err != nil || v == nil {
				t.Errorf("record %q: %q, %v; want written", k, v, err)
			}
		}
	})
}

// The caller that gathers a batch returns once that batch is written,
// however steadily more records come: it does not go on writing those
// that came during its write (its own message would wait for the whole
// stream).
func TestGatherLeaderReturns(t *testing.T) {
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := st.Gather(Processed, gatherEvery)
	firstDone := make(chan struct{})
	var writes atomic.Int64
	var later sync.WaitGroup
	g.write = func(kvs []KV) error {
		if writes.Add(1) == 1 { // more records come while the first batch is written
			for i := range 3 {
				later.Go(func() { g.Put(KV{Key: fmt.Sprint("later", i), Value: []byte(`{}`)}) })
			}
			tstest.WaitFor(t, 10*time.Second, func() error {
				g.mu.Lock()
				defer g.mu.Unlock()
				if len(g.queue) < 3 {
					return fmt.Errorf("%d records queued; want 3", len(g.queue))
				}
				return nil
			})
		} else { // theirs is written once the first caller has returned
			select {
			case <-firstDone:
			case <-time.After(10 * time.Second):
				t.Error("the first record's put had not returned when the next batch was written")
			}
		}
		return st.PutBatch(Processed, kvs...)
	}
	if err := g.Put(KV{Key: "first", Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	close(firstDone)
	later.Wait()
	if n := writes.Load(); n != 2 {
		t.Errorf("%d batches written; want 2", n)
	}
}
