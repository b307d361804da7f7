package federation

import (
	"sync"
	"time"

	"github.com/agentfed/agentfed/internal/outbox"
)

// natsHoldEvery is how often the outbox entries of durable sends over NATS
// are written, all at once.
const natsHoldEvery = 50 * time.Millisecond

// natsHolds writes the queued outbox entries of durable sends to NATS
// peers in batches. A send is queued when JetStream has stored the
// message (its PubAck); its entry is only the sender's record of it, so
// the send does not wait for an fsync of its own: on a disk that JetStream
// keeps busy, one per send would cost more than the publish. A crash
// loses at most the last natsHoldEvery of entries, not the messages:
// their outcomes then find no entry (a dead letter makes one).
type natsHolds struct {
	n    *Node
	wake chan struct{} // the first entry of a batch is pending
	stop chan struct{}
	done chan struct{}

	flushMu sync.Mutex // held while a batch is written: unhold waits for it

	mu      sync.Mutex // guards pending
	pending map[string]*OutboxEntry
}

func newNATSHolds(n *Node) *natsHolds {
	h := &natsHolds{n: n, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), pending: map[string]*OutboxEntry{}}
	go h.run()
	return h
}

// hold has e written with the next batch.
func (h *natsHolds) hold(e *OutboxEntry) {
	h.mu.Lock()
	h.pending[e.MessageID] = e
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
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
		}
		t := time.NewTimer(natsHoldEvery)
		select {
		case <-h.stop:
		case <-t.C:
		}
		t.Stop()
		h.flush()
	}
}

func (h *natsHolds) flush() {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	batch := h.pending
	h.pending = map[string]*OutboxEntry{}
	h.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	entries := make([]*OutboxEntry, 0, len(batch))
	for _, e := range batch {
		entries = append(entries, e)
	}
	if err := h.n.outbox.Put(entries...); err != nil {
		h.n.log.Error("durable messages sent over NATS, but their outbox entries were not written: their status is unknown until a dead letter comes", "messages", len(entries), "err", err)
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
