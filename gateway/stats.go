package gateway

// Conns returns how many WebSocket connections the server has admitted and
// not yet ended, and how many of those have not completed connect.
func (s *Server) Conns() (open, handshaking int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open, s.handshaking
}
