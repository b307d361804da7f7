package federation

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agentfed/agentfed/internal/store"
	"github.com/agentfed/agentfed/internal/tstest"
)

// Processed records of durable messages over NATS are gathered for
// natsRecordEvery and written together: none is on disk (nor its put
// returned) before the window ends, all are when it does, and a record
// that comes later starts a batch of its own.
func TestNATSRecordsGathered(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	synctest.Test(t, func(t *testing.T) {
		r := &natsRecords{st: st}
		const n = 40
		var returned atomic.Int64
		errs := make(chan error, n+1)
		put := func(i int) {
			errs <- r.put(store.KV{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint(`{"at":`, i, `}`))})
			returned.Add(1)
		}
		for i := range n {
			go put(i)
		}
		onDisk := func() int {
			c := 0
			for i := range n + 1 {
				if v, err := st.Get(store.Processed, fmt.Sprint("k", i)); err == nil && v != nil {
					c++
				}
			}
			return c
		}
		time.Sleep(natsRecordEvery / 2)
		synctest.Wait()
		if got, d := returned.Load(), onDisk(); got != 0 || d != 0 {
			t.Fatalf("half way through the window: %d puts returned, %d records on disk; want none (gathered)", got, d)
		}
		time.Sleep(natsRecordEvery / 2)
		synctest.Wait()
		if got, d := returned.Load(), onDisk(); got != n || d != n {
			t.Fatalf("after the window: %d puts returned, %d records on disk; want %d", got, d, n)
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		go put(n) // alone: waits its own window
		synctest.Wait()
		if returned.Load() != n {
			t.Fatalf("a record after the batch returned before its own window")
		}
		time.Sleep(natsRecordEvery)
		synctest.Wait()
		if err := <-errs; err != nil || onDisk() != n+1 {
			t.Fatalf("the later record: %v, %d on disk; want written", err, onDisk())
		}
	})
}

// The caller that gathers a batch returns once that batch is written,
// however steadily more records come: it does not go on writing those
// that came during its write (its message's outcome and ack would wait for
// the whole stream).
func TestNATSRecordsLeaderReturns(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := &natsRecords{st: st}
	firstDone := make(chan struct{})
	var writes atomic.Int64
	var later sync.WaitGroup
	r.write = func(kvs []store.KV) error {
		if writes.Add(1) == 1 { // more records come while the first batch is written
			for i := range 3 {
				later.Go(func() { r.put(store.KV{Key: fmt.Sprint("later", i), Value: []byte(`{}`)}) })
			}
			tstest.WaitFor(t, 10*time.Second, func() error {
				r.mu.Lock()
				defer r.mu.Unlock()
				if len(r.queue) < 3 {
					return fmt.Errorf("%d records queued; want 3", len(r.queue))
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
		return st.PutBatch(store.Processed, kvs...)
	}
	if err := r.put(store.KV{Key: "first", Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	close(firstDone)
	later.Wait()
	if n := writes.Load(); n != 2 {
		t.Errorf("%d batches written; want 2", n)
	}
}
