package federation

import (
	"fmt"
	"math"
	"sync"

	"golang.org/x/time/rate"
)

// Inbound rate limit defaults, per peer gateway.
const (
	defaultPeerRate = 20000 // requests per second
	maxLimiters     = 10000 // distinct peer identities tracked at once
)

// peerLimits holds a token bucket per peer identity. Authenticated peers
// (a token or certificate of gateway.auth.peers, so at most as many as the
// config lists) and unauthenticated names (as many as anyone cares to
// invent) are kept apart, so that a flood of made-up names can only reset
// the buckets of made-up names.
type peerLimits struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex // guards known and unknown
	known   map[string]*rate.Limiter
	unknown map[string]*rate.Limiter // at most maxLimiters
}

func newPeerLimits(cfg LimitsConfig) *peerLimits {
	l := &peerLimits{rate: rate.Limit(cfg.PeerRatePerSec), burst: cfg.PeerBurst,
		known: make(map[string]*rate.Limiter), unknown: make(map[string]*rate.Limiter)}
	switch {
	case cfg.PeerRatePerSec < 0:
		l.rate = rate.Inf
	case cfg.PeerRatePerSec == 0:
		l.rate = defaultPeerRate
	}
	if l.burst <= 0 && l.rate != rate.Inf {
		l.burst = int(math.Max(1, 2*float64(l.rate)))
	}
	return l
}

// allow takes one token for peer, or returns RATE_LIMITED saying when to
// retry. authenticated says whether the connection proved it is peer;
// override, when positive, is the peer's own rate (its gateway.auth.peers
// ratePerSec).
func (l *peerLimits) allow(peer string, authenticated bool, override float64) error {
	r, burst := l.rate, l.burst
	if override > 0 {
		r, burst = rate.Limit(override), int(math.Max(1, 2*override))
	}
	if r == rate.Inf {
		return nil
	}
	l.mu.Lock()
	limiters := l.unknown
	if authenticated {
		limiters = l.known
	}
	lim := limiters[peer]
	if lim == nil || lim.Limit() != r {
		if !authenticated && len(limiters) >= maxLimiters {
			clear(limiters) // bounded memory; a reset only forgives
		}
		lim = rate.NewLimiter(r, burst)
		limiters[peer] = lim
	}
	l.mu.Unlock()
	if lim.Allow() {
		return nil
	}
	retry := max(int(1000/float64(r)), 1)
	err := fmt.Errorf("%w: peer %q is over its limit of %g requests per second", ErrRateLimited, peer, float64(r))
	e := *ErrRateLimited
	e.Message, e.Retryable, e.RetryAfterMs = err.Error(), true, retry
	return &e
}
