package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// measureDurable measures durable sends through the outbox. A durable Send
// answers "queued" once the message is on disk (bbolt, fsynced; concurrent
// callers share a commit) and the outbox then delivers it with retries.
// accepted is how many are answered per second with o.Concurrency senders;
// accept-p50 is one sender's wait, a whole commit to itself; delivered
// counts the concurrent phase's messages from its start until the outbox
// has delivered the last of them. fsync-p50 is the disk's time for one
// synced page write (fsyncTimes), before and after the senders.
// fsyncSamples is how many synced writes each fsync baseline times.
const fsyncSamples = 200

func measureDurable(ctx context.Context, o *Options, s *sample) Result {
	r := Result{Note: fmt.Sprintf("Send with durable: true to an echo gateway, storage under %s; accepted: %d concurrent senders; delivered: until the outbox delivered every accepted message",
		os.TempDir(), o.Concurrency)}
	p, err := startRelayPair(o, 1)
	if err != nil {
		return fail(r, err)
	}
	defer p.close()
	var (
		keep atomic.Bool
		mu   sync.Mutex // guards ids
		ids  []string   // the concurrent phase's messages
	)
	req := federation.SendRequest{PeerID: p.peers[0], Message: s.content, MessageOptions: federation.MessageOptions{Durable: true}}
	op := func(ctx context.Context) error {
		res, err := p.main.Send(ctx, req)
		switch {
		case err != nil:
			return err
		case res.Status != federation.StatusQueued:
			return fmt.Errorf("%w: durable send: %s %v", errNotOK, res.Status, res.Error)
		}
		if keep.Load() {
			mu.Lock()
			ids = append(ids, res.MessageID)
			mu.Unlock()
		}
		return nil
	}
	syncs, err := fsyncTimes(os.TempDir(), fsyncSamples)
	if err != nil {
		return fail(r, err)
	}
	l, err := timeLoop(ctx, o.Duration/4, op)
	if err != nil {
		return fail(r, err)
	}
	l.addTo(&r, "accept-")
	keep.Store(true)
	start := time.Now()
	n, elapsed, err := count(ctx, o.Concurrency, o.Duration/4, op)
	if err != nil {
		return fail(r, err)
	}
	keep.Store(false)
	r.add("accepted", float64(n)/elapsed.Seconds(), unitRate)
	after, err := fsyncTimes(os.TempDir(), fsyncSamples) // the disk's speed, before and after the senders
	if err != nil {
		return fail(r, err)
	}
	syncs = append(syncs, after...)
	slices.Sort(syncs)
	r.add("fsync-p50", micros(syncs.percentile(50)), unitMicros)
	done, err := waitDelivered(ctx, p.main, ids, time.Now().Add(max(o.Duration, 2*time.Second)))
	r.add("delivered", float64(done)/time.Since(start).Seconds(), unitRate)
	switch {
	case errors.Is(err, errUndelivered):
		r.Note += fmt.Sprintf("; the wait ended with %d of %d delivered", done, len(ids))
	case err != nil:
		return fail(r, err)
	}
	return r
}

// errUndelivered ends a wait for the outbox that took too long: the
// delivered figure then counts what was delivered by then.
var errUndelivered = errors.New("bench: the outbox did not deliver every accepted message in time")

// waitDelivered polls the outbox until every message of ids is delivered
// or deadline passes, and returns how many of them, in order, were.
func waitDelivered(ctx context.Context, n *federation.Node, ids []string, deadline time.Time) (int, error) {
	for i := 0; i < len(ids); {
		e, err := n.MessageStatus(ids[i])
		switch {
		case err != nil:
			return i, err
		case e.State == federation.StateDelivered:
			i++
			continue
		case e.State != federation.StateQueued:
			return i, fmt.Errorf("%w: durable message %s is %s: %v", errNotOK, ids[i], e.State, e.LastError)
		case time.Now().After(deadline):
			return i, errUndelivered
		}
		sleep(ctx, time.Millisecond)
		if err := ctx.Err(); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}
