package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agentfed/agentfed/internal/outbox"
	"github.com/agentfed/agentfed/internal/store"
)

// onceTracker holds the durable messages being handled right now, so a
// redelivery that arrives meanwhile waits for the first instead of
// running the agent again, and the replies whose record could not be
// written, so a redelivery after a storage error is answered without
// running the agent again either.
type onceTracker struct {
	mu             sync.Mutex // guards inflight, unrecorded and unrecordedSize
	inflight       map[string]*handling
	unrecorded     map[string][]byte // processed records the store refused, by processedKey
	unrecordedSize int               // bytes in unrecorded; at most maxUnrecordedBytes

	wg     sync.WaitGroup     // handlings running
	ctx    context.Context    // ends when Shutdown stops waiting for handlings
	cancel context.CancelFunc // ends ctx
}

// These bound the replies kept in memory while the store fails. Past
// them, a reply that cannot be written is forgotten, and its redelivery
// runs the agent again.
const (
	maxUnrecorded      = 4096
	maxUnrecordedBytes = 64 << 20
)

func newOnceTracker() *onceTracker {
	ctx, cancel := context.WithCancel(context.Background())
	return &onceTracker{inflight: map[string]*handling{}, unrecorded: map[string][]byte{}, ctx: ctx, cancel: cancel}
}

// handling is one durable message being handled. reply and err are set
// before done is closed.
type handling struct {
	done  chan struct{}
	reply *Message
	err   error
}

// drain waits for the handlings in flight until ctx ends, then cancels
// them and waits for them to stop. Nothing may start a handling after
// drain is called.
func (t *onceTracker) drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	defer t.cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.cancel()
		<-done
		return fmt.Errorf("durable handlings still running were cancelled: %w", ctx.Err())
	}
}

// processedEntry is what a receiver keeps of a handled durable message.
type processedEntry struct {
	At    int64    `json:"at"` // Unix ms
	Reply *Message `json:"reply"`
}

func processedKey(server, messageID string) string { return server + "\x00" + messageID }

// deliverOnce hands a durable message to its agent unless this gateway has
// already handled it for that sender, in which case the kept reply is
// returned. The reply is on disk before it is sent, so a sender that
// retries after a lost answer gets the same answer and the agent is not
// run twice.
//
// Once begun, the handling belongs to the node, not to the request: it
// runs to its end (bounded by the relay's deadline) and is recorded even
// if the sender's connection drops or the sender cancels, and a
// redelivery that arrives meanwhile waits for it and gets its outcome.
// (A crash between the agent finishing and the write can still run it
// twice: see docs/RELIABILITY.md.)
func (n *Node) deliverOnce(ctx context.Context, agent *localAgent, msg *Message) (*Message, error) {
	key := processedKey(msg.FromServer, msg.MessageID)
	t := n.once
	t.mu.Lock()
	if rec := t.unrecorded[key]; rec != nil {
		t.mu.Unlock()
		return n.recordUnrecorded(key, msg.MessageID, rec)
	}
	h := t.inflight[key]
	if h == nil {
		h = &handling{done: make(chan struct{})}
		t.inflight[key] = h
		t.wg.Add(1)
		go n.handleDurable(ctx, key, h, agent, msg)
	}
	t.mu.Unlock()
	select {
	case <-h.done:
		return h.reply, h.err
	case <-ctx.Done():
		select {
		case <-h.done: // ended as the caller gave up (a redelivery's kept reply is read there too)
			return h.reply, h.err
		default:
		}
		return nil, fmt.Errorf("%w: message %q is still being handled; its reply will be kept for the retry", ErrTimeout, msg.MessageID)
	}
}

// handleDurable runs the agent for a durable message until the relay's
// deadline, whatever happens to the request that started it, and records
// the reply.
func (n *Node) handleDurable(reqCtx context.Context, key string, h *handling, agent *localAgent, msg *Message) {
	t := n.once
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.inflight, key)
		t.mu.Unlock()
		close(h.done)
	}()
	deadline, ok := reqCtx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Duration(n.cfg.Federation.DefaultTimeoutMs) * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(reqCtx), deadline)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel) // the node stopped waiting
	defer stop()
	// The one look for a kept reply, made once this handling owns the
	// message: looked up before, a handling that just ended could record
	// its reply between the look and the ownership. (Redeliveries are rare,
	// so each message is read once, here, not twice.)
	if h.reply, h.err = n.processedReply(key); h.reply != nil || h.err != nil {
		return
	}
	reply, err := n.deliverLocal(ctx, agent, msg, false)
	if err != nil {
		h.err = err // not recorded: a retry may run the agent again
		return
	}
	h.reply, h.err = n.recordProcessed(key, msg.MessageID, reply)
}

// recordEvery is how long the first processed record of a batch waits
// for others, to be written in one transaction (one fsync) with them
// (store.Gather). Nobody waits on one record in particular: the sender was
// told "queued" when its outbox (or JetStream) stored the message, and
// its delivery waits for the reply anyway. Written as each handling ended,
// records formed groups of a few (over NATS, where JetStream hands the
// messages over one by one, about four), and a receiver fsynced several
// times as often as its senders (docs/BENCHMARKS.md, "Durable over NATS
// with outcomes" and "Durable accepts").
const recordEvery = 10 * time.Millisecond

// recordProcessed writes a handled message's reply, with the next batch
// of records. When the store fails, the record is kept in memory
// (bounded) and the error is retryable: the redelivery writes it instead
// of running the agent again.
func (n *Node) recordProcessed(key, messageID string, reply *Message) (*Message, error) {
	b, err := processedEntry{At: time.Now().UnixMilli(), Reply: reply}.appendJSON(nil)
	if err != nil {
		return nil, fmt.Errorf("record handled message %q: %w", messageID, err)
	}
	if err := n.records.Put(store.KV{Key: key, Value: b}); err != nil {
		t := n.once
		t.mu.Lock()
		if len(t.unrecorded) < maxUnrecorded && t.unrecordedSize+len(b) <= maxUnrecordedBytes {
			t.unrecorded[key] = b
			t.unrecordedSize += len(b)
		}
		t.mu.Unlock()
		return nil, n.recordFailed(messageID, err)
	}
	return reply, nil
}

// recordUnrecorded tries again to write a record the store refused, and
// answers with its reply once it is on disk.
func (n *Node) recordUnrecorded(key, messageID string, rec []byte) (*Message, error) {
	if err := n.store.PutBatch(store.Processed, store.KV{Key: key, Value: rec}); err != nil {
		return nil, n.recordFailed(messageID, err)
	}
	t := n.once
	t.mu.Lock()
	if _, ok := t.unrecorded[key]; ok {
		delete(t.unrecorded, key)
		t.unrecordedSize -= len(rec)
	}
	t.mu.Unlock()
	var e processedEntry
	if err := json.Unmarshal(rec, &e); err != nil {
		return nil, err
	}
	return e.Reply, nil
}

func (n *Node) recordFailed(messageID string, err error) error {
	if ok, suppressed := n.remoteLog.Allow(); ok {
		n.log.Error("cannot record a handled durable message", "messageId", messageID, "err", err, "suppressed", suppressed)
	}
	return n.storageError(fmt.Sprintf("record handled message %q", messageID), err)
}

func (n *Node) processedReply(key string) (*Message, error) {
	b, err := n.store.Get(store.Processed, key)
	if err != nil {
		return nil, n.storageError("read handled messages", err)
	}
	if b == nil {
		return nil, nil
	}
	var e processedEntry
	if err := json.Unmarshal(b, &e); err != nil { // retrying cannot mend it
		return nil, fmt.Errorf("gateway %q keeps an unreadable record of this message: %v; run agentfed store check", n.serverID, err)
	}
	return e.Reply, nil
}

// storageError reports that this gateway's store failed while it handled
// a peer's request. It is retryable: the message is not lost and nothing
// about it is final, so the sender tries again, and it succeeds once the
// disk recovers.
func (n *Node) storageError(what string, err error) error {
	return fmt.Errorf("%w: gateway %q could not %s in %s: %v; the sender retries",
		ErrStorage, n.serverID, what, store.FileName, err)
}

// pruneHandled forgets, every minute until ctx ends, the handled durable
// messages older than federation.durable.retentionMs and the synced
// contexts older than a day. (The outbox prunes its own entries.)
func (n *Node) pruneHandled(ctx context.Context) {
	retention := time.Duration(n.cfg.Federation.Durable.RetentionMs) * time.Millisecond
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.pruneProcessed(time.Now().Add(-retention))
			n.contexts.prune(time.Now().Add(-processedKeep))
		}
	}
}

// pruneProcessed forgets handled durable messages older than before.
func (n *Node) pruneProcessed(before time.Time) {
	n.store.DeleteIf(store.Processed, func(_ string, v []byte) bool {
		var e processedEntry
		return json.Unmarshal(v, &e) == nil && e.At < before.UnixMilli()
	})
}

// OutboxParams are the params of federation.outbox.
type OutboxParams struct {
	// Op is status (one message), list, retry, cancel or drop.
	Op        string   `json:"op"`
	MessageID string   `json:"messageId,omitempty"`
	States    []string `json:"states,omitempty"` // for list; default all
	Limit     int      `json:"limit,omitempty"`  // for list; default 100, at most 1000
	After     string   `json:"after,omitempty"`  // for list: the next of the previous page
}

// OutboxList is the payload of federation.outbox list.
type OutboxList struct {
	Messages []*OutboxEntry `json:"messages"`
	// Next, when not empty, is the After that lists the following page.
	Next string `json:"next,omitempty"`
}

// OutboxQuery selects one page of the outbox.
type OutboxQuery struct {
	States []string // default all
	After  string   // the Next of the previous page; empty: from the oldest
	Limit  int      // 1 to 1000; 0: 100
}

func (n *Node) serveOutbox(raw json.RawMessage) (any, error) {
	var p OutboxParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("%w: federation.outbox params: %v", ErrInvalidParams, err)
	}
	switch p.Op {
	case "status":
		return n.MessageStatus(p.MessageID)
	case "list":
		return n.OutboxPage(OutboxQuery{States: p.States, After: p.After, Limit: p.Limit})
	case "retry":
		return n.RetryMessage(p.MessageID)
	case "cancel":
		return n.CancelMessage(p.MessageID)
	case "drop":
		if err := n.DropMessage(p.MessageID); err != nil {
			return nil, err
		}
		return map[string]any{"dropped": p.MessageID}, nil
	}
	return nil, fmt.Errorf("%w: op %.64q is not one of status, list, retry, cancel, drop", ErrInvalidParams, p.Op)
}

// MessageStatus returns a durable message's state and, once answered, the
// answer.
func (n *Node) MessageStatus(id string) (*OutboxEntry, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: messageId is required", ErrInvalidParams)
	}
	if e := n.natsHeld(id); e != nil {
		return e, nil
	}
	e, err := n.outbox.Get(id)
	return e, outboxError(err)
}

// Outbox lists the first page of durable messages in the given states
// (all when empty), oldest first; limit defaults to 100.
func (n *Node) Outbox(states []string, limit int) (*OutboxList, error) {
	return n.OutboxPage(OutboxQuery{States: states, Limit: limit})
}

// OutboxPage lists one page of durable messages, oldest first. A page
// holds at most q.Limit entries and always fits one frame; its Next
// continues the listing.
func (n *Node) OutboxPage(q OutboxQuery) (*OutboxList, error) {
	for _, s := range q.States {
		if !outbox.ValidState(s) {
			return nil, fmt.Errorf("%w: state %.64q is not one of queued, delivered, failed, dead", ErrInvalidParams, s)
		}
	}
	switch {
	case q.Limit == 0:
		q.Limit = 100
	case q.Limit < 0 || q.Limit > outbox.MaxPage:
		return nil, fmt.Errorf("%w: limit %d is not from 1 to %d; list further pages with after (--after) set to the previous page's next",
			ErrInvalidParams, q.Limit, outbox.MaxPage)
	}
	if len(q.After) > 128 {
		return nil, fmt.Errorf("%w: after is %d bytes; give the next of a previous page, a message id", ErrInvalidParams, len(q.After))
	}
	msgs, next, err := n.outbox.List(q.States, q.After, q.Limit)
	if msgs == nil {
		msgs = []*OutboxEntry{}
	}
	return &OutboxList{Messages: msgs, Next: next}, err
}

// RetryMessage queues a dead or failed durable message again.
func (n *Node) RetryMessage(id string) (*OutboxEntry, error) {
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("%w: messageId is required", ErrInvalidParams)
	}
	e, err := n.outbox.Retry(id)
	return e, outboxError(err)
}

// CancelMessage takes a queued durable message out of the queue: it is
// dead, with lastError CANCELLED, and never delivered afterwards. An
// attempt in flight is stopped first; if the peer answered it before that,
// the message is delivered (or failed) and cancel says so.
func (n *Node) CancelMessage(id string) (*OutboxEntry, error) {
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("%w: messageId is required", ErrInvalidParams)
	}
	if e := n.natsHeld(id); e != nil {
		return nil, errHeldByStream(e)
	}
	e, err := n.outbox.Cancel(id)
	return e, outboxError(err)
}

// DropMessage deletes a durable message that is no longer queued.
func (n *Node) DropMessage(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%w: messageId is required", ErrInvalidParams)
	}
	return outboxError(n.outbox.Drop(id))
}
