package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// A write to a peer that stopped reading blocks once the socket buffers
// are full. Bounding each write with a deadline would cost a timer per
// frame; instead each connection keeps a writeGauge, and a watchdog cuts
// the connections whose writes have made no progress for too long.

// writeGauge tracks one connection's writes without reading the clock
// on the write path: writes count how many are in progress or waiting,
// done how many have finished. The watchdog that calls stalled keeps the
// rest, so only one goroutine may call it.
type writeGauge struct {
	writing atomic.Int32
	done    atomic.Uint64

	seen  uint64    // done at the watchdog's last look
	since time.Time // when the watchdog first saw writes waiting with done at seen
}

func (g *writeGauge) begin() { g.writing.Add(1) }

func (g *writeGauge) end() {
	g.done.Add(1)
	g.writing.Add(-1)
}

// stalled reports whether writes have been waiting, with none finishing,
// for limit as seen by successive calls: the peer stopped reading. It
// reports a stall one look after limit at the latest.
func (g *writeGauge) stalled(now time.Time, limit time.Duration) bool {
	if g.writing.Load() == 0 {
		g.since = time.Time{}
		return false
	}
	if done := g.done.Load(); done != g.seen || g.since.IsZero() {
		g.seen, g.since = done, now
		return false
	}
	return now.Sub(g.since) > limit
}

// watchInterval is how often the client watchdog looks for stalled
// writes; idleLookInterval how often it has unread connections read.
const (
	watchInterval    = time.Second
	idleLookInterval = 100 * time.Millisecond
)

// clientWatch is the watchdog of every Client in the process: one
// goroutine, running while any Client is open.
var clientWatch watchdog

type watchdog struct {
	mu      sync.Mutex // guards clients and stop
	clients map[*Client]struct{}
	stop    chan struct{} // closed when the last client leaves
}

func (w *watchdog) add(c *Client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.clients == nil {
		w.clients = make(map[*Client]struct{})
	}
	w.clients[c] = struct{}{}
	if len(w.clients) == 1 {
		w.stop = make(chan struct{})
		go w.run(w.stop)
	}
}

func (w *watchdog) remove(c *Client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.clients[c]; !ok {
		return
	}
	delete(w.clients, c)
	if len(w.clients) == 0 {
		close(w.stop)
	}
}

func (w *watchdog) run(stop <-chan struct{}) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	look := time.NewTicker(idleLookInterval)
	defer look.Stop()
	for {
		select {
		case <-stop:
			return
		case <-look.C:
			for _, c := range w.list(func(c *Client) bool { return c.selfRead }) {
				c.lookIdle()
			}
		case now := <-t.C:
			stalled := w.list(func(c *Client) bool {
				return c.writes.stalled(now, c.writeTimeout) || c.conn != nil &&
					(c.conn.stalled(now, c.writeTimeout) || c.conn.stuckReading(now, c.writeTimeout))
			})
			for _, c := range stalled {
				// A polite close would queue behind the stuck write; even
				// CloseNow may wait for TLS's close_notify deadline, so
				// each gets a goroutine of its own.
				go c.ws.CloseNow()
			}
		}
	}
}

// list returns the clients that match, which it calls with w.mu held.
func (w *watchdog) list(match func(*Client) bool) []*Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*Client
	for c := range w.clients {
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}
