package wsconn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair returns a server-side (holding) Conn and the plain other
// end of a loopback TCP connection.
func tcpPair(t *testing.T) (*Conn, net.Conn) { return tcpPairHold(t, true) }

func tcpPairHold(t *testing.T, hold bool) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	b := newConn(c, hold)
	t.Cleanup(func() { b.Close(); peer.Close() })
	return b, peer
}

// readN reads exactly n bytes from c, failing after 5s.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(buf)
}

// readOne makes b's Read return one byte the peer sent, which puts b in
// the state of a reader busy with its input.
func readOne(t *testing.T, b *Conn, peer net.Conn) {
	t.Helper()
	peer.Write([]byte("."))
	if _, err := b.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestBatchSendsAtOnceWhileTheReaderWaits(t *testing.T) {
	b, peer := tcpPair(t)
	b.Write([]byte("a"))
	if got := readN(t, peer, 1); got != "a" {
		t.Fatalf("peer read %q", got)
	}
}

func TestBatchHoldsWritesUntilTheNextRead(t *testing.T) {
	b, peer := tcpPair(t)
	readOne(t, b, peer)
	b.Write([]byte("ab"))
	b.Write([]byte("cd"))
	if h := held(b); h != "abcd" {
		t.Fatalf("held %q after two writes while the reader is busy, want abcd", h)
	}
	readOne(t, b, peer) // sends what is held before it reads
	if got := readN(t, peer, 4); got != "abcd" {
		t.Fatalf("peer read %q, want abcd", got)
	}
}

func TestBatchSendsBeyondMaxHeld(t *testing.T) {
	b, peer := tcpPair(t)
	readOne(t, b, peer)
	got := make(chan string, 1)
	go func() { // read while b's reader never comes back
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, maxHeld+1)
		n, _ := io.ReadFull(peer, buf)
		got <- string(buf[:n])
	}()
	b.Write(bytes.Repeat([]byte("x"), maxHeld))
	b.Write([]byte("y"))
	if s := <-got; len(s) != maxHeld+1 || s[maxHeld] != 'y' {
		t.Fatalf("peer read %d bytes, want %d ending in y", len(s), maxHeld+1)
	}
}

func TestBatchCloseSendsWhatIsHeld(t *testing.T) {
	b, peer := tcpPair(t)
	readOne(t, b, peer)
	b.Write([]byte("bye"))
	b.Close()
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(peer)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("peer read %q, %v; want bye then EOF", rest, err)
	}
}

func TestBatchWriteErrorSticks(t *testing.T) {
	b, peer := tcpPair(t)
	peer.Close()
	var err error
	for i := 0; i < 1000 && err == nil; i++ { // the first writes may still land in buffers
		_, err = b.Write(bytes.Repeat([]byte("x"), 4096))
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
	if _, err2 := b.Write([]byte("x")); err2 == nil {
		t.Error("a write after a failed one succeeded")
	}
}

// TestBatchConcurrentWritersAndReader: records written concurrently while
// the reader comes and goes arrive whole, each writer's in order.
func TestBatchConcurrentWritersAndReader(t *testing.T) {
	b, peer := tcpPair(t)
	const writers, records = 8, 500
	stop := make(chan struct{})
	var reading sync.WaitGroup
	reading.Go(func() { // the reader: wakes whenever the peer pokes it
		buf := make([]byte, 64)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	var poking sync.WaitGroup
	poking.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				peer.Write([]byte("."))
				time.Sleep(50 * time.Microsecond)
			}
		}
	})
	var writing sync.WaitGroup
	for w := range writers {
		writing.Go(func() {
			for i := range records {
				if _, err := b.Write(fmt.Appendf(nil, "%d:%d\n", w, i)); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	sc := bufio.NewScanner(peer)
	for n := 0; n < writers*records && sc.Scan(); n++ {
		var w, i int
		if _, err := fmt.Sscanf(sc.Text(), "%d:%d", &w, &i); err != nil || w < 0 || w >= writers {
			t.Fatalf("record %q is torn", sc.Text())
		}
		if i != next[w] {
			t.Fatalf("writer %d: record %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for w, n := range next {
		if n != records {
			t.Errorf("writer %d: %d of %d records arrived", w, n, records)
		}
	}
	writing.Wait()
	close(stop)
	poking.Wait()
	b.Close()
	reading.Wait()
}

// held returns what b holds for its reader's next read.
func held(b *Conn) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.out)
}

// TestBatchClientNeverHolds: a client connection's reader never sends, so
// its writes go out at once even while the reader is busy.
func TestBatchClientNeverHolds(t *testing.T) {
	b, peer := tcpPairHold(t, false)
	readOne(t, b, peer)
	b.Write([]byte("now"))
	if h := held(b); h != "" {
		t.Fatalf("client connection holds %q", h)
	}
	if got := readN(t, peer, 3); got != "now" {
		t.Fatalf("peer read %q", got)
	}
}

// TestBatchRelease: a reader about to wait for something other than input
// sends what it holds, and holds nothing more until it reads again.
func TestBatchRelease(t *testing.T) {
	b, peer := tcpPair(t)
	readOne(t, b, peer)
	b.Write([]byte("ab"))
	b.Release()
	if got := readN(t, peer, 2); got != "ab" {
		t.Fatalf("peer read %q after release, want ab", got)
	}
	b.Write([]byte("c"))
	if h := held(b); h != "" {
		t.Fatalf("holds %q after release", h)
	}
	if got := readN(t, peer, 1); got != "c" {
		t.Fatalf("peer read %q", got)
	}
}

// TestBatchCorkHoldsUntilUncork: writes made while a client connection is
// corked wait, even across its reader's reads (a client's reader never
// sends), and leave together when it is uncorked; only the first cork
// asks its caller to uncork.
func TestBatchCorkHoldsUntilUncork(t *testing.T) {
	b, peer := tcpPairHold(t, false)
	if !b.Cork() {
		t.Fatal("first cork did not ask for an uncork")
	}
	if b.Cork() {
		t.Fatal("second cork asked for another uncork")
	}
	b.Write([]byte("ab"))
	readOne(t, b, peer)
	b.Write([]byte("cd"))
	if h := held(b); h != "abcd" {
		t.Fatalf("held %q while corked, want abcd", h)
	}
	b.Uncork()
	if got := readN(t, peer, 4); got != "abcd" {
		t.Fatalf("peer read %q after uncork, want abcd", got)
	}
	b.Write([]byte("e"))
	if h := held(b); h != "" {
		t.Fatalf("holds %q after uncork", h)
	}
	if got := readN(t, peer, 1); got != "e" {
		t.Fatalf("peer read %q", got)
	}
}
