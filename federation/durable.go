package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

// onceTracker holds the durable messages being handled right now, so a
// redelivery that arrives meanwhile waits for the first instead of
// running the agent again.
type onceTracker struct {
	mu       sync.Mutex // guards inflight
	inflight map[string]chan struct{}
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
// run twice. (A crash between the agent finishing and that write can
// still run it twice: see docs/RELIABILITY.md.)
func (n *Node) deliverOnce(ctx context.Context, agent *localAgent, msg *Message) (*Message, error) {
	key := processedKey(msg.FromServer, msg.MessageID)
	for {
		if reply, err := n.processedReply(key); reply != nil || err != nil {
			return reply, err
		}
		n.once.mu.Lock()
		wait, busy := n.once.inflight[key]
		if !busy {
			n.once.inflight[key] = make(chan struct{})
		}
		n.once.mu.Unlock()
		if !busy {
			break
		}
		select { // the same message is being handled: wait for its reply
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: message %q is still being handled", ErrTimeout, msg.MessageID)
		}
	}
	defer func() {
		n.once.mu.Lock()
		close(n.once.inflight[key])
		delete(n.once.inflight, key)
		n.once.mu.Unlock()
	}()
	// Look again now that this call owns the message: a first delivery may
	// have recorded its reply between the look above and taking ownership.
	if reply, err := n.processedReply(key); reply != nil || err != nil {
		return reply, err
	}
	reply, err := n.deliverLocal(ctx, agent, msg, nil)
	if err != nil {
		return nil, err // not recorded: a retry may run the agent again
	}
	b, err := json.Marshal(processedEntry{At: time.Now().UnixMilli(), Reply: reply})
	if err == nil {
		err = n.store.PutBatch(store.Processed, store.KV{Key: key, Value: b})
	}
	if err != nil {
		return nil, fmt.Errorf("record handled message %q: %w", msg.MessageID, err)
	}
	return reply, nil
}

func (n *Node) processedReply(key string) (*Message, error) {
	b, err := n.store.Get(store.Processed, key)
	if err != nil || b == nil {
		return nil, err
	}
	var e processedEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return e.Reply, nil
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
	// Op is status (one message), list, retry or drop.
	Op        string   `json:"op"`
	MessageID string   `json:"messageId,omitempty"`
	States    []string `json:"states,omitempty"` // for list; default all
	Limit     int      `json:"limit,omitempty"`  // for list; default 100
}

// OutboxList is the payload of federation.outbox list.
type OutboxList struct {
	Messages []*OutboxEntry `json:"messages"`
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
		return n.Outbox(p.States, p.Limit)
	case "retry":
		return n.RetryMessage(p.MessageID)
	case "drop":
		if err := n.DropMessage(p.MessageID); err != nil {
			return nil, err
		}
		return map[string]any{"dropped": p.MessageID}, nil
	}
	return nil, fmt.Errorf("%w: op %q is not one of status, list, retry, drop", ErrInvalidParams, p.Op)
}

// MessageStatus returns a durable message's state and, once answered, the
// answer.
func (n *Node) MessageStatus(id string) (*OutboxEntry, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: messageId is required", ErrInvalidParams)
	}
	return n.outbox.get(id)
}

// Outbox lists durable messages in the given states (all when empty),
// oldest first; limit defaults to 100.
func (n *Node) Outbox(states []string, limit int) (*OutboxList, error) {
	for _, s := range states {
		if !contains([]string{StateQueued, StateDelivered, StateFailed, StateDead}, s) {
			return nil, fmt.Errorf("%w: state %q is not one of queued, delivered, failed, dead", ErrInvalidParams, s)
		}
	}
	if limit <= 0 {
		limit = 100
	}
	msgs, err := n.outbox.list(states, limit)
	if msgs == nil {
		msgs = []*OutboxEntry{}
	}
	return &OutboxList{Messages: msgs}, err
}

// RetryMessage queues a dead or failed durable message again.
func (n *Node) RetryMessage(id string) (*OutboxEntry, error) {
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("%w: messageId is required", ErrInvalidParams)
	}
	return n.outbox.retry(id)
}

// DropMessage deletes a durable message that is no longer queued.
func (n *Node) DropMessage(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%w: messageId is required", ErrInvalidParams)
	}
	return n.outbox.drop(id)
}
