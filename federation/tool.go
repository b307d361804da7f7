package federation

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentfed/agentfed/internal/jsonx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// ToolName is the tool's name, as the seed gives it.
const ToolName = "agent_federation"

// ToolDescription is a one-paragraph description for an LLM host.
const ToolDescription = "Talk to agents on other servers: send a message to a peer's agent, delegate a task to " +
	"any peer with the required capabilities, broadcast to all peers, list, register and unregister peers, " +
	"sync shared context with a peer, and query a peer's capabilities."

//go:embed tool_schema.json
var toolSchema []byte

// ToolSchema returns the JSON Schema of the tool's input object.
func ToolSchema() json.RawMessage { return bytes.Clone(toolSchema) }

// Actions lists the tool's eight actions.
var Actions = []string{"send", "delegate", "broadcast", "list_peers", "register_peer", "unregister_peer", "sync_context", "query_capabilities"}

// Tool is the agent_federation tool of a Node: it takes the seed's action
// object as JSON and returns the action's result. Safe for concurrent use.
type Tool struct{ n *Node }

// Tool returns the node's agent_federation tool.
func (n *Node) Tool() *Tool { return &Tool{n: n} }

// CallJSON runs one action object and returns its result as JSON.
func (t *Tool) CallJSON(ctx context.Context, input []byte) ([]byte, error) {
	out, err := t.Call(ctx, input)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// Call runs one action object and returns its result value.
func (t *Tool) Call(ctx context.Context, input json.RawMessage) (any, error) {
	_, out, err := t.call(ctx, input)
	return out, err
}

// The action objects, as decoded: the request of each action, with the
// "action" member beside its parameters, so that one strict decode reads
// the whole object.
type (
	actionField struct {
		Action string `json:"action"`
	}
	sendInput struct {
		actionField
		SendRequest
	}
	delegateInput struct {
		actionField
		DelegateRequest
	}
	broadcastInput struct {
		actionField
		BroadcastRequest
	}
	registerInput struct {
		actionField
		RegisterRequest
	}
	syncInput struct {
		actionField
		SyncRequest
	}
	unregisterInput struct {
		actionField
		PeerID string `json:"peerId"`
	}
	queryInput struct {
		actionField
		PeerID    string `json:"peerId"`
		TimeoutMs int    `json:"timeoutMs"`
	}
)

// call is Call that also returns the action's name, as input gives it.
func (t *Tool) call(ctx context.Context, input []byte) (action string, out any, err error) {
	action, err = peekAction(input)
	if err != nil {
		return "", nil, err
	}
	if t.n.tracer != nil {
		var span trace.Span
		ctx, span = t.n.tracer.Start(ctx, spanAction, trace.WithAttributes(attribute.String("agentfed.action", clip(action, 32))))
		defer func() { endSpan(span, err) }()
	}
	n := t.n
	switch action {
	case "send":
		var in sendInput
		if err := decodeAction(input, action, &in); err != nil {
			return action, nil, err
		}
		out, err = n.Send(ctx, in.SendRequest)
	case "delegate":
		var in delegateInput
		if err := decodeAction(input, action, &in); err != nil {
			return action, nil, err
		}
		out, err = n.Delegate(ctx, in.DelegateRequest)
	case "broadcast":
		var in broadcastInput
		if err := decodeAction(input, action, &in); err != nil {
			return action, nil, err
		}
		out, err = n.Broadcast(ctx, in.BroadcastRequest)
	case "list_peers":
		if err := decodeAction(input, action, &actionField{}); err != nil {
			return action, nil, err
		}
		out = n.ListPeers()
	case "register_peer":
		var in registerInput
		if err := decodeAction(input, action, &in); err != nil {
			return action, nil, err
		}
		out, err = n.RegisterPeer(in.RegisterRequest)
	case "unregister_peer":
		var in unregisterInput
		if err := decodeAction(input, action, &in); err != nil {
			return action, nil, err
		}
		out, err = n.UnregisterPeer(in.PeerID)
	case "sync_context":
		var in syncInput
		if err := decodeAction(input, action, &in); err != nil {
			return action, nil, err
		}
		out, err = n.SyncContext(ctx, in.SyncRequest)
	case "query_capabilities":
		var in queryInput
		if err := decodeAction(input, action, &in); err != nil {
			return action, nil, err
		}
		out, err = n.QueryCapabilities(ctx, in.PeerID, in.TimeoutMs)
	case "":
		return "", nil, fmt.Errorf("%w: \"action\" is required; one of %s", ErrInvalidParams, strings.Join(Actions, ", "))
	default:
		return action, nil, fmt.Errorf("%w: %q is not an action; use one of %s", ErrUnknownAction, clip(action, 64), strings.Join(Actions, ", "))
	}
	if err != nil {
		return action, nil, err
	}
	return action, out, nil
}

// peekAction reads the "action" member of input, "" when there is none,
// without decoding the rest.
func peekAction(input []byte) (string, error) {
	var d jsonx.Decoder
	d.Reset(input)
	action := ""
	err := d.ReadObject(func(key []byte) error {
		if string(key) != "action" {
			return d.Skip()
		}
		if d.ReadNull() {
			return nil
		}
		v, err := d.ReadName()
		if err != nil {
			return errors.New(`parameter "action" must be a string`)
		}
		action = v
		return nil
	})
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return "", fmt.Errorf("%w: the tool input must be a JSON object with an \"action\" field: %v", ErrInvalidParams, err)
	}
	return action, nil
}

// decodeAction decodes input into in strictly, in one pass: an unknown
// parameter or a wrong type is an error naming the parameter and the
// action.
func decodeAction(input []byte, action string, in any) error {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(in); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidParams, action, jsonProblem(err))
	}
	return nil
}

// jsonProblem rewrites encoding/json errors in terms of the tool's
// parameters rather than Go types.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := paramPath(te.Field)
		if field == "" {
			return fmt.Sprintf("expected a JSON object, got %s", te.Value)
		}
		return fmt.Sprintf("parameter %q must be %s, got %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown parameter %s", s)
	}
	return err.Error()
}

// paramPath is encoding/json's path to a field without the names of the
// embedded Go structs on the way ("SendRequest.MessageOptions.priority"
// is the parameter "priority").
func paramPath(field string) string {
	parts := strings.Split(field, ".")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" && ('A' > p[0] || p[0] > 'Z') {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ".")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return goKind
}
