package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"testing"
	"time"
)

// wsFrame encodes one WebSocket frame as a server sends it (masked when
// mask, as a client sends it).
func wsFrame(fin bool, opcode byte, payload []byte, mask bool) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	var m byte
	if mask {
		m = 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n <= 0xffff:
		out = append(out, m|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if mask {
		out = append(out, 1, 2, 3, 4) // the payload need not really be masked here
	}
	return append(out, payload...)
}

const upgradeResponse = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

// TestFrameTrackerBoundaries feeds an upgrade response and frames of every
// header form byte by byte, and in one piece, and checks that boundary
// holds exactly where a message ends.
func TestFrameTrackerBoundaries(t *testing.T) {
	var stream []byte
	ends := map[int]bool{}
	add := func(p []byte, endsMessage bool) {
		stream = append(stream, p...)
		if endsMessage {
			ends[len(stream)] = true
		}
	}
	add([]byte(upgradeResponse), true)
	add(wsFrame(true, 1, []byte("hello"), false), true)
	add(wsFrame(true, 1, nil, false), true)                              // empty
	add(wsFrame(true, 2, bytes.Repeat([]byte("x"), 300), false), true)   // 16-bit length
	add(wsFrame(true, 1, bytes.Repeat([]byte("y"), 70000), false), true) // 64-bit length
	add(wsFrame(true, 1, []byte("masked"), true), true)
	add(wsFrame(true, 9, []byte("ping"), false), true) // a control frame between messages
	// A fragmented message with a control frame in its middle.
	add(wsFrame(false, 1, []byte("frag-1 "), false), false)
	add(wsFrame(true, 10, []byte("pong"), false), false)
	add(wsFrame(false, 0, []byte("frag-2 "), false), false)
	add(wsFrame(true, 0, []byte("frag-3"), false), true)
	add(wsFrame(true, 1, []byte("last"), false), true)

	var bytewise frameTracker
	for i := range stream {
		if got, want := bytewise.boundary(), ends[i]; got != want {
			t.Fatalf("after %d of %d bytes: boundary() = %v, want %v", i, len(stream), got, want)
		}
		bytewise.feed(stream[i : i+1])
	}
	if !bytewise.boundary() || !bytewise.switched() {
		t.Errorf("at the end of the stream: boundary() = %v, switched() = %v; want both", bytewise.boundary(), bytewise.switched())
	}
	// A stream that does not begin with the 101 (a redirect first, TLS
	// records) cannot be followed.
	for _, start := range []string{"HTTP/1.1 307 Temporary Redirect\r\nLocation: /ws\r\nContent-Length: 0\r\n\r\n", "\x16\x03\x03\x00\x20\r\n\r\n"} {
		var tr frameTracker
		tr.feed([]byte(start + upgradeResponse))
		if tr.switched() {
			t.Errorf("switched() after %q = true", start[:12])
		}
	}
	for _, chunk := range []int{7, 100, 4096, len(stream)} {
		var tr frameTracker
		for off := 0; off < len(stream); off += chunk {
			end := min(off+chunk, len(stream))
			tr.feed(stream[off:end])
			if got, want := tr.boundary(), ends[end]; got != want {
				t.Fatalf("chunks of %d, after %d bytes: boundary() = %v, want %v", chunk, end, got, want)
			}
		}
	}
}

// trackedPair is a client-side Conn that follows frames, past the
// upgrade response, and the server's end of its TCP connection.
func trackedPair(t *testing.T) (*Conn, func([]byte)) {
	t.Helper()
	b, peer := tcpPairHold(t, false)
	b.track = true
	b.frames.feed([]byte(upgradeResponse))
	send := func(p []byte) {
		t.Helper()
		if _, err := peer.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	return b, send
}

// readSome reads from b once, failing the test after 5s.
func readSome(t *testing.T, b *Conn) ([]byte, error) {
	t.Helper()
	type result struct {
		p   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := b.Read(buf)
		done <- result{buf[:n], err}
	}()
	select {
	case r := <-done:
		return r.p, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after 5s")
		return nil, nil
	}
}

func TestInterruptBlockedRead(t *testing.T) {
	b, send := trackedPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 64))
		done <- err
	}()
	tstest.WaitFor(t, 5*time.Second, func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.reading {
			return errors.New("Read not blocked yet")
		}
		return nil
	})
	b.InterruptRead()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("interrupted Read = %v, want ErrInterrupted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("interruptRead did not end a blocked Read at a boundary")
	}
	// The deadline that ended it is gone: the next Read waits for data.
	frame := wsFrame(true, 1, []byte("after"), false)
	send(frame)
	if p, err := readSome(t, b); err != nil || !bytes.Equal(p, frame) {
		t.Fatalf("Read after the interrupt = %q, %v; want the frame", p, err)
	}
}

// TestInterruptWaitsForTheMessage checks that an interrupt asked for in
// the middle of a frame, or of a fragmented message, takes effect only
// once the message is complete: the stream is never cut inside one.
func TestInterruptWaitsForTheMessage(t *testing.T) {
	b, send := trackedPair(t)
	first := wsFrame(false, 1, []byte("0123456789"), false)
	last := wsFrame(true, 0, []byte("end"), false)
	send(first[:5])
	if p, err := readSome(t, b); err != nil || len(p) != 5 {
		t.Fatalf("Read = %q, %v; want the first 5 bytes", p, err)
	}
	b.InterruptRead() // mid-frame
	send(first[5:])
	if p, err := readSome(t, b); err != nil || !bytes.Equal(p, first[5:]) {
		t.Fatalf("Read mid-frame after interruptRead = %q, %v; want the rest of the frame", p, err)
	}
	send(last) // between the fragments: still inside the message
	if p, err := readSome(t, b); err != nil || !bytes.Equal(p, last) {
		t.Fatalf("Read mid-message after interruptRead = %q, %v; want the final fragment", p, err)
	}
	if _, err := readSome(t, b); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Read at the boundary = %v, want ErrInterrupted", err)
	}
}

func TestPollRead(t *testing.T) {
	b, send := trackedPair(t)
	b.PollRead()
	if _, err := readSome(t, b); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("poll with nothing sent = %v, want ErrInterrupted at once", err)
	}
	frame := wsFrame(true, 1, []byte("waiting"), false)
	send(frame)
	tstest.WaitFor(t, 5*time.Second, func() error { // until the bytes are in the socket
		b.PollRead()
		p, err := readSome(t, b)
		if errors.Is(err, ErrInterrupted) {
			return errors.New("not arrived yet")
		}
		if err != nil || !bytes.Equal(p, frame) {
			return fmt.Errorf("poll = %q, %v; want the frame", p, err)
		}
		return nil
	})
	if _, err := readSome(t, b); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Read after a poll that returned data = %v, want ErrInterrupted", err)
	}
	send(frame)
	if p, err := readSome(t, b); err != nil || !bytes.Equal(p, frame) {
		t.Fatalf("Read after the poll = %q, %v; want the frame (no deadline left behind)", p, err)
	}
}
