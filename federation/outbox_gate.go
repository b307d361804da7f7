package federation

import (
	"strings"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/cenkalti/backoff/v5"
)

// A peerGate holds back the queued messages of a peer that does not
// answer. While it is down one message at a time probes it, at a jittered
// exponential backoff (100 ms doubling to 10 s, ±50 %); the others wait in
// memory, neither attempted nor rewritten, so a backlog to a down peer
// costs one attempt per backoff interval whatever its size. When the peer
// answers (a probe, any other delivery, or a heartbeat pong) every waiting
// message is due at once.
type peerGate struct {
	bo      *backoff.ExponentialBackOff
	probeAt time.Time  // when the next probe may start
	probing bool       // a probe is in flight
	last    *schedItem // the last probe: the next probes with it again
}

// Outcome classes of one attempt, for the gates.
const (
	outcomeNone   = iota // no delivery was made
	outcomeUp            // the peer's gateway answered: ok, or an error about the message
	outcomeDown          // the peer could not be reached (or its circuit is open)
	outcomeUnsure        // a timeout: the agent, or the peer, may be slow
)

func classify(r *Result) int {
	switch {
	case r.Status == StatusOK:
		return outcomeUp
	case r.Status == StatusTimeout || r.Error == nil || r.Error.Code == gateway.CodeTimeout:
		return outcomeUnsure
	case peerAnswered(r.Error):
		return outcomeUp
	}
	return outcomeDown
}

func newRetryBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: outboxMinBackoff, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: outboxMaxBackoff}
}

// retryDelay is how long it waits before its next attempt, on its own
// jittered exponential schedule.
func (o *outbox) retryDelay(it *schedItem, class int) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if g := o.gates[it.peer]; class == outcomeDown && g != nil {
		return max(time.Until(g.probeAt), 0) // parked; this is only what status shows
	}
	if it.bo == nil {
		it.bo = newRetryBackoff()
	}
	return it.bo.NextBackOff()
}

// noteOutcomeLocked opens, keeps or closes it's peer's gate after an
// attempt.
func (o *outbox) noteOutcomeLocked(it *schedItem, class int, now time.Time) {
	probe := it.probe
	it.probe = false
	g := o.gates[it.peer]
	switch {
	case class == outcomeUp && g != nil:
		delete(o.gates, it.peer)
		o.sched.wakePeer(it.peer)
	case class == outcomeDown && g == nil:
		g = &peerGate{bo: newRetryBackoff()}
		g.probeAt = now.Add(g.bo.NextBackOff())
		o.gates[it.peer] = g
		o.n.log.Debug("durable messages held for a peer that does not answer", "peer", it.peer)
	case probe && g != nil: // a probe that failed, timed out or was not made
		g.probing, g.last = false, nil
		if class != outcomeNone {
			g.probeAt, g.last = now.Add(g.bo.NextBackOff()), it
		}
	}
}

// holdLocked parks it if its peer is down and it is not the probe; an
// expired message goes on, to be marked dead.
func (o *outbox) holdLocked(it *schedItem, now time.Time) bool {
	g := o.gates[it.peer]
	if g == nil || it.probe || it.expires != 0 && it.expires <= now.UnixMilli() {
		return false
	}
	o.sched.park(it)
	return true
}

// releaseProbesLocked makes one waiting message of each down peer whose
// probe is due ready, as that peer's probe. A gate with nothing left to
// send is forgotten: the next message for that peer probes it.
func (o *outbox) releaseProbesLocked(now time.Time) {
	for peer, g := range o.gates {
		if g.probing || now.Before(g.probeAt) {
			continue
		}
		it := o.sched.unparkOne(peer, g.last)
		if it == nil {
			delete(o.gates, peer)
			continue
		}
		it.probe, g.probing = true, true
	}
}

// probeWaitLocked is how long until the next probe is due.
func (o *outbox) probeWaitLocked(now time.Time) time.Duration {
	wait := time.Hour
	for _, g := range o.gates {
		if !g.probing {
			wait = min(wait, max(g.probeAt.Sub(now), 0))
		}
	}
	return wait
}

// peerUp makes the queued messages for peer due now: a heartbeat reached
// it, so there is no reason to wait out their backoff. Durable delegations
// waiting for a capable peer are due again too.
func (o *outbox) peerUp(peer string) {
	o.mu.Lock()
	found := o.sched.wakePeer(peer)
	delete(o.gates, peer)
	for gate := range o.gates {
		if strings.HasPrefix(gate, delegateGate) {
			found = o.sched.wakePeer(gate) || found
			delete(o.gates, gate)
		}
	}
	o.mu.Unlock()
	if found {
		o.poke()
	}
}
