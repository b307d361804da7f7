package federation

import (
	"sync"

	"github.com/agentfed/agentfed/internal/outbox"
)

// natsHolds writes the queued outbox entries of durable sends to NATS
// peers, group-committed: the writer takes every entry pending when it
// wakes and writes them in one transaction, while the next batch gathers.
// A send waits for its entry's batch as well as for JetStream's PubAck (the
// two run at once), so every message a caller was told is queued has its
// entry on disk and its outcome finds it after a crash; one fsync a send
// would cost more than the publish on a disk that JetStream keeps busy.
type natsHolds struct {
	n    *Node
	wake chan struct{} // the first entry of a batch is pending
	stop chan struct{}
	done chan struct{}

	flushMu sync.Mutex // held while a batch is written: unhold waits for it

	mu      sync.Mutex // guards pending and batch
	pending map[string]*OutboxEntry
	batch   *holdBatch // the batch pending entries are written with
}

// holdBatch is one write of held entries: done is closed once it is over,
// and err is then why it failed, or nil.
type holdBatch struct {
	done chan struct{}
	err  error
}

func newNATSHolds(n *Node) *natsHolds {
	h := &natsHolds{n: n, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		pending: map[string]*OutboxEntry{}, batch: &holdBatch{done: make(chan struct{})}}
	go h.run()
	return h
}

// hold has e written with the next batch, and returns that batch.
func (h *natsHolds) hold(e *OutboxEntry) *holdBatch {
	h.mu.Lock()
	h.pending[e.MessageID] = e
	b := h.batch
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return b
}

// take removes and returns id's entry if it is not written yet.
func (h *natsHolds) take(id string) *OutboxEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.pending[id]
	delete(h.pending, id)
	return e
}

// peek returns id's entry if it is not written yet.
func (h *natsHolds) peek(id string) *OutboxEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.pending[id]; e != nil {
		c := *e
		return &c
	}
	return nil
}

// unhold forgets the entry of a message JetStream did not take, written
// or not.
func (h *natsHolds) unhold(id string) {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	if h.take(id) == nil {
		if err := h.n.outbox.DeleteHeld(id); err != nil {
			h.n.log.Error("outbox: cannot delete the entry of a durable message that was not queued", "messageId", id, "err", err)
		}
	}
}

func (h *natsHolds) run() {
	defer close(h.done)
	for {
		select {
		case <-h.stop:
			h.flush()
			return
		case <-h.wake:
			h.flush()
		}
	}
}

func (h *natsHolds) flush() {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	pending, b := h.pending, h.batch
	h.pending, h.batch = map[string]*OutboxEntry{}, &holdBatch{done: make(chan struct{})}
	h.mu.Unlock()
	defer close(b.done)
	if len(pending) == 0 {
		return
	}
	entries := make([]*OutboxEntry, 0, len(pending))
	for _, e := range pending {
		entries = append(entries, e)
	}
	if b.err = h.n.outbox.Put(entries...); b.err != nil {
		h.n.log.Error("durable messages sent over NATS, but their outbox entries were not written: their status is unknown until a dead letter comes", "messages", len(entries), "err", b.err)
	}
}

// close writes what is pending and stops.
func (h *natsHolds) close() {
	close(h.stop)
	<-h.done
}

// natsHeld is the entry of a durable message sent over NATS a moment ago,
// not written yet, or nil.
func (n *Node) natsHeld(id string) *OutboxEntry {
	if l := n.nats; l != nil && l.durable != nil {
		return l.durable.holds.peek(id)
	}
	return nil
}

// errHeldByStream is why a message held by a NATS peer's stream cannot be
// cancelled.
func errHeldByStream(e *OutboxEntry) error {
	return outboxError(outbox.HeldError(e.MessageID, e.Stream))
}
