package store

import (
	"sync"
	"time"
)

// Gather writes records nobody is waiting on right away in batches with a
// gather delay: the first Put of a batch waits the delay for others, and
// all are written in one transaction (one fsync) for everyone; those who
// came wait for that write. Whoever comes during the write starts the next
// batch. The batch goes through the store's group commit as PutBatch's
// groups do: if no commit is under way, the leader commits it itself and
// goes on committing what other writers queued meanwhile until nothing
// waits, so under a steady stream of writes its Put may return a commit
// or two after its record is on disk. Each Put returns only once its
// record is on disk.
//
// PutBatch alone shares a commit only among writes that arrive while the
// previous commit is under way; writes that come one by one (handlings
// that end at their own pace) then form small groups, each paying a whole
// commit. A gather delay trades that much latency for far fewer commits:
// the processed records of a durable message's receiver and the outcomes
// of an outbox's deliveries, written at thousands a second, share one
// commit per delay instead of one every commit or two
// (docs/BENCHMARKS.md, "Durable accepts").
type Gather struct {
	st     *Store
	bucket string
	every  time.Duration
	write  func([]KV) error // nil: into st's bucket (tests step in)

	mu      sync.Mutex  // guards queue and leading
	queue   []*batchReq // one request per record
	leading bool        // a caller is gathering or writing a batch
}

// Gather returns a Gather that writes to bucket, waiting every for a
// batch to gather.
func (s *Store) Gather(bucket string, every time.Duration) *Gather {
	return &Gather{st: s, bucket: bucket, every: every}
}

// Put writes kv (a nil Value deletes its key) with the next batch and
// returns once it is on disk, or why it is not.
func (g *Gather) Put(kv KV) error {
	req := &batchReq{bucket: g.bucket, kvs: []KV{kv}, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	if g.leading {
		g.mu.Unlock()
		return <-req.done
	}
	g.leading = true
	g.mu.Unlock()
	time.Sleep(g.every)
	g.mu.Lock()
	batch := g.queue
	g.queue, g.leading = nil, false // who comes from now on gathers the next batch
	g.mu.Unlock()
	if g.write != nil {
		kvs := make([]KV, len(batch))
		for i, q := range batch {
			kvs[i] = q.kvs[0]
		}
		err := g.write(kvs)
		for _, q := range batch {
			q.done <- err
		}
		return <-req.done
	}
	// One request per record, sharing a commit: if one cannot be written
	// (commit then retries each alone), the others still are.
	g.st.submit(batch...)
	return <-req.done
}
