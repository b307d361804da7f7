package gateway

import (
	"errors"
	"time"
)

// RefusedError is a connect handshake the server answered with a refusal
// that retrying will not change: a bad or missing token (UNAUTHORIZED), a
// role or protocol version it does not serve (INVALID_REQUEST), a client
// it does not allow (FORBIDDEN). It unwraps to the server's *Error, so its
// code survives. A refusal only a reconfiguration can lift is no flaky
// network: a Pool waits RefusedBackoff before dialling such a key again.
type RefusedError struct {
	Err *Error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Refused reports whether err comes from a handshake the server refused
// for good (see RefusedError).
func Refused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// refusal wraps a connect error response as a RefusedError when its code
// says the server will refuse every retry too.
func refusal(e *Error) error {
	switch e.Code {
	case CodeUnauthorized, CodeInvalidRequest, CodeForbidden:
		return &RefusedError{Err: e}
	}
	return e
}

// defaultRefusedBackoff is how long a Pool waits after a refused handshake.
const defaultRefusedBackoff = 5 * time.Minute

// RefusedErr returns the refusal that keeps key waiting, or nil when its
// last dial was not refused or its wait is over.
func (p *Pool) RefusedErr(key string) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s := p.slots[key]
	if s == nil || s.lastErr == nil || !Refused(s.lastErr) || !time.Now().Before(s.retryAt) {
		return nil
	}
	return s.lastErr
}

// RetryRefused ends the wait of every key whose handshake was refused, so
// that the next Get dials at once: after a configuration reload, say.
func (p *Pool) RetryRefused() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		if s.lastErr != nil && Refused(s.lastErr) {
			s.retryAt = time.Time{}
		}
	}
}
