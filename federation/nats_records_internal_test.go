package federation

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agentfed/agentfed/internal/store"
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
