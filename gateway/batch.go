package gateway

import (
	"net"
	"sync"
	"time"
)

// A gateway connection carries many small frames each way. Written one
// syscall per frame, their writes cost more CPU than everything else a
// relay does, yet the WebSocket library flushes every frame as it is
// written. batchConn sits under it, on the TCP connection, and lets the
// frames written while the connection's reader is busy with what it read
// wait, so that they go out together in one write before the reader next
// reads. Writes made while the reader waits for input (a lone request, a
// reply from a handler on its own goroutine, a tick) go out at once, as
// before: batching adds no latency, it only merges what would have queued.
//
// Invariant: whenever out holds bytes, either a goroutine is flushing (and
// loops until out is empty) or the reader is holding (and flushes before
// its next read syscall). A reader that blocks elsewhere is harmless:
// beyond maxHeld bytes a writer flushes itself.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	drained  sync.Cond // signalled when a flush round ends
	out      []byte    // bytes written and not yet sent
	spare    []byte    // the buffer of the previous round, reused
	holding  bool      // the reader is handling input: writes wait for its next Read
	flushing bool      // a goroutine is sending out
	err      error     // the first write error; every later write fails with it
	sends    writeGauge
}

// maxHeld bounds the bytes held for the reader's next read; a writer that
// would hold more sends them itself.
const maxHeld = 64 << 10

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.drained.L = &b.mu
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.flushing && !b.holding && len(b.out) == 0 {
		// Nobody to merge with: send p now, without copying it.
		b.flushing = true
		b.mu.Unlock()
		_, err := b.send(p)
		b.mu.Lock()
		b.fail(err)
		b.flushLocked()
		return len(p), b.err
	}
	b.out = append(b.out, p...)
	switch {
	case b.flushing:
		for b.flushing && len(b.out) > maxHeld && b.err == nil {
			b.drained.Wait() // do not let a stalled peer grow out without bound
		}
	case !b.holding || len(b.out) > maxHeld:
		b.flushing = true
		b.flushLocked()
	}
	if b.err != nil {
		return 0, b.err
	}
	return len(p), nil
}

// Read sends what is held, then reads; once it has read, writes are held
// until the next Read, since the reader is now busy with what it read.
func (b *batchConn) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.holding = false
	if len(b.out) > 0 && !b.flushing {
		b.flushing = true
		b.flushLocked()
	}
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := b.Conn.Read(p)
	if n > 0 && err == nil {
		b.mu.Lock()
		b.holding = true
		b.mu.Unlock()
	}
	return n, err
}

// flushLocked sends out until it is empty, then ends the flushing round
// the caller started. It is called with mu held and flushing set, and
// drops mu while sending.
func (b *batchConn) flushLocked() {
	for len(b.out) > 0 && b.err == nil {
		chunk := b.out
		b.out = b.spare[:0]
		b.mu.Unlock()
		_, err := b.send(chunk)
		b.mu.Lock()
		b.spare = chunk[:0]
		b.fail(err)
	}
	if b.err != nil {
		b.out = nil
	}
	b.flushing = false
	b.drained.Broadcast()
}

func (b *batchConn) send(p []byte) (int, error) {
	b.sends.begin()
	defer b.sends.end()
	return b.Conn.Write(p)
}

func (b *batchConn) fail(err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
}

// Close sends what is held, as long as the peer takes it within a second,
// then closes.
func (b *batchConn) Close() error {
	b.mu.Lock()
	if len(b.out) > 0 && !b.flushing && b.err == nil {
		b.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		b.flushing = true
		b.flushLocked()
	}
	b.mu.Unlock()
	return b.Conn.Close()
}

// stalled reports whether a send has made no progress for limit.
func (b *batchConn) stalled(now time.Time, limit time.Duration) bool {
	return b.sends.stalled(now, limit)
}
