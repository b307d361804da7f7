package federation

// The processed records of durable messages over NATS, group-committed
// with a gather delay. Over NATS the sender was told "queued" when
// JetStream stored the message, so nobody waits on the receiver's handling
// of one message: the first record of a batch waits natsRecordEvery for
// others, and all are written in one transaction (one fsync). Without the
// delay the handlers, which JetStream hands over one by one, formed groups
// of about four records, and the receiver fsynced nine times as often as
// the sender (docs/BENCHMARKS.md, "Durable over NATS with outcomes").
// Each record is still on disk before its outcome is published and its
// message acked.

import (
	"context"
	"sync"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

const natsRecordEvery = 10 * time.Millisecond // for more records to write with the first of a batch

// natsRecords gathers processed records into batches: the first caller
// of a batch waits natsRecordEvery, then writes what has come meanwhile
// for everyone; those who came wait for that write. Whoever comes during
// the write starts the next batch: a caller writes one batch, never
// those of a steady stream after its own.
type natsRecords struct {
	st    *store.Store
	write func([]store.KV) error // nil: PutBatch into st's processed records (tests step in)

	mu      sync.Mutex // guards queue and leading
	queue   []*recordReq
	leading bool // a caller is gathering or writing a batch
}

type recordReq struct {
	kv   store.KV
	done chan error
}

// put writes kv to the store's processed records with the next batch and
// returns once it is on disk, or why it is not.
func (r *natsRecords) put(kv store.KV) error {
	req := &recordReq{kv: kv, done: make(chan error, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, req)
	if r.leading {
		r.mu.Unlock()
		return <-req.done
	}
	r.leading = true
	r.mu.Unlock()
	time.Sleep(natsRecordEvery)
	r.mu.Lock()
	batch := r.queue
	r.queue, r.leading = nil, false // who comes from now on gathers the next batch
	r.mu.Unlock()
	kvs := make([]store.KV, len(batch))
	for i, q := range batch {
		kvs[i] = q.kv
	}
	write := r.write
	if write == nil {
		write = func(kvs []store.KV) error { return r.st.PutBatch(store.Processed, kvs...) }
	}
	err := write(kvs)
	for _, q := range batch {
		q.done <- err
	}
	return <-req.done
}

type natsRecordsKey struct{}

// withNATSRecords has the processed records of the durable messages
// handled under ctx written by r.
func withNATSRecords(ctx context.Context, r *natsRecords) context.Context {
	return context.WithValue(ctx, natsRecordsKey{}, r)
}

// putProcessed writes a processed record: with the batch of ctx's
// natsRecords, or at once (group-committed with concurrent writes).
func (n *Node) putProcessed(ctx context.Context, kv store.KV) error {
	if r, ok := ctx.Value(natsRecordsKey{}).(*natsRecords); ok {
		return r.put(kv)
	}
	return n.store.PutBatch(store.Processed, kv)
}
