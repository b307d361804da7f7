package gateway

import (
	"sync"
	"time"
)

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
				return c.writes.Stalled(now, c.writeTimeout) || c.conn != nil &&
					(c.conn.Stalled(now, c.writeTimeout) || c.conn.StuckReading(now, c.writeTimeout))
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
