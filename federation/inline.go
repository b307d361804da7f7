package federation

import (
	"context"
	"encoding/json"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/wsconn"
)

// rpcHandler is the gateway.Handler of a Node. It is served on each
// connection's reader goroutine (wsconn.Inliner), since serveRPC detaches
// before anything that may block.
type rpcHandler struct{ n *Node }

var _ wsconn.Inliner = rpcHandler{}

func (h rpcHandler) ServeRPC(ctx context.Context, id *gateway.Identity, method string, params json.RawMessage) (any, error) {
	return h.n.serveRPC(ctx, id, method, params)
}

func (rpcHandler) ServesInline() bool { return true }
