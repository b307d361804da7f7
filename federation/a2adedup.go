package federation

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/agentfed/agentfed/internal/store"
)

// maxA2ASeen bounds how many A2A message ids a2aDedup remembers per
// agent; the oldest are forgotten first, and any older than
// maxA2ATaskAge.
const maxA2ASeen = 4096

// a2aDedup answers a SendMessage whose message id the same caller already
// sent (a client retrying after a lost response) with the task that
// message started, so that the agent does not run twice. It remembers
// the last maxA2ASeen ids per agent in the gateway's store
// (store.A2ASeen, key agent + "\x00" + caller + "\x00" + message id),
// written before the agent runs, so a retry after a restart is answered
// too.
type a2aDedup struct {
	a2asrv.PassthroughCallInterceptor
	h     a2asrv.RequestHandler // set once, before the handler serves
	st    *store.Store
	agent string
	log   *slog.Logger

	mu    sync.Mutex         // guards seen and order
	seen  map[string]a2aSeen // caller + "\x00" + message id → task
	order []string           // keys of seen, oldest first
}

// a2aSeen is one remembered message id, as stored.
type a2aSeen struct {
	Task a2a.TaskID `json:"task"`
	At   time.Time  `json:"at"`
}

// loadA2ADedup reads agent's remembered message ids from st, forgetting
// those older than maxA2ATaskAge.
func loadA2ADedup(st *store.Store, agent string, log *slog.Logger, now time.Time) (*a2aDedup, error) {
	d := &a2aDedup{st: st, agent: agent, log: log, seen: map[string]a2aSeen{}}
	prefix := agent + "\x00"
	var drop []store.KV
	err := st.Scan(store.A2ASeen, agent, func(key string, v []byte) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		var s a2aSeen
		if json.Unmarshal(v, &s) != nil || now.Sub(s.At) > maxA2ATaskAge {
			drop = append(drop, store.KV{Key: key})
			return true
		}
		d.seen[key[len(prefix):]] = s
		d.order = append(d.order, key[len(prefix):])
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(d.order, func(a, b string) int { return d.seen[a].At.Compare(d.seen[b].At) })
	for len(d.order) > maxA2ASeen {
		drop = append(drop, store.KV{Key: prefix + d.order[0]})
		delete(d.seen, d.order[0])
		d.order = d.order[1:]
	}
	if len(drop) > 0 {
		if err := st.PutBatch(store.A2ASeen, drop...); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func dedupKey(user *a2asrv.User, messageID string) string {
	name := ""
	if user != nil {
		name = user.Name
	}
	return name + "\x00" + messageID
}

func (d *a2aDedup) Before(ctx context.Context, cc *a2asrv.CallContext, req *a2asrv.Request) (context.Context, any, error) {
	r, ok := req.Payload.(*a2a.SendMessageRequest)
	if !ok || r.Message == nil || r.Message.ID == "" {
		return ctx, nil, nil
	}
	d.mu.Lock()
	s, seen := d.seen[dedupKey(cc.User, r.Message.ID)]
	d.mu.Unlock()
	if !seen {
		return ctx, nil, nil
	}
	task, err := d.h.GetTask(ctx, &a2a.GetTaskRequest{ID: s.Task})
	if err != nil {
		return ctx, nil, err
	}
	return ctx, task, nil
}

// remember records, on disk, the task that the message an execution
// started runs in; it returns once the record is written, before the
// agent runs.
func (d *a2aDedup) remember(ec *a2asrv.ExecutorContext) {
	if ec.Message == nil || ec.Message.ID == "" {
		return
	}
	key, s := dedupKey(ec.User, ec.Message.ID), a2aSeen{Task: ec.TaskID, At: time.Now()}
	b, _ := json.Marshal(s)
	kvs := []store.KV{{Key: d.agent + "\x00" + key, Value: b}}
	d.mu.Lock()
	if _, ok := d.seen[key]; ok {
		d.mu.Unlock()
		return
	}
	if len(d.order) >= maxA2ASeen {
		kvs = append(kvs, store.KV{Key: d.agent + "\x00" + d.order[0]})
		delete(d.seen, d.order[0])
		d.order = d.order[1:]
	}
	d.seen[key] = s
	d.order = append(d.order, key)
	d.mu.Unlock()
	if err := d.st.PutBatch(store.A2ASeen, kvs...); err != nil {
		d.log.Warn("A2A message id not remembered on disk; a retry after a restart would run it again", "agent", d.agent, "err", err)
	}
}
