package federation_test

import (
	"net"
	"sync"
	"testing"
)

// faultProxy forwards TCP connections to a target and can stall them
// (bytes are swallowed, as on a dead link) or cut them (close every
// connection now). It is the network between two
// gateways in reliability tests.
type faultProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex // guards conns and stalled
	conns   map[net.Conn]bool
	stalled bool
	wg      sync.WaitGroup
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	p := &faultProxy{ln: listen(t), target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		p.ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) url() string { return "ws://" + p.ln.Addr().String() }

func (p *faultProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies src to dst, dropping the bytes while the proxy is stalled.
func (p *faultProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled := p.stalled
			p.mu.Unlock()
			if !stalled {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // EOF or a cut: close both sides
		}
	}
}

func (p *faultProxy) stall(on bool) {
	p.mu.Lock()
	p.stalled = on
	p.mu.Unlock()
}

// cut closes every proxied connection, as a network failure would. The
// FIN leaves before cut returns: Close alone defers the socket's close
// while the proxy's copier is still blocked reading it.
func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		c.Close()
		delete(p.conns, c)
	}
}
