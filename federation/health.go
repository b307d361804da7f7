package federation

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/queue"
	"github.com/sony/gobreaker/v2"
)

// Peer health states, as list_peers and federation.health report them.
const (
	HealthHealthy  = "healthy"  // answering, few errors
	HealthDegraded = "degraded" // answering, but with many errors, or never tried yet
	HealthDown     = "down"     // unreachable, or its circuit is open
	HealthUnknown  = "unknown"  // not contacted yet
)

// BreakerSettings tune the per-peer circuit breakers.
type BreakerSettings struct {
	// Failures is how many consecutive failed deliveries open a peer's
	// circuit. Default 5.
	Failures int
	// Open is how long a circuit stays open before one probe may pass.
	// Default 10s.
	Open time.Duration
}

// PeerHealthInfo is one peer's health, as list_peers shows it.
type PeerHealthInfo struct {
	State     string  `json:"state"`
	Circuit   string  `json:"circuit"` // closed, half-open or open
	RTTMs     float64 `json:"rttMs,omitempty"`
	LastSeen  int64   `json:"lastSeen,omitempty"` // Unix ms of the last answer or pong
	LastError string  `json:"lastError,omitempty"`
	ErrorRate float64 `json:"errorRate"` // failed share of the recent deliveries
	InFlight  int64   `json:"inFlight"`
}

const recentWindow = 20 // deliveries remembered for the error rate

// peerHealth tracks one peer: its breaker, RTT, recent outcomes and load.
type peerHealth struct {
	newBreaker func() *gobreaker.TwoStepCircuitBreaker[struct{}]
	inflight   atomic.Int64
	outbound   *queue.Sem // requests to this peer wait here by priority

	mu       sync.Mutex // guards the fields below
	breaker  *gobreaker.TwoStepCircuitBreaker[struct{}]
	rtt      time.Duration
	lastSeen time.Time
	lastErr  string
	recent   [recentWindow]bool // true = failed
	n, next  int
	lost     *gateway.Client // the last connection whose loss was counted
}

// healthTracker holds a peerHealth per peer id.
type healthTracker struct {
	settings BreakerSettings

	mu    sync.RWMutex // guards peers; every delivery reads it
	peers map[string]*peerHealth
}

func newHealthTracker(s BreakerSettings) *healthTracker {
	if s.Failures <= 0 {
		s.Failures = 5
	}
	if s.Open <= 0 {
		s.Open = 10 * time.Second
	}
	return &healthTracker{settings: s, peers: make(map[string]*peerHealth)}
}

func (t *healthTracker) get(id string) *peerHealth {
	t.mu.RLock()
	h := t.peers[id]
	t.mu.RUnlock()
	if h != nil {
		return h
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h = t.peers[id]
	if h == nil {
		failures := uint32(t.settings.Failures)
		h = &peerHealth{newBreaker: func() *gobreaker.TwoStepCircuitBreaker[struct{}] {
			return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
				Name:         id,
				Timeout:      t.settings.Open,
				ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
				IsSuccessful: peerAnswered,
				IsExcluded:   excludedFromBreaker,
			})
		}, outbound: queue.New(peerOutboundInFlight, peerOutboundQueue, queueAgeing)}
		h.breaker = h.newBreaker()
		t.peers[id] = h
	}
	return h
}

// forget drops a peer's state when it is unregistered.
func (t *healthTracker) forget(id string) {
	t.mu.Lock()
	delete(t.peers, id)
	t.mu.Unlock()
}

// peerAnswered reports whether err still shows a working peer: its gateway
// answered, even if the answer was an error about the request itself.
func peerAnswered(err error) bool {
	switch gateway.CodeOf(err) {
	case "", CodeAgentError, CodeUnknownAgent, gateway.CodeInvalidParams, gateway.CodeForbidden,
		CodeFederationDisabled, CodeRateLimited, CodeOverloaded, CodeHopLimit:
		return true
	}
	return false
}

// excludedFromBreaker reports the outcomes that say nothing new about a
// peer: a caller that gave up, and a request that failed with a
// connection whose loss was already counted.
func excludedFromBreaker(err error) bool {
	return isSameLoss(err) || gateway.CodeOf(err) == gateway.CodeCancelled
}

// sameLoss marks the failure of a request whose connection dropped, when
// another request has already reported that drop: one lost connection is
// one failure of the peer, however many callers were waiting on it.
type sameLoss struct{ error }

func (e sameLoss) Unwrap() error { return e.error }

// isSameLoss reports whether err is or wraps a sameLoss. A nil err, the
// outcome of nearly every delivery, returns at once: errors.As would
// allocate its target on every call.
func isSameLoss(err error) bool {
	if err == nil {
		return false
	}
	var dup sameLoss
	return errors.As(err, &dup)
}

// connectionLost returns err as the breaker should count it: a request
// that failed because its connection c ended counts once per connection;
// later reports of the same loss are marked sameLoss.
func (h *peerHealth) connectionLost(c *gateway.Client, err error) error {
	if c == nil || c.Err() == nil || gateway.CodeOf(err) != gateway.CodePeerUnavailable {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost == c {
		return sameLoss{err}
	}
	h.lost = c
	return err
}

// allow asks the breaker whether a delivery may start. It returns a done
// func to report the outcome, or a CIRCUIT_OPEN error.
func (h *peerHealth) allow(peerID string, open time.Duration) (func(error, time.Duration), error) {
	h.mu.Lock()
	breaker := h.breaker
	h.mu.Unlock()
	done, err := breaker.Allow()
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("%w: peer %q failed repeatedly; its circuit is open and a probe is let through every %v",
			ErrCircuitOpen, peerID, open)
	}
	if err != nil {
		return nil, err
	}
	h.inflight.Add(1)
	return func(err error, rtt time.Duration) {
		h.inflight.Add(-1)
		done(err)
		h.record(err, rtt)
	}, nil
}

// record notes one delivery's outcome; rtt counts only on success.
func (h *peerHealth) record(err error, rtt time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	failed := !peerAnswered(err)
	if isSameLoss(err) { // counted once already
		return
	}
	h.recent[h.next] = failed
	h.next = (h.next + 1) % recentWindow
	h.n = min(h.n+1, recentWindow)
	if failed {
		h.lastErr = err.Error()
		return
	}
	h.lastSeen = time.Now()
	if rtt > 0 {
		h.observeRTTLocked(rtt)
	}
}

// pong records a heartbeat answer. A peer that answers pings is
// reachable again, so an open circuit closes at once instead of waiting
// for its probe.
func (h *peerHealth) pong(rtt time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSeen = time.Now()
	h.observeRTTLocked(rtt)
	if h.breaker.State() == gobreaker.StateOpen {
		h.breaker = h.newBreaker()
	}
}

// observeRTTLocked keeps an exponentially weighted moving average.
func (h *peerHealth) observeRTTLocked(rtt time.Duration) {
	if h.rtt == 0 {
		h.rtt = rtt
		return
	}
	h.rtt = (h.rtt*7 + rtt) / 8
}

// info summarises the peer's health.
func (h *peerHealth) info() PeerHealthInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := PeerHealthInfo{Circuit: h.breaker.State().String(), LastError: h.lastErr, InFlight: h.inflight.Load()}
	out.RTTMs = millis(h.rtt)
	if !h.lastSeen.IsZero() {
		out.LastSeen = h.lastSeen.UnixMilli()
	}
	failed := 0
	for i := range h.n {
		if h.recent[i] {
			failed++
		}
	}
	if h.n > 0 {
		out.ErrorRate = float64(failed) / float64(h.n)
	}
	lastFailed := h.n > 0 && h.recent[(h.next+recentWindow-1)%recentWindow]
	switch {
	case out.Circuit == "open":
		out.State = HealthDown
	case h.n == 0 && h.lastSeen.IsZero():
		out.State = HealthUnknown
	case lastFailed && h.lastSeen.IsZero():
		out.State = HealthDown
	case out.ErrorRate >= 0.2 || lastFailed:
		out.State = HealthDegraded
	default:
		out.State = HealthHealthy
	}
	return out
}
