package gateway

import (
	"fmt"
	"net"
	"net/http"
)

// Connection limits. Every connection counts against MaxConns from the
// upgrade to its end, and against MaxHandshakes until connect completes;
// beyond either, ServeHTTP answers 503 before the upgrade, at the cost of
// a counter. ConnState extends the limits to TCP connections that have not
// sent a request yet, which cannot be answered and are closed instead.

// admit counts a new connection in, or says why it is refused: the server
// is shutting down, or at one of its connection limits.
func (s *Server) admit() (refusal string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch maxConns, maxHandshakes := orDefault(s.MaxConns, defaultMaxConns), orDefault(s.MaxHandshakes, defaultMaxHandshakes); {
	case s.closing:
		return "gateway shutting down"
	case s.open >= maxConns:
		return fmt.Sprintf("gateway is at its limit of %d connections (gateway.limits.maxConnections); retry later", maxConns)
	case s.handshaking >= maxHandshakes:
		return fmt.Sprintf("gateway is at its limit of %d connections in their handshake (gateway.limits.maxHandshakes); retry later", maxHandshakes)
	}
	s.open++
	s.handshaking++
	s.wg.Add(1)
	return ""
}

func (s *Server) release() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
}

// handshakeDone counts a connection out of the handshaking ones; call it
// once per admitted connection.
func (s *Server) handshakeDone() {
	s.mu.Lock()
	s.handshaking--
	s.mu.Unlock()
}

// ConnState is an http.Server ConnState hook: it counts the TCP
// connections that have no request in progress (new, or idle between
// requests), and closes one at once when MaxHandshakes of them are already
// waiting, or when they and the open connections reach MaxConns +
// MaxHandshakes. So a flood of silent connections is bounded too, while
// the requests of a full server still get their 503.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	_, counted := s.waiting[c]
	if st != http.StateNew && st != http.StateIdle {
		delete(s.waiting, c)
		s.mu.Unlock()
		return
	}
	maxConns, maxHandshakes := orDefault(s.MaxConns, defaultMaxConns), orDefault(s.MaxHandshakes, defaultMaxHandshakes)
	refuse := !counted && (len(s.waiting) >= maxHandshakes || s.open+len(s.waiting) >= maxConns+maxHandshakes)
	if !refuse && !counted {
		if s.waiting == nil {
			s.waiting = make(map[net.Conn]struct{})
		}
		s.waiting[c] = struct{}{}
	}
	s.mu.Unlock()
	if refuse {
		if ok, suppressed := s.refusedLog.Allow(); ok {
			s.logger().Warn("connection closed: too many connections without a request", "remote", c.RemoteAddr(), "suppressed", suppressed)
		}
		c.Close()
	}
}
