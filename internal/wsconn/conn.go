package wsconn

import (
	"net"
	"sync"
	"time"
)

// A gateway connection carries many small frames each way. Written one
// syscall per frame, their writes cost more CPU than everything else a
// relay does, yet the WebSocket library flushes every frame as it is
// written. Conn sits under it, on the TCP connection, and merges
// writes three ways:
//
//   - Writes made while another goroutine is sending wait in a buffer, and
//     that goroutine sends them too before it returns (group commit). Both
//     ends do this.
//   - On a server connection (hold), once the reader has read, writes wait
//     until it reads again, and go out together in one write before that
//     read: the replies to a batch of requests read together leave
//     together. The reader must not block elsewhere while it holds; the
//     server releases the hold before it waits for a request slot.
//   - On a client connection with several calls in flight, a request is
//     written behind (gateway's Client.writeBehind): the connection is corked, and
//     the caller that corked it starts a goroutine that yields, then
//     uncorks, so that the callers the reader has just handed answers to
//     write their next requests into the same send.
//
// Writes made while the reader waits for input go out at once, so a lone
// request pays nothing extra. A client connection never holds, and its
// reader does not send what a cork holds, so it never sends: however full
// both directions are, the client keeps draining what the server sends,
// and the server's reader cannot wedge against it.
//
// Invariant: whenever out holds bytes, either a goroutine is flushing (and
// loops until out is empty), or the reader is holding (and sends them
// before its next read syscall or wait), or the connection is corked (and
// the goroutine started by the caller that corked it will uncork it and
// send them). Beyond
// maxHeld bytes a writer sends them itself.
type Conn struct {
	net.Conn

	mu       sync.Mutex
	drained  sync.Cond // signalled when a flush round ends
	out      []byte    // bytes written and not yet sent
	spare    []byte    // the buffer of the previous round, reused
	hold     bool      // hold writes while the reader is busy (server connections)
	holding  bool      // the reader is handling input: writes wait for its next Read
	corked   bool      // writes wait for the goroutine that will uncork (client connections)
	flushing bool      // a goroutine is sending out
	err      error     // the first write error; every later write fails with it
	sends    WriteGauge

	// Interruptible reads (client connections over plain TCP): see
	// interrupt.go.
	track     bool         // frames follows what Read returns
	frames    frameTracker // touched only by the reading goroutine
	interrupt bool         // the next Read at a message boundary fails with ErrInterrupted
	poll      bool         // ... after reading what has already arrived, without waiting
	reading   bool         // a Read is in the TCP connection's Read
	kicked    bool         // interrupt set a past read deadline to end that Read
	midSince  time.Time    // when interrupt was asked for inside a message, still waiting
}

// maxHeld bounds the bytes held for the reader's next read; a writer that
// would hold more sends them itself.
const maxHeld = 64 << 10

// NewServer wraps the TCP connection of an accepted WebSocket: its writes
// are batched and held while the reader handles what it read.
func NewServer(c net.Conn) *Conn { return newConn(c, true) }

// NewClient wraps a dialled connection (TCP, or TLS above it): its writes
// are batched, never held, and its reads follow the server's frames from
// the 101 response on, so that they can be interrupted (see
// InterruptRead).
func NewClient(c net.Conn) *Conn {
	b := newConn(c, false)
	b.track = true
	return b
}

func newConn(c net.Conn, hold bool) *Conn {
	b := &Conn{Conn: c, hold: hold}
	b.drained.L = &b.mu
	return b
}

// Write adds p to what goes out in the next send (see Conn).
func (b *Conn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.flushing && !b.holding && !b.corked && len(b.out) == 0 {
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
	case !b.holding && !b.corked || len(b.out) > maxHeld:
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
func (b *Conn) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.holding = false
	if len(b.out) > 0 && !b.flushing && !b.corked {
		b.flushing = true
		b.flushLocked()
	}
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if b.track {
		return b.readTracked(p)
	}
	n, err := b.Conn.Read(p)
	if n > 0 && err == nil && b.hold {
		b.mu.Lock()
		b.holding = true
		b.mu.Unlock()
	}
	return n, err
}

// Cork makes writes wait until Uncork, and reports whether it was not
// corked already: then the caller must see that Uncork is called. Reads do
// not send what a cork holds, so that a client's reader still never
// sends.
func (b *Conn) Cork() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.corked
	b.corked = true
	return !was
}

// Uncork ends a cork and sends what it held.
func (b *Conn) Uncork() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.corked = false
	if len(b.out) > 0 && !b.flushing && !b.holding {
		b.flushing = true
		b.flushLocked()
	}
}

// Release ends the reader's hold before it waits for something other than
// input, sending what is held.
func (b *Conn) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = false
	if len(b.out) > 0 && !b.flushing {
		b.flushing = true
		b.flushLocked()
	}
}

// flushLocked sends out until it is empty, then ends the flushing round
// the caller started. It is called with mu held and flushing set, and
// drops mu while sending.
func (b *Conn) flushLocked() {
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

func (b *Conn) send(p []byte) (int, error) {
	b.sends.Begin()
	defer b.sends.End()
	return b.Conn.Write(p)
}

func (b *Conn) fail(err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
}

// Close sends what is held, as long as the peer takes it within a second,
// then closes.
func (b *Conn) Close() error {
	b.mu.Lock()
	if len(b.out) > 0 && !b.flushing && b.err == nil {
		b.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		b.flushing = true
		b.flushLocked()
	}
	b.mu.Unlock()
	return b.Conn.Close()
}

// Stalled reports whether a send has made no progress for limit.
func (b *Conn) Stalled(now time.Time, limit time.Duration) bool {
	return b.sends.Stalled(now, limit)
}
