package federation

import (
	"fmt"
	"slices"
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
		if a == nil || !grantAllows(cred.AllowCapabilities, a.cfg.Capabilities) {
			return n.deny(id, MethodRelay, target, fmt.Sprintf("agent %q has none of the allowCapabilities %q of gateway.auth.peers entry %q", target, cred.AllowCapabilities, cred.ServerID))
		}
	}
	return nil
}

// checkSize enforces the calling peer's maxMessageBytes on the whole
// relayed request (the message with every id, its content, context, seal
// and signature), before anything decodes it.
func (n *Node) checkSize(id *gateway.Identity, raw []byte) error {
	cred := n.credential(id)
	if cred == nil || cred.MaxMessageBytes <= 0 || len(raw) <= cred.MaxMessageBytes {
		return nil
	}
	return fmt.Errorf("%w: federation.relay request of %d bytes (the whole message with its ids, content, context, seal and signature) is over the %d-byte maxMessageBytes of gateway.auth.peers entry %q",
		ErrTooLarge, len(raw), cred.MaxMessageBytes, cred.ServerID)
}

// deny logs and audits a refused request and returns FORBIDDEN naming the
// rule.
func (n *Node) deny(id *gateway.Identity, method, agent, rule string) error {
	if ok, suppressed := n.remoteLog.Allow(); ok {
		n.log.Info("forbidden", "peer", id.PeerID, "method", method, "agent", agent, "rule", rule, "suppressed", suppressed)
	}
	n.metrics.refused("forbidden")
	n.audit.refuse(auditEvent{Dir: "in", Kind: "forbidden", Peer: id.PeerID, Method: method, Agent: agent, Outcome: gateway.CodeForbidden, Detail: rule}, time.Now())
	return fmt.Errorf("%w: %s", ErrForbidden, rule)
}

// checkDynamicHost refuses a register_peer URL whose host is not in
// gateway.dynamicPeerHosts (when that list is set); see peerhosts.go.
func (n *Node) checkDynamicHost(raw string) error { return n.hostAllow.Load().checkURL(raw) }
