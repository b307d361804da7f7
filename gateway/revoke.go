package gateway

// Revoke closes every open connection whose identity revoke reports true,
// with close code 1008 and reason (at most 120 bytes are sent), and
// refuses the requests they send until the close completes. A connection
// whose handshake overlaps the call is refused when revoke reports true
// for the identity it authenticated as. Use it when credentials change:
// revoke answers whether the credential a connection authenticated with is
// still valid. It returns how many open connections it closed.
func (s *Server) Revoke(revoke func(*Identity) bool, reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeGen++
	s.revoke = revoke
	n := 0
	for c := range s.conns {
		if c.id == nil || c.revokedSet.Load() || !revoke(c.id) {
			continue
		}
		c.revokedSet.Store(true)
		c.revoked <- truncate(reason, 120) // buffered, sent once: revokedSet was false
		n++
	}
	return n
}

func (s *Server) revokeGeneration() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeGen
}

// setIdentity records the identity c authenticated as, unless a Revoke
// since generation gen (when authentication began) rules it out.
func (s *Server) setIdentity(c *serverConn, id *Identity, gen int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revokeGen != gen && s.revoke(id) {
		return false
	}
	c.id = id
	return true
}

func revokedError() *Error {
	e := NewError(CodeUnauthorized, "the credentials changed during the handshake and this one is no longer valid")
	e.Details = map[string]string{"code": "AUTH_REVOKED"}
	return e
}
