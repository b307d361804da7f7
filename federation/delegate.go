package federation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// Delegation strategies.
const (
	StrategyRoundRobin    = "round-robin"    // rotate through the candidates
	StrategyLeastLoaded   = "least-loaded"   // fewest requests in flight from this gateway
	StrategyLowestLatency = "lowest-latency" // smallest measured round trip
	StrategyRandom        = "random"
)

// Strategies lists the delegation strategies.
var Strategies = []string{StrategyRoundRobin, StrategyLeastLoaded, StrategyLowestLatency, StrategyRandom}

// Delegate picks among the enabled peers that have every required
// capability, at a version within its constraint if it has one
// ("web-search@^2"; see capversion.go), by the call's strategy (else
// federation.delegation.strategy, else round-robin). Peers whose circuit
// is open or whose gateway refused the handshake are skipped (listed in
// the result's skipped with the reason) and peers that look down are
// tried last. When the chosen peer fails in a way another peer might not
// (unreachable, timed out, overloaded, an error marked retryable), the next
// candidate is tried within the caller's deadline; the result lists every
// attempt.
func (n *Node) Delegate(ctx context.Context, req DelegateRequest) (*DelegateResult, error) {
	if err := checkContent("task", req.Task, req.MessageOptions); err != nil {
		return nil, err
	}
	req.CorrelationID = orNewID(req.CorrelationID) // one conversation across attempts
	if req.Durable {
		if _, err := n.checkDelegate(&req, nil); err != nil {
			return nil, err
		}
		msg, err := n.newMessage(ctx, TypeDelegation, &peer{}, req.Task, req.MessageOptions)
		if err != nil {
			return nil, err
		}
		e := n.outboxEntry("delegate", msg, req.MessageOptions)
		e.RequiredCapabilities, e.Strategy = req.RequiredCapabilities, req.Strategy
		if err := n.enqueue(e); err != nil {
			return nil, err
		}
		return &DelegateResult{Result: Result{MessageID: msg.MessageID, Status: StatusQueued}, Strategy: req.Strategy}, nil
	}
	return n.delegate(ctx, req, func(p *peer) (*Message, error) {
		return n.newMessage(ctx, TypeDelegation, p, req.Task, req.MessageOptions)
	}, false)
}

// checkDelegate validates a delegate request, resolves its strategy and
// parses its requirements into buf (see capversion.go).
func (n *Node) checkDelegate(req *DelegateRequest, buf []requirement) ([]requirement, error) {
	if err := n.checkEnabled(); err != nil {
		return nil, err
	}
	reqs, err := parseRequirements(buf, req.RequiredCapabilities)
	if err != nil {
		return nil, err
	}
	req.Strategy = cmpOr(req.Strategy, n.cfg.Federation.Delegation.Strategy, StrategyRoundRobin)
	if !slices.Contains(Strategies, req.Strategy) {
		return nil, fmt.Errorf("%w: strategy %q is not one of %s", ErrInvalidParams, req.Strategy, strings.Join(Strategies, ", "))
	}
	if _, err := ParsePriority(string(req.Priority)); err != nil {
		return nil, err
	}
	return reqs, nil
}

// delegate runs one delegation: candidates, order, attempts. mk builds the
// message for a peer.
func (n *Node) delegate(ctx context.Context, req DelegateRequest, mk func(*peer) (*Message, error), durable bool) (*DelegateResult, error) {
	var buf [4]requirement
	reqs, err := n.checkDelegate(&req, buf[:0])
	if err != nil {
		return nil, err
	}
	strategy := req.Strategy
	cands := n.natsCapable(ctx, n.peers.capable(reqs), reqs)
	var viaMesh []*peer // agents behind other gateways, fewest hops first: after the direct peers
	if !durable {
		viaMesh = n.meshCapable(reqs)
	}
	if len(cands) == 0 && len(viaMesh) == 0 {
		return nil, n.peers.noCapablePeer(reqs)
	}
	res := &DelegateResult{Strategy: strategy}
	ordered := append(n.order(strategy, cands, &res.Skipped), viaMesh...)
	for _, p := range ordered {
		res.Candidates = append(res.Candidates, p.ID)
	}
	if len(ordered) == 0 {
		var why []string
		allRefused := true
		for _, s := range res.Skipped {
			why = append(why, fmt.Sprintf("%s (%s)", s.PeerID, s.Reason))
			allRefused = allRefused && strings.HasPrefix(s.Reason, "refused")
		}
		if allRefused { // nothing will change until a configuration does
			return nil, fmt.Errorf("%w: every peer with %q refused this gateway's handshake: %s; fix the tokens or roles, then reload (SIGHUP)",
				ErrPeerUnavailable, req.RequiredCapabilities, strings.Join(why, ", "))
		}
		return nil, fmt.Errorf("%w: every peer with %q is skipped (an open circuit, or a refused handshake): %s", ErrCircuitOpen, req.RequiredCapabilities, strings.Join(why, ", "))
	}

	ctx, cancel := context.WithTimeout(ctx, n.timeout(req.TimeoutMs, nil))
	defer cancel()
	for _, p := range ordered {
		msg, err := mk(p)
		if err != nil {
			return nil, err
		}
		r := n.deliver(ctx, p, msg, 0, durable)
		res.Attempts = append(res.Attempts, *r)
		res.Result = *r
		if r.Status == StatusOK || !retryable(r) || ctx.Err() != nil {
			break
		}
	}
	return res, nil
}

// retryable reports whether another peer might succeed where r failed.
func retryable(r *Result) bool {
	if r.Status == StatusTimeout {
		return true
	}
	if r.Error == nil {
		return false
	}
	switch r.Error.Code {
	case gateway.CodePeerUnavailable, CodeCircuitOpen, gateway.CodeShuttingDown, CodeOverloaded,
		CodeRateLimited, CodeUnknownAgent, CodeFederationDisabled, gateway.CodeUnauthorized:
		return true
	}
	return r.Error.Retryable
}

// order drops the candidates whose circuit is open (the breaker lets a
// probe through when its open period ends) or whose gateway refused the
// handshake (retried minutes later, or after a reload), noting them in
// skipped; it orders the rest by strategy, and moves peers that look down
// to the end, so they are tried only when no healthier peer answered.
func (n *Node) order(strategy string, cands []*peer, skipped *[]Skipped) []*peer {
	type scored struct {
		p    *peer
		info PeerHealthInfo
	}
	var live []scored
	for _, p := range cands {
		info := n.peerHealth(p.ID)
		if reason := skipReason(info); reason != "" {
			*skipped = append(*skipped, Skipped{PeerID: p.ID, Reason: reason})
			continue
		}
		live = append(live, scored{p, info})
	}
	if len(live) == 0 {
		return nil
	}
	// Rotate first, so that ties under every strategy spread round robin.
	rot := int(n.rr.Add(1)-1) % len(live)
	live = append(live[rot:], live[:rot]...)
	switch strategy {
	case StrategyLeastLoaded:
		slices.SortStableFunc(live, func(a, b scored) int { return int(a.info.InFlight - b.info.InFlight) })
	case StrategyLowestLatency:
		// Unmeasured peers first, so that every peer gets measured.
		slices.SortStableFunc(live, func(a, b scored) int {
			return cmpFloat(a.info.RTTMs, b.info.RTTMs)
		})
	case StrategyRandom:
		rand.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	}
	slices.SortStableFunc(live, func(a, b scored) int {
		return boolInt(a.info.State == HealthDown) - boolInt(b.info.State == HealthDown)
	})
	out := make([]*peer, len(live))
	for i, s := range live {
		out[i] = s.p
	}
	return out
}

// skipReason says why a peer in health info is not worth trying now, or
// "" when it is.
func skipReason(info PeerHealthInfo) string {
	var reason string
	switch {
	case info.State == HealthRefused:
		reason = "refused"
	case info.Circuit == "open":
		reason = "circuit open"
	default:
		return ""
	}
	if info.LastError != "" {
		reason += ": " + info.LastError
	}
	return reason
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// heartbeat pings every peer connection each interval, to measure RTT and
// notice silent failures, and redials peers whose connection dropped (the
// pool's backoff paces the attempts). Peers never used are left alone. It
// returns when bg ends.
func (n *Node) heartbeat(bg context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-bg.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(bg, interval)
		var wg sync.WaitGroup
		for _, p := range n.peers.list() {
			if p.Type == PeerTypeA2A {
				if n.heartbeatsA2A(p) { // a2ahealth.go
					wg.Go(func() { n.heartbeatA2A(ctx, bg, p, interval) })
				}
				continue
			}
			// Only peers in use: a peer never dialled costs nothing, so
			// registering 10,000 does not open 10,000 connections.
			if !p.IsEnabled() || !n.pool.Known(p.ID) {
				continue
			}
			h := n.tracker.get(p.ID)
			wg.Go(func() {
				c := n.pool.Peek(p.ID)
				if c == nil {
					c, _ = n.pool.Get(ctx, p.ID, n.dialer(p))
				}
				if c == nil {
					return
				}
				rtt, err := c.Ping(ctx)
				switch {
				case err == nil:
					h.pong(rtt)
					n.outbox.PeerUp(p.ID)
				case bg.Err() == nil: // no pong: the connection is stalled or dead
					h.record(fmt.Errorf("%w: peer %q sent no heartbeat pong within %v", ErrPeerUnavailable, p.ID, interval), 0)
					c.Abort()
				}
			})
		}
		wg.Wait()
		cancel()
	}
}
