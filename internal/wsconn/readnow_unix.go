//go:build unix

package wsconn

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// readNow reads what has arrived on c without waiting: 0 and no error when
// nothing has. A read deadline cannot do this, since Go fails a read whose
// deadline has passed before trying it. complete says how many of the
// bytes that have arrived end at the last message boundary among them;
// readNow takes only those, since the WebSocket library would otherwise
// wait in its next read for the rest of a message.
func readNow(c net.Conn, p []byte, complete func([]byte) int) (int, error) {
	if tc, ok := c.(*tls.Conn); ok {
		return readNowTLS(tc, p)
	}
	n, err := peekNow(c, p)
	if n <= 0 || err != nil {
		return n, err
	}
	if n = complete(p[:n]); n == 0 {
		return 0, nil // only part of a message so far
	}
	return c.Read(p[:n]) // it has arrived: no wait
}

// readNowTLS reads what has arrived over TLS, when something has: the
// socket under it says so without waiting, and a deadline just ahead then
// bounds a read that meets only part of a record (crypto/tls keeps what it
// read and its state when a read times out). It may return part of a
// message: what arrived is TLS records, not frames.
func readNowTLS(tc *tls.Conn, p []byte) (int, error) {
	var one [1]byte
	n, err := peekNow(tc.NetConn(), one[:])
	if n == 0 || err != nil {
		return n, err
	}
	tc.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err = tc.Read(p)
	tc.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	return n, err
}

// peekNow copies what has arrived on c into p without consuming it or
// waiting: 0 and no error when nothing has, io.EOF when the peer closed.
// A connection without a socket to peek at reports nothing.
func peekNow(c net.Conn, p []byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, nil
	}
	var (
		n    int
		rerr error
	)
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), p, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	}); err != nil {
		return 0, err
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR):
		return 0, nil
	case rerr != nil:
		return 0, rerr
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}
