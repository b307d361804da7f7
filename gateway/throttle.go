package gateway

import (
	"sync"
	"time"
)

// LogThrottle lets through at most one log line per Interval (default 1s)
// for events a remote party can trigger at will, so that a flood of bad
// handshakes or denied requests cannot flood the log. The audit log, not
// this, keeps the complete record. Its zero value is ready; it is safe for
// concurrent use.
type LogThrottle struct {
	Interval time.Duration

	mu         sync.Mutex // guards last and suppressed
	last       time.Time
	suppressed int
}

// Allow reports whether to log now, and how many lines were suppressed
// since the last one that was allowed.
func (t *LogThrottle) Allow() (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Sub(t.last) < orDefault(t.Interval, time.Second) {
		t.suppressed++
		return false, 0
	}
	t.last, suppressed, t.suppressed = now, t.suppressed, 0
	return true, suppressed
}
