package outbox

import (
	"encoding/json"
	"fmt"

	"github.com/agentfed/agentfed/internal/store"
)

// FinishBatch settles many entries in one store transaction (one read of
// them all, one write, one fsync), for an owner that learns the outcomes of
// messages held by a stream in batches. It reads the entries of ids and
// hands those it has to final, by message id (an id without an entry is
// not in the map); final sets the final state of those it settles and
// returns the entries to write, which may include new ones. Every entry it
// returns must be final (StateDelivered, StateFailed or StateDead), or
// nothing is written. An entry that cannot be decoded is logged and left
// out of the map, so that it does not hold up the others. final runs inside the transaction, once: it must not
// use the outbox. On a storage error nothing is written and the error is
// ErrStorage.
//
// Unlike Finish it does not stop an attempt in flight: it is meant for
// entries the outbox does not deliver itself (Entry.Stream).
func (o *Outbox[M, R]) FinishBatch(ids []string, final func(stored map[string]*Entry[M, R]) []*Entry[M, R]) error {
	var bad error // a refusal of final's entries, not a storage error
	err := o.st.Update(store.Outbox, ids, func(values [][]byte) ([]store.KV, error) {
		stored := make(map[string]*Entry[M, R], len(ids))
		for i, v := range values {
			if v == nil {
				continue
			}
			var e Entry[M, R]
			if err := json.Unmarshal(v, &e); err != nil { // as if missing: it cannot be settled, and must not stop the others
				o.log.Error("outbox entry unreadable", "messageId", ids[i], "err", err)
				continue
			}
			stored[ids[i]] = &e
		}
		settled := final(stored)
		kvs := make([]store.KV, len(settled))
		for i, e := range settled {
			if e.State != StateDelivered && e.State != StateFailed && e.State != StateDead {
				bad = fmt.Errorf("outbox: finish message %q as %q: not a final state", e.MessageID, e.State)
				return nil, bad
			}
			b, err := e.encode()
			if err != nil {
				return nil, err
			}
			kvs[i] = store.KV{Key: e.MessageID, Value: b}
		}
		return kvs, nil
	})
	if err != nil && bad == nil {
		return &refusal{ErrStorage, fmt.Sprintf("finish %d outbox entries: %v", len(ids), err)}
	}
	return err
}
