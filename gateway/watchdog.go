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

// writeGauge tracks one connection's writes: how many are in progress or
// waiting, and when one last finished (or the first began).
type writeGauge struct {
	writing  atomic.Int32
	progress atomic.Int64 // Unix ns
}

func (g *writeGauge) begin() {
	if g.writing.Add(1) == 1 {
		g.progress.Store(time.Now().UnixNano())
	}
}

func (g *writeGauge) end() {
	g.progress.Store(time.Now().UnixNano())
	g.writing.Add(-1)
}

// stalled reports whether writes are waiting and none has finished for
// limit: the peer stopped reading.
func (g *writeGauge) stalled(now time.Time, limit time.Duration) bool {
	return g.writing.Load() > 0 && now.Sub(time.Unix(0, g.progress.Load())) > limit
}

// watchInterval is how often the client watchdog looks.
const watchInterval = time.Second

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
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.mu.Lock()
			var stalled []*Client
			for c := range w.clients {
				if c.writes.stalled(now, c.writeTimeout) || c.conn != nil && c.conn.stalled(now, c.writeTimeout) {
					stalled = append(stalled, c)
				}
			}
			w.mu.Unlock()
			for _, c := range stalled {
				c.ws.CloseNow() // a polite close would queue behind the stuck write
			}
		}
	}
}
