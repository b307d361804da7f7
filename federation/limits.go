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

// peerLimits holds a token bucket per peer identity.
type peerLimits struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex // guards limiters
	limiters map[string]*rate.Limiter
}

func newPeerLimits(cfg LimitsConfig) *peerLimits {
	l := &peerLimits{rate: rate.Limit(cfg.PeerRatePerSec), burst: cfg.PeerBurst, limiters: make(map[string]*rate.Limiter)}
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
// retry. override, when positive, is the peer's own rate (its
// gateway.auth.peers ratePerSec).
func (l *peerLimits) allow(peer string, override float64) error {
	r, burst := l.rate, l.burst
	if override > 0 {
		r, burst = rate.Limit(override), int(math.Max(1, 2*override))
	}
	if r == rate.Inf {
		return nil
	}
	l.mu.Lock()
	lim := l.limiters[peer]
	if lim == nil || lim.Limit() != r {
		if len(l.limiters) >= maxLimiters {
			clear(l.limiters) // bounded memory; a reset only forgives
		}
		lim = rate.NewLimiter(r, burst)
		l.limiters[peer] = lim
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
