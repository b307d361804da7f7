package federation

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Hop limits. A chain of agents passing work on (an llm agent delegating
// to one that delegates back, ...) ends at federation.maxHops relays.
const (
	DefaultMaxHops = 8
	maxMaxHops     = 64 // the most federation.maxHops may be
)

func (n *Node) maxHops() int64 { return int64(n.cfg.Federation.MaxHops) }

// chain makes msg, about to be sent to peer p, the next link of the chain
// ctx is part of: when ctx is one of this node's agents handling a relayed
// message, msg gets that message's Hops + 1 and its Path with this
// gateway. A message past federation.maxHops is refused here already.
func (n *Node) chain(ctx context.Context, msg *Message, p *peer) error {
	inv := invocationFrom(ctx)
	if inv == nil || inv.n != n {
		return nil
	}
	msg.Hops = inv.msg.Hops + 1
	msg.Path = append(slices.Clip(pathOf(inv.msg)), n.serverID)
	if msg.Hops >= n.maxHops() {
		return n.hopLimit(msg.Path, hopTarget(p), msg.Hops)
	}
	return nil
}

// hopTarget names p in a HOP_LIMIT error: by its gateway's id, else as a
// peer. It is built only for the error, not for every message.
func hopTarget(p *peer) string {
	if p.ServerID == "" && p.ID != "" {
		return fmt.Sprintf("peer %q", p.ID)
	}
	return p.ServerID
}

// checkHops refuses a relayed message that is past federation.maxHops, or
// whose hops and path disagree.
func (n *Node) checkHops(msg *Message) error {
	switch p := msg.Path; {
	case msg.Hops < 0:
		return fmt.Errorf("%w: message.hops is %d; it counts relays and cannot be negative", ErrInvalidParams, msg.Hops)
	case len(p) > 0 && int64(len(p)) != msg.Hops+1:
		return fmt.Errorf("%w: message.path names %d gateways but message.hops is %d; a path holds hops+1", ErrInvalidParams, len(p), msg.Hops)
	case len(p) > 0 && p[len(p)-1] != msg.FromServer:
		return fmt.Errorf("%w: message.path must end with its fromServer %q", ErrInvalidParams, clip(msg.FromServer, 64))
	case msg.Hops >= n.maxHops():
		return n.hopLimit(pathOf(msg), n.serverID, msg.Hops)
	}
	return nil
}

// pathOf is m's path; a message without one starts its chain.
func pathOf(m *Message) []string {
	if len(m.Path) > 0 {
		return m.Path
	}
	return []string{m.FromServer}
}

// hopLimit is the HOP_LIMIT error for a message along path, hops past its
// chain's start, that would go on to target: it shows the path and, when
// the chain comes back to a gateway, the loop.
func (n *Node) hopLimit(path []string, target string, hops int64) error {
	full := path
	if target != "" {
		full = append(slices.Clip(path), target)
	}
	loop := ""
	if l := firstLoop(full); l != nil {
		loop = fmt.Sprintf("; the chain loops: %s (agents that keep passing work to each other)", showPath(l))
	}
	return fmt.Errorf("%w: relay %d along %s is past federation.maxHops (%d) of gateway %q%s", ErrHopLimit,
		hops+1, showPath(full), n.maxHops(), n.serverID, loop)
}

// firstLoop returns the first stretch of path that starts and ends at the
// same gateway, or nil.
func firstLoop(path []string) []string {
	seen := make(map[string]int, len(path))
	for j, id := range path {
		if i, ok := seen[id]; ok {
			return path[i : j+1]
		}
		seen[id] = j
	}
	return nil
}

// showPath writes a path of gateways as a → b → c, eliding the middle of
// a long one and clipping long names.
func showPath(path []string) string {
	const ends = 10
	parts := make([]string, 0, min(len(path), 2*ends+1))
	for i, id := range path {
		switch {
		case len(path) > 2*ends+1 && i == ends:
			parts = append(parts, fmt.Sprintf("… (%d more) …", len(path)-2*ends))
		case len(path) > 2*ends+1 && i > ends && i < len(path)-ends:
		default:
			parts = append(parts, clip(id, 64))
		}
	}
	return strings.Join(parts, " → ")
}
