package federation

import (
	"context"
	"sync"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
)

// maxA2ASeen bounds how many A2A message ids a2aDedup remembers per
// agent; the oldest are forgotten first.
const maxA2ASeen = 4096

// a2aDedup answers a SendMessage whose message id the same caller already
// sent (a client retrying after a lost response) with the task that
// message started, so that the agent does not run twice. It remembers
// the last maxA2ASeen ids per agent, in memory: a retry after a gateway
// restart runs the agent again.
type a2aDedup struct {
	a2asrv.PassthroughCallInterceptor
	h a2asrv.RequestHandler // set once, before the handler serves

	mu    sync.Mutex            // guards seen and order
	seen  map[string]a2a.TaskID // caller + "\x00" + message id → task
	order []string              // keys of seen, oldest first
}

func newA2ADedup() *a2aDedup { return &a2aDedup{seen: map[string]a2a.TaskID{}} }

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
	tid, seen := d.seen[dedupKey(cc.User, r.Message.ID)]
	d.mu.Unlock()
	if !seen {
		return ctx, nil, nil
	}
	task, err := d.h.GetTask(ctx, &a2a.GetTaskRequest{ID: tid})
	if err != nil {
		return ctx, nil, err
	}
	return ctx, task, nil
}

// remember records the task that the message an execution started for
// runs in.
func (d *a2aDedup) remember(ec *a2asrv.ExecutorContext) {
	if ec.Message == nil || ec.Message.ID == "" {
		return
	}
	key, tid := dedupKey(ec.User, ec.Message.ID), ec.TaskID
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.seen[key]; ok {
		return
	}
	if len(d.order) >= maxA2ASeen {
		delete(d.seen, d.order[0])
		d.order = d.order[1:]
	}
	d.seen[key] = tid
	d.order = append(d.order, key)
}
