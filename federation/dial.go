package federation

import (
	"context"

	"github.com/agentfed/agentfed/gateway"
)

// dialer opens a peer-role connection to p.
func (n *Node) dialer(p *peer) gateway.DialFunc {
	return func(ctx context.Context) (*gateway.Client, error) {
		return gateway.Dial(ctx, p.URL, &gateway.DialOptions{
			Role:  gateway.RolePeer,
			Token: p.Token,
			Client: gateway.ClientInfo{
				ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack, Version: Version,
				Platform: "agentfed", InstanceID: n.serverID, DisplayName: n.serverID,
			},
		})
	}
}
