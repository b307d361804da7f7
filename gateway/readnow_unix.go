//go:build unix

package gateway

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// readNow reads what has arrived on c without waiting: 0 and no error when
// nothing has. A read deadline cannot do this, since Go fails a read whose
// deadline has passed before trying it.
func readNow(c net.Conn, p []byte) (int, error) {
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
		n, rerr = syscall.Read(int(fd), p)
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
