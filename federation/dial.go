package federation

import (
	"context"
	"fmt"

	"github.com/agentfed/agentfed/gateway"
)

// dialer opens a peer-role connection to p, over TLS for a wss:// URL as
// p's tls settings say (see peerTLSConfig). A dynamic peer's URL and the
// address it connects to are checked against gateway.dynamicPeerHosts at
// every dial (see peerhosts.go). No dial follows a redirect.
func (n *Node) dialer(p *peer) gateway.DialFunc {
	return func(ctx context.Context) (*gateway.Client, error) {
		var guard *hostAllowList
		if p.source != SourceStatic { // dynamic and discovered
			guard = n.hostAllow.Load()
		}
		if err := guard.checkURL(p.URL); err != nil {
			return nil, fmt.Errorf("peer %q: %w", p.ID, err)
		}
		hc, err := n.clients.get(&p.PeerConfig, guard, n.log)
		if err != nil {
			return nil, err
		}
		c, err := gateway.Dial(ctx, p.URL, &gateway.DialOptions{
			Role:       gateway.RolePeer,
			Token:      p.Token,
			HTTPClient: hc,
			Client: gateway.ClientInfo{
				ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack, Version: Version,
				Platform: "agentfed", InstanceID: n.serverID, DisplayName: n.serverID,
			},
		})
		if gateway.Refused(err) {
			return nil, n.refused(p, err)
		}
		if err != nil {
			return nil, explainDialError(p.ID, err)
		}
		if got := c.Hello().Server.ServerID; p.ServerID != "" && got != p.ServerID {
			c.Close()
			return nil, gateway.NewError(gateway.CodeForbidden, fmt.Sprintf(
				"peer %q at %s is gateway %q, not the configured serverId %q; check its url", p.ID, p.URL, got, p.ServerID))
		}
		return c, nil
	}
}
