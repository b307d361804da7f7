package wsconn

import (
	"sync/atomic"
	"time"
)

// A write to a peer that stopped reading blocks once the socket buffers
// are full. Bounding each write with a deadline would cost a timer per
// frame; instead each connection keeps a WriteGauge, and a watchdog cuts
// the connections whose writes have made no progress for too long.

// WriteGauge tracks one connection's writes without reading the clock
// on the write path: writes count how many are in progress or waiting,
// done how many have finished. The watchdog that calls stalled keeps the
// rest, so only one goroutine may call it.
type WriteGauge struct {
	writing atomic.Int32
	done    atomic.Uint64

	seen  uint64    // done at the watchdog's last look
	since time.Time // when the watchdog first saw writes waiting with done at seen
}

// Begin counts a write that starts (or waits to).
func (g *WriteGauge) Begin() { g.writing.Add(1) }

// End counts a write that has finished.
func (g *WriteGauge) End() {
	g.done.Add(1)
	g.writing.Add(-1)
}

// Stalled reports whether writes have been waiting, with none finishing,
// for limit as seen by successive calls: the peer stopped reading. It
// reports a stall one look after limit at the latest.
func (g *WriteGauge) Stalled(now time.Time, limit time.Duration) bool {
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
