package schedule

import (
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Retry backoff of one message: 100 ms doubling to 10 s, jittered ±50 %.
const (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 10 * time.Second
)

// Outcome is how one attempt went, as far as holding back its peer goes.
type Outcome int

const (
	None   Outcome = iota // no delivery was made
	Up                    // the peer's gateway answered: ok, or an error about the message
	Down                  // the peer could not be reached (or its circuit is open)
	Unsure                // a timeout: the agent, or the peer, may be slow
)

// A gate holds back the queued messages of a peer that does not answer.
// While it is down one message at a time probes it, at a jittered
// exponential backoff; the others wait in memory, neither attempted nor
// rewritten, so a backlog to a down peer costs one attempt per backoff
// interval whatever its size. When the peer answers (a probe, any other
// delivery, or a heartbeat) every waiting message is due at once.
type gate struct {
	bo      *backoff.ExponentialBackOff
	probeAt time.Time // when the next probe may start
	probing bool      // a probe is in flight
	last    *Item     // the last probe: the next probes with it again
}

func newBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: MinBackoff, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: MaxBackoff}
}

// RetryDelay is how long it waits before its next attempt after outcome:
// its own jittered exponential backoff, or for a held peer the time until
// its next probe (then it is parked, and this is only what status shows).
func (s *Schedule) RetryDelay(it *Item, outcome Outcome) time.Duration {
	if g := s.gates[it.Key]; outcome == Down && g != nil {
		return max(time.Until(g.probeAt), 0)
	}
	if it.bo == nil {
		it.bo = newBackoff()
	}
	return it.bo.NextBackOff()
}

// Record opens, keeps or closes the gate of it's peer after an attempt
// with outcome; held reports that the peer has just begun to be held back.
func (s *Schedule) Record(it *Item, outcome Outcome, now time.Time) (held bool) {
	probe := it.probe
	it.probe = false
	g := s.gates[it.Key]
	switch {
	case outcome == Up && g != nil:
		delete(s.gates, it.Key)
		s.wakePeer(it.Key)
	case outcome == Down && g == nil:
		g = &gate{bo: newBackoff()}
		g.probeAt = now.Add(g.bo.NextBackOff())
		s.gates[it.Key] = g
		return true
	case probe && g != nil: // a probe that failed, timed out or was not made
		g.probing, g.last = false, nil
		if outcome != None {
			g.probeAt, g.last = now.Add(g.bo.NextBackOff()), it
		}
	}
	return false
}

// hold parks it if its peer is down and it is not the probe; an expired
// message goes on, to be marked dead.
func (s *Schedule) hold(it *Item, now time.Time) bool {
	g := s.gates[it.Key]
	if g == nil || it.probe || it.Expires != 0 && it.Expires <= now.UnixMilli() {
		return false
	}
	s.Park(it)
	return true
}

// releaseProbes makes one waiting message of each down peer whose probe
// is due ready, as that peer's probe. A gate with nothing left to send is
// forgotten: the next message for that peer probes it.
func (s *Schedule) releaseProbes(now time.Time) {
	for key, g := range s.gates {
		if g.probing || now.Before(g.probeAt) {
			continue
		}
		it := s.unparkOne(key, g.last)
		if it == nil {
			delete(s.gates, key)
			continue
		}
		it.probe, g.probing = true, true
	}
}

// probeWait is how long until the next probe is due.
func (s *Schedule) probeWait(now time.Time) time.Duration {
	wait := time.Hour
	for _, g := range s.gates {
		if !g.probing {
			wait = min(wait, max(g.probeAt.Sub(now), 0))
		}
	}
	return wait
}

// PeerUp makes the queued messages for peer due now: it answered, so
// there is no reason to wait out their backoff. Durable delegations
// waiting for a capable peer are due again too. It reports whether any
// message became due.
func (s *Schedule) PeerUp(peer string) bool {
	found := s.wakePeer(peer)
	delete(s.gates, peer)
	for key := range s.gates {
		if strings.HasPrefix(key, delegatePrefix) {
			found = s.wakePeer(key) || found
			delete(s.gates, key)
		}
	}
	return found
}
