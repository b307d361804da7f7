package wsconn

import (
	"encoding/binary"
	"errors"
	"os"
	"time"
)

// A Client's caller that is alone on its connection reads its own answer,
// as a bare WebSocket client does, instead of waiting for the connection's
// reader goroutine to hand it over: that hand-over wakes a second thread
// and costs the round trip more than everything else a relay does (see
// docs/BENCHMARKS.md). A caller must stop reading when its context ends,
// but the WebSocket library closes the connection when a read's context
// ends. So the Conn under it makes reads interruptible: it follows
// the frames it returns, and InterruptRead makes the next read that starts at
// a message boundary fail with ErrInterrupted. The library then returns
// that error with the connection intact, since nothing of a frame was
// consumed, and another goroutine can read on.

// ErrInterrupted is returned by a Conn read that InterruptRead ended at a
// message boundary.
var ErrInterrupted = errors.New("read interrupted at a message boundary")

// aLongTimeAgo is a read deadline that ends a blocked Read at once.
var aLongTimeAgo = time.Unix(1, 0)

// InterruptRead ends the current or next read at the next message
// boundary. A read in the middle of a message goes on until the message
// is complete.
func (b *Conn) InterruptRead() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.interrupt = true
	if b.frames.boundary() {
		if b.reading && !b.kicked {
			b.kicked = true
			b.Conn.SetReadDeadline(aLongTimeAgo)
		}
	} else if b.midSince.IsZero() {
		b.midSince = time.Now()
	}
}

// StuckReading reports whether an interrupt has waited longer than limit
// for the rest of a message: the link stalled inside one.
func (b *Conn) StuckReading(now time.Time, limit time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.interrupt && !b.midSince.IsZero() && now.Sub(b.midSince) > limit
}

// PollRead makes the next read return what has already arrived, without
// waiting, and the read after it fail with ErrInterrupted. It reports
// false, and changes nothing, unless the stream is at a message boundary:
// the next read would then have to wait for the rest of a message.
func (b *Conn) PollRead() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.frames.boundary() {
		return false
	}
	b.interrupt, b.poll = true, true
	return true
}

// ClearInterrupt withdraws an interrupt that no read has taken.
func (b *Conn) ClearInterrupt() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.interrupt, b.poll, b.midSince = false, false, time.Time{}
}

// Interruptible reports whether reads on b can be interrupted: the stream
// began with a 101 response, so b follows its frames, and the connection
// takes read deadlines. It ends tracking when they cannot.
func (b *Conn) Interruptible() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.track = b.track && b.frames.switched() && b.Conn.SetReadDeadline(time.Time{}) == nil
	return b.track
}

func (b *Conn) readTracked(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if b.interrupt && b.frames.boundary() {
			if !b.poll {
				b.interrupt, b.midSince = false, time.Time{}
				b.mu.Unlock()
				return 0, ErrInterrupted
			}
			b.poll = false
			scratch := b.frames
			b.mu.Unlock()
			n, err := readNow(b.Conn, p, scratch.lastBoundary)
			b.mu.Lock()
			b.frames.feed(p[:n])
			if n == 0 && err == nil { // nothing has arrived
				b.interrupt, b.midSince = false, time.Time{}
				err = ErrInterrupted
			}
			b.mu.Unlock()
			return n, err
		}
		b.reading = true
		b.mu.Unlock()
		n, err := b.Conn.Read(p)
		b.mu.Lock()
		b.frames.feed(p[:n])
		b.reading = false
		if b.kicked {
			b.kicked = false
			b.Conn.SetReadDeadline(time.Time{})
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = nil
				if n == 0 {
					b.mu.Unlock()
					continue // at a boundary: the loop returns ErrInterrupted
				}
			}
		}
		b.mu.Unlock()
		return n, err
	}
}

// frameTracker follows the server-to-client byte stream of a WebSocket
// connection: first the HTTP upgrade response, then frames. It knows
// whether the bytes so far end at a message boundary.
type frameTracker struct {
	status   [len(switching)]byte // the stream's first bytes
	nstatus  int                  // bytes in status
	upgraded bool                 // the HTTP response's blank line has passed
	crlf     int                  // consecutive bytes of "\r\n\r\n" seen before upgraded
	hdr      [14]byte             // the current frame's header so far
	n        int                  // bytes in hdr
	left     uint64               // payload bytes of the current frame still to come
	inMsg    bool                 // a fragmented data message has begun and not ended
}

// switching is how the stream must begin for frames to follow the first
// blank line: a 101 answer to the first request. TLS records, a redirect
// or a proxy's answer first mean the tracker cannot follow the stream.
const switching = "HTTP/1.1 101 "

// switched reports whether the stream began with a 101 response that has
// ended, so that what follows is frames.
func (t *frameTracker) switched() bool {
	return t.upgraded && t.nstatus == len(switching) && string(t.status[:]) == switching
}

func (t *frameTracker) boundary() bool {
	return t.upgraded && t.n == 0 && t.left == 0 && !t.inMsg
}

// lastBoundary follows p, which comes after what t has seen, and returns
// how many of its bytes end at the last message boundary in it: 0 when
// no message in p is complete.
func (t *frameTracker) lastBoundary(p []byte) int {
	k := 0
	for i := range p {
		t.feed(p[i : i+1])
		if t.boundary() {
			k = i + 1
		}
	}
	return k
}

func (t *frameTracker) feed(p []byte) {
	for len(p) > 0 {
		switch {
		case !t.upgraded:
			c := p[0]
			p = p[1:]
			if t.nstatus < len(t.status) {
				t.status[t.nstatus] = c
				t.nstatus++
			}
			if c == "\r\n\r\n"[t.crlf] {
				t.crlf++
			} else if c == '\r' {
				t.crlf = 1
			} else {
				t.crlf = 0
			}
			t.upgraded = t.crlf == 4
		case t.left > 0:
			k := min(uint64(len(p)), t.left)
			t.left -= k
			p = p[k:]
		default:
			t.hdr[t.n] = p[0]
			t.n++
			p = p[1:]
			if t.n < 2 || t.n < headerLen(t.hdr[1]) {
				continue
			}
			switch l := t.hdr[1] & 0x7f; l {
			case 126:
				t.left = uint64(binary.BigEndian.Uint16(t.hdr[2:]))
			case 127:
				t.left = binary.BigEndian.Uint64(t.hdr[2:])
			default:
				t.left = uint64(l)
			}
			if opcode := t.hdr[0] & 0x0f; opcode < 8 { // a data frame, not a control frame
				t.inMsg = t.hdr[0]&0x80 == 0 // not FIN: more frames of this message follow
			}
			t.n = 0
		}
	}
}

// headerLen is the length of a frame header whose second byte is b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}
