package federation

// The receiving side of outcomes, batched: a gateway handling many durable
// messages of one sender publishes their outcomes together, one JetStream
// message (a JSON array of outcomes) per batch, instead of one replicated
// write each. Each handler still waits for the PubAck of the batch that
// holds its outcome before it acks its message.

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	natsOutcomePubEvery = 2 * time.Millisecond // for more outcomes to publish with the first of a batch
	natsOutcomePubMax   = 256                  // outcomes in one published batch at most
)

// outcomeReq is one outcome waiting to be published.
type outcomeReq struct {
	sender string
	data   []byte // the outcome's JSON
	done   chan error
}

// natsOutcomePub batches the outcomes this gateway publishes.
type natsOutcomePub struct {
	n      *Node
	d      *natsDurable
	ctx    context.Context // ends at stop: a handler still waiting asks for redelivery
	cancel context.CancelFunc
	reqs   chan *outcomeReq
	wg     sync.WaitGroup // run and the publishes it started
}

func newNATSOutcomePub(ctx context.Context, n *Node, d *natsDurable) *natsOutcomePub {
	p := &natsOutcomePub{n: n, d: d, reqs: make(chan *outcomeReq, natsOutcomePubMax)}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Go(p.run)
	return p
}

// publish has data published to sender with the next batch, and returns
// once JetStream has stored it.
func (p *natsOutcomePub) publish(ctx context.Context, sender string, data []byte) error {
	r := &outcomeReq{sender: sender, data: data, done: make(chan error, 1)}
	select {
	case p.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

func (p *natsOutcomePub) run() {
	for {
		var first *outcomeReq
		select {
		case first = <-p.reqs:
		case <-p.ctx.Done():
			return
		}
		bySender := map[string][]*outcomeReq{}
		for _, r := range collect(p.reqs, first, natsOutcomePubMax, natsOutcomePubEvery) {
			bySender[r.sender] = append(bySender[r.sender], r)
		}
		for sender, rs := range bySender {
			p.wg.Go(func() { p.send(sender, rs) })
		}
	}
}

// send publishes rs to sender in as few messages as fit the NATS
// system's max payload, and tells each how it went.
func (p *natsOutcomePub) send(sender string, rs []*outcomeReq) {
	limit := min(int(p.d.maxPayload), natsMaxOutcome) - 1024 // room for headers
	for len(rs) > 0 {
		size, k := 1+len(rs[0].data)+1, 1 // [first]
		for ; k < len(rs) && size+len(rs[k].data)+1 <= limit; k++ {
			size += len(rs[k].data) + 1
		}
		data, sep := make([]byte, 0, size), byte('[') // one allocation, not one per doubling
		for _, r := range rs[:k] {
			data = append(append(data, sep), r.data...)
			sep = ','
		}
		data = append(data, ']')
		m := nats.NewMsg(natsResultSubject(sender, p.n.serverID))
		m.Data = data
		err := p.n.publishNATS(p.ctx, p.d.js, m, nil)
		for _, r := range rs[:k] {
			r.done <- err
		}
		rs = rs[k:]
	}
}

// stop gives up the batches in flight (their handlers ask for
// redelivery, and the kept reply goes out then) and waits for them: a
// stopping gateway does not wait out an election to publish outcomes.
func (p *natsOutcomePub) stop() {
	p.cancel()
	p.wg.Wait()
}
