package federation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
)

// maxA2ACardCaps bounds the capabilities taken from one A2A peer's card.
const maxA2ACardCaps = 256

// setCardSkills makes A2A peer p's capabilities its configured ones plus
// the ids and tags of its card's skills, so that delegate finds it by
// what its card says it does. p's entry is updated in place (its caps
// replaced, never mutated), unless p was removed or replaced meanwhile.
func (r *registry) setCardSkills(p *peer, skills []a2a.AgentSkill) {
	names := slices.Clone(p.Capabilities)
	for _, s := range skills {
		names = append(names, s.ID)
		names = append(names, s.Tags...)
	}
	names = slices.DeleteFunc(names, func(s string) bool { return s == "" })
	slices.Sort(names)
	names = slices.Compact(names)
	caps, _ := parseCapabilities(names[:min(len(names), maxA2ACardCaps)])
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[p.ID] != p || slices.Equal(p.caps, caps) {
		return
	}
	r.removeLocked(p)
	p.caps = caps
	r.addLocked(p)
}

// heartbeatA2A reads A2A peer p's card, as a gateway peer is pinged: it
// measures the round trip, marks the peer seen (and resumes its outbox
// queue) or notes the failure, and takes the card's skills as
// capabilities.
func (n *Node) heartbeatA2A(ctx, bg context.Context, p *peer, interval time.Duration) {
	h := n.tracker.get(p.ID)
	hc, _, err := n.a2aHTTPClient(p)
	if err != nil {
		h.record(fmt.Errorf("%w: %v", ErrPeerUnavailable, err), 0)
		return
	}
	defer hc.CloseIdleConnections()
	start := time.Now()
	card, err := agentcard.NewResolver(hc).Resolve(ctx, strings.TrimSuffix(p.URL, "/"))
	switch {
	case err == nil:
		h.pong(time.Since(start))
		n.outbox.PeerUp(p.ID)
		n.peers.setCardSkills(p, card.Skills)
	case bg.Err() == nil:
		h.record(fmt.Errorf("%w: A2A peer %q: its agent card at %s did not load within %v: %v", ErrPeerUnavailable, p.ID, p.URL, interval, err), 0)
	}
}

// heartbeatsA2A says whether the heartbeat reads p's card: an enabled A2A
// peer from the config file, or one in use (it has a client).
func (n *Node) heartbeatsA2A(p *peer) bool {
	return p.Type == PeerTypeA2A && p.IsEnabled() && (p.source == SourceStatic || n.a2aPeers.known(p.ID))
}
