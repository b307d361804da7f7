package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/agentfed/agentfed/gateway"
)

// invocation is a local agent handling one relayed message: what its tool
// calls may do, and on whose behalf.
type invocation struct {
	n       *Node
	agentID string
	msg     *Message
	granted []string // actions the sender may have run on its behalf
	grantOf string   // where granted comes from, for error messages
}

type invocationKey struct{}

// withInvocation marks ctx as agent's handling of msg from the peer
// gateway id.
func (n *Node) withInvocation(ctx context.Context, id *gateway.Identity, agentID string, msg *Message) context.Context {
	inv := &invocation{n: n, agentID: agentID, msg: msg,
		grantOf: fmt.Sprintf("the sender %q has no gateway.auth.peers entry with allowActions", msg.FromServer)}
	if cred := n.credential(id); cred != nil {
		inv.granted = cred.AllowActions
		inv.grantOf = fmt.Sprintf("gateway.auth.peers[serverId=%s].allowActions is %v", cred.ServerID, cred.AllowActions)
	}
	return context.WithValue(ctx, invocationKey{}, inv)
}

func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	return inv
}

// AgentTool is the agent_federation tool as a local agent uses it while it
// handles a message: actions run on this gateway on behalf of the
// message's sender. An agent can never do more than its caller may: an
// action runs only when the agent's own allow-list and the sender's grant
// (gateway.auth.peers[].allowActions, which allows nothing when empty)
// both allow it. Safe for concurrent use.
type AgentTool struct {
	inv   *invocation
	allow []string
}

// ToolFor returns the tool a Handler may call while handling a message; ctx
// is (or derives from) the one Handle got. allow lists the actions the
// agent itself may run. ok is false when ctx is not a message delivery's.
func ToolFor(ctx context.Context, allow []string) (t *AgentTool, ok bool) {
	inv := invocationFrom(ctx)
	if inv == nil {
		return nil, false
	}
	return &AgentTool{inv: inv, allow: allow}, true
}

// Actions lists the actions both the agent and its caller allow.
func (t *AgentTool) Actions() []string {
	var out []string
	for _, a := range Actions {
		if slices.Contains(t.allow, a) && slices.Contains(t.inv.granted, a) {
			out = append(out, a)
		}
	}
	return out
}

// Call runs one action object, as Tool.Call does, if it is allowed. The
// messages it sends come from the agent (fromAgent) and carry the handled
// message's hop count and path on (see Message.Hops).
func (t *AgentTool) Call(ctx context.Context, input json.RawMessage) (any, error) {
	action, _ := peekAction(input) // on error Tool.call explains what is wrong
	inv := t.inv
	switch {
	case !slices.Contains(Actions, action):
	case !slices.Contains(t.allow, action):
		return nil, fmt.Errorf("%w: agent %q may not run %s (its handler.tools.allowActions is %v)",
			ErrForbidden, inv.agentID, action, t.allow)
	case !slices.Contains(inv.granted, action):
		return nil, fmt.Errorf("%w: agent %q may not run %s on behalf of %q: %s",
			ErrForbidden, inv.agentID, action, inv.msg.FromServer, inv.grantOf)
	}
	if slices.Contains(messageActions, action) {
		input = withField(input, "fromAgent", inv.agentID) // its messages come from the agent, whatever the model says
	}
	action, out, err := inv.n.Tool().call(ctx, input)
	inv.n.audit.write(auditEvent{Dir: "agent", Kind: "tool", Action: action, Agent: inv.agentID,
		Peer: inv.msg.FromServer, MessageID: inv.msg.MessageID, CorrelationID: inv.msg.CorrelationID, Outcome: outcomeOf(err)})
	return out, err
}

// messageActions are the actions that send a message and take fromAgent.
var messageActions = []string{"send", "delegate", "broadcast", "sync_context"}

// withField returns the JSON object input with key set to value; input
// itself when it is not an object (Tool.Call then says what is wrong).
func withField(input json.RawMessage, key string, value any) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(input, &obj) != nil || obj == nil {
		return input
	}
	obj[key], _ = json.Marshal(value)
	out, err := json.Marshal(obj)
	if err != nil {
		return input
	}
	return out
}

// Usage is the model tokens a handler spent on one message.
type Usage struct {
	Model            string `json:"model,omitempty"`
	PromptTokens     int    `json:"promptTokens"`
	CompletionTokens int    `json:"completionTokens"`
	TotalTokens      int    `json:"totalTokens"`
}

// RecordUsage writes what a handler spent on the message it is handling
// (ctx is, or derives from, the one Handle got) to the audit log. Outside
// a delivery it does nothing.
func RecordUsage(ctx context.Context, u Usage) {
	inv := invocationFrom(ctx)
	if inv == nil {
		return
	}
	inv.n.audit.write(auditEvent{Dir: "agent", Kind: "usage", Agent: inv.agentID, Peer: inv.msg.FromServer,
		MessageID: inv.msg.MessageID, CorrelationID: inv.msg.CorrelationID, Outcome: "ok",
		Detail: fmt.Sprintf("model=%s promptTokens=%d completionTokens=%d totalTokens=%d",
			clip(u.Model, 80), u.PromptTokens, u.CompletionTokens, u.TotalTokens)})
}
