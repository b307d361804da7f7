package federation

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// auth returns the credentials in force; Reload may replace them.
func (n *Node) auth() *AuthConfig { return n.authCfg.Load() }

// credential returns the gateway.auth.peers entry an authenticated peer
// connection matched, or nil.
func (n *Node) credential(id *gateway.Identity) *PeerCredential {
	if !id.Authenticated {
		return nil
	}
	for i, c := range n.auth().Peers {
		if c.ServerID == id.PeerID {
			return &n.auth().Peers[i]
		}
	}
	return nil
}

// checkGrant enforces what the calling peer may reach: its agents and
// capabilities allow-lists and its message size cap.
func (n *Node) checkGrant(id *gateway.Identity, p *RelayParams) error {
	cred := n.credential(id)
	if cred == nil {
		return nil
	}
	target := cmpOr(p.TargetAgent, p.Message.ToAgent)
	if len(cred.AllowAgents) > 0 && !slices.Contains(cred.AllowAgents, target) {
		return n.deny(id, MethodRelay, target, fmt.Sprintf("agent %q is not in the allowAgents of gateway.auth.peers entry %q", target, cred.ServerID))
	}
	if len(cred.AllowCapabilities) > 0 {
		a := n.agents[target]
		if a == nil || !slices.ContainsFunc(a.cfg.Capabilities, func(c string) bool { return slices.Contains(cred.AllowCapabilities, c) }) {
			return n.deny(id, MethodRelay, target, fmt.Sprintf("agent %q has none of the allowCapabilities %q of gateway.auth.peers entry %q", target, cred.AllowCapabilities, cred.ServerID))
		}
	}
	if max := cred.MaxMessageBytes; max > 0 {
		size := len(p.Message.Content)
		if p.Message.Context != nil {
			b, _ := json.Marshal(p.Message.Context)
			size += len(b)
		}
		if size > max {
			return fmt.Errorf("%w: message of %d bytes (content and context) is over the %d-byte maxMessageBytes of gateway.auth.peers entry %q", ErrTooLarge, size, max, cred.ServerID)
		}
	}
	return nil
}

// deny logs and audits a refused request and returns FORBIDDEN naming the
// rule.
func (n *Node) deny(id *gateway.Identity, method, agent, rule string) error {
	if ok, suppressed := n.remoteLog.Allow(); ok {
		n.log.Info("forbidden", "peer", id.PeerID, "method", method, "agent", agent, "rule", rule, "suppressed", suppressed)
	}
	n.audit.refuse(auditEvent{Dir: "in", Kind: "forbidden", Peer: id.PeerID, Method: method, Agent: agent, Outcome: gateway.CodeForbidden, Detail: rule}, time.Now())
	return fmt.Errorf("%w: %s", ErrForbidden, rule)
}

// checkDynamicHost refuses a register_peer URL whose host is not in
// gateway.dynamicPeerHosts (when that list is set); see peerhosts.go.
func (n *Node) checkDynamicHost(raw string) error { return n.hostAllow.checkURL(raw) }

// replayGuard refuses messages whose timestamp is outside the window, and
// message ids already seen from the same sender. Ids are kept per sender,
// so one sender flooding ids evicts only its own.
type replayGuard struct {
	window time.Duration

	mu      sync.Mutex // guards senders
	senders map[string]*seenSet
}

// seenSet is one sender's remembered ids; order[head:] holds them oldest
// first. Forgetting advances head, and the slice is compacted only once
// half of it is forgotten, so that each id costs O(1) however many are
// remembered.
type seenSet struct {
	seen  map[string]seenID
	order []string
	head  int
}

type seenID struct {
	until   int64 // Unix ms after which the id can no longer come fresh
	durable bool
}

const (
	maxSeenPerSender = 200_000 // beyond this a sender's oldest ids are forgotten
	maxSenders       = 10_000  // distinct senders tracked at once
)

func newReplayGuard(window time.Duration) *replayGuard {
	return &replayGuard{window: window, senders: make(map[string]*seenSet)}
}

// check validates msg's timestamp and that its id is new from that
// sender. Every id is remembered with whether it came durable: a durable
// message may arrive again durable (the receiver's once-only store answers
// the redelivery without running the agent), but any other repeat, such
// as a delivered plain message resent as durable, is REPLAYED.
func (g *replayGuard) check(msg *Message, durable bool) error {
	now := time.Now()
	skew := now.Sub(time.UnixMilli(msg.Timestamp))
	if skew > g.window || skew < -g.window {
		return fmt.Errorf("%w: message %q has timestamp %s, %v from this gateway's clock (window ±%v); check the sender's clock",
			ErrStale, msg.MessageID, time.UnixMilli(msg.Timestamp).UTC().Format(time.RFC3339), skew.Round(time.Second), g.window)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	set := g.senders[msg.FromServer]
	if set == nil {
		if len(g.senders) >= maxSenders {
			for k := range g.senders { // bounded memory: forget one sender
				delete(g.senders, k)
				break
			}
		}
		set = &seenSet{seen: make(map[string]seenID)}
		g.senders[msg.FromServer] = set
	}
	set.pruneLocked(now)
	if seen, dup := set.seen[msg.MessageID]; dup {
		if seen.durable && durable {
			return nil
		}
		return fmt.Errorf("%w: message %q from %q was already received", ErrReplayed, msg.MessageID, msg.FromServer)
	}
	if len(set.order)-set.head >= maxSeenPerSender {
		set.forgetOldestLocked()
	}
	// A message stamped up to a window ahead stays fresh until a window
	// after its stamp: remember its id that long (now + 2 windows covers it,
	// and keeps order sorted by expiry).
	set.seen[msg.MessageID] = seenID{until: now.Add(2 * g.window).UnixMilli(), durable: durable}
	set.order = append(set.order, msg.MessageID)
	return nil
}

// pruneLocked forgets ids whose time has passed.
func (s *seenSet) pruneLocked(now time.Time) {
	ms := now.UnixMilli()
	for s.head < len(s.order) && s.seen[s.order[s.head]].until < ms {
		s.forgetOldestLocked()
	}
	if s.head > 1024 && 2*s.head > len(s.order) {
		n := copy(s.order, s.order[s.head:])
		clear(s.order[n:])
		s.order, s.head = s.order[:n], 0
	}
}

func (s *seenSet) forgetOldestLocked() {
	delete(s.seen, s.order[s.head])
	s.order[s.head] = "" // let the string go
	s.head++
}
