package federation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agentfed/agentfed/gateway"
)

// HealthRefused is the state of a peer whose gateway refused the handshake
// for good (a wrong token, a role or protocol it does not serve): no redial
// can fix that, so it is retried only every few minutes or after a
// configuration reload. lastError says why.
const HealthRefused = "refused"

// peerHealth is a peer's health as list_peers and federation.health show
// it: the tracker's, or refused while a refusal keeps it waiting.
func (n *Node) peerHealth(id string) PeerHealthInfo {
	info := n.tracker.get(id).info()
	if err := n.pool.RefusedErr(id); err != nil {
		info.State, info.LastError = HealthRefused, err.Error()
	}
	return info
}

// refused explains a handshake p's gateway refused for good, logs what to
// fix (once per attempt, and attempts are minutes apart), and returns the
// error callers see.
func (n *Node) refused(p *peer, err error) error {
	var ge *gateway.Error
	errors.As(err, &ge)
	hint := refusalHint(ge)
	n.log.Warn("peer refused the handshake; not redialling for minutes: fix the configuration, then reload (SIGHUP)",
		"peer", p.ID, "url", p.URL, "code", ge.Code, "reason", clip(ge.Message, 200), "fix", hint)
	return fmt.Errorf("peer %q at %s refused the handshake: %w; %s", p.ID, p.URL, err, hint)
}

// refusalHint says what to change for a refusal.
func refusalHint(e *gateway.Error) string {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Code == gateway.CodeUnauthorized:
		return "its token must match one of the peer gateway's gateway.auth.peers tokens (federation.peers[].token here)"
	case strings.Contains(msg, "role"):
		return "it does not accept agentfed peers: it may be an OpenClaw gateway, whose agents agentfed reaches through an agent with handler type openclaw, not through federation.peers"
	case strings.Contains(msg, "protocol"):
		return "it speaks another gateway protocol version; upgrade the older gateway"
	}
	return "check federation.peers[] for this peer against the peer gateway's gateway.auth settings"
}
