package federation

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// Guessing tokens: a source (an IP address; an IPv6 /64) that presents
// more than guessFailures wrong tokens in guessWindow is refused at once,
// without its token being compared, until the window ends. Only a token
// that matches nothing counts, not a missing one, so a client that simply
// forgot its token is never shut out. The operator, peer, A2A and
// dashboard logins share the count.
const (
	guessWindow   = time.Minute
	guessFailures = 20
	guessSources  = 4096 // sources tracked in one window; beyond, they share one count
	guessShared   = 50 * guessFailures
)

// guessLimit counts wrong tokens per source in fixed windows. Its zero
// value is ready; it is safe for concurrent use.
type guessLimit struct {
	mu    sync.Mutex // guards start and fails
	start time.Time
	fails map[string]int
}

// key is remote's source, or "*" once the window tracks guessSources.
func (g *guessLimit) keyLocked(remote string, now time.Time) string {
	if g.fails == nil || now.Sub(g.start) >= guessWindow {
		g.start, g.fails = now, make(map[string]int)
	}
	k := sourceOf(remote)
	if _, ok := g.fails[k]; !ok && len(g.fails) >= guessSources {
		k = "*"
	}
	return k
}

// check refuses r's source when it has guessed wrong too often in this
// window: RATE_LIMITED, with the time left.
func (g *guessLimit) check(r *http.Request) error {
	now := time.Now()
	g.mu.Lock()
	k := g.keyLocked(r.RemoteAddr, now)
	limit := guessFailures
	if k == "*" {
		limit = guessShared
	}
	over := g.fails[k] >= limit
	left := g.start.Add(guessWindow).Sub(now)
	g.mu.Unlock()
	if !over {
		return nil
	}
	e := *ErrRateLimited
	e.Message = fmt.Sprintf("too many wrong tokens from %s (more than %d a minute); try again in %d s", clip(sourceOf(r.RemoteAddr), 64), guessFailures, int(left.Seconds())+1)
	e.Retryable, e.RetryAfterMs = true, int(left.Milliseconds())+1
	return &e
}

// failed counts a wrong token from r's source.
func (g *guessLimit) failed(r *http.Request) {
	g.mu.Lock()
	g.fails[g.keyLocked(r.RemoteAddr, time.Now())]++
	g.mu.Unlock()
}

// wrongToken reports whether err says a presented token matched nothing.
func wrongToken(err error) bool {
	var e *gateway.Error
	if !errors.As(err, &e) {
		return false
	}
	d, _ := e.Details.(map[string]string)
	return e.Code == gateway.CodeUnauthorized && d["code"] == "AUTH_TOKEN_MISMATCH"
}

// refusalStatus is the HTTP status of a refused login: 429 (with
// Retry-After) for a source that guessed too often, 403 for a credential
// that may not do this, else 401.
func refusalStatus(w http.ResponseWriter, err error) int {
	var e *gateway.Error
	switch {
	case errors.As(err, &e) && e.Code == CodeRateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(max(e.RetryAfterMs/1000, 1)))
		return http.StatusTooManyRequests
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}
