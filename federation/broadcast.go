package federation

import (
	"context"
	"time"
)

// deadlines are a broadcast's timeouts: one context, and so one timer,
// per distinct timeout among its peers (usually one for all of them),
// instead of one per peer. Each is counted from the first send that uses
// it; the sends before a peer's take microseconds each, so a peer's
// deadline comes at most that much sooner than a timer of its own would.
// Not safe for concurrent use: the broadcasting goroutine alone starts
// deliveries.
type deadlines struct {
	parent context.Context
	list   []deadline
}

type deadline struct {
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
}

func newDeadlines(parent context.Context) *deadlines { return &deadlines{parent: parent} }

// get returns the context that ends timeout after the first send given it.
func (ds *deadlines) get(timeout time.Duration) context.Context {
	for _, d := range ds.list {
		if d.timeout == timeout {
			return d.ctx
		}
	}
	ctx, cancel := context.WithTimeout(ds.parent, timeout)
	ds.list = append(ds.list, deadline{timeout, ctx, cancel})
	return ctx
}

// stop releases the timers, once every delivery has ended.
func (ds *deadlines) stop() {
	for _, d := range ds.list {
		d.cancel()
	}
}

// noCancel is the cancel of a delivery whose deadline is shared.
func noCancel() {}
