package federation

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	var head struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(input, &head); err != nil {
		return nil, fmt.Errorf("%w: the tool input must be a JSON object with an \"action\" field: %v", ErrInvalidParams, jsonProblem(err))
	}
	n := t.n
	switch head.Action {
	case "send":
		var req SendRequest
		if err := decodeAction(input, head.Action, &req); err != nil {
			return nil, err
		}
		return n.Send(ctx, req)
	case "delegate":
		var req DelegateRequest
		if err := decodeAction(input, head.Action, &req); err != nil {
			return nil, err
		}
		return n.Delegate(ctx, req)
	case "broadcast":
		var req BroadcastRequest
		if err := decodeAction(input, head.Action, &req); err != nil {
			return nil, err
		}
		return n.Broadcast(ctx, req)
	case "list_peers":
		if err := decodeAction(input, head.Action, &struct{}{}); err != nil {
			return nil, err
		}
		return n.ListPeers(), nil
	case "register_peer":
		var req RegisterRequest
		if err := decodeAction(input, head.Action, &req); err != nil {
			return nil, err
		}
		return n.RegisterPeer(req)
	case "unregister_peer":
		var req struct {
			PeerID string `json:"peerId"`
		}
		if err := decodeAction(input, head.Action, &req); err != nil {
			return nil, err
		}
		return n.UnregisterPeer(req.PeerID)
	case "sync_context":
		var req SyncRequest
		if err := decodeAction(input, head.Action, &req); err != nil {
			return nil, err
		}
		return n.SyncContext(ctx, req)
	case "query_capabilities":
		var req struct {
			PeerID    string `json:"peerId"`
			TimeoutMs int    `json:"timeoutMs"`
		}
		if err := decodeAction(input, head.Action, &req); err != nil {
			return nil, err
		}
		return n.QueryCapabilities(ctx, req.PeerID, req.TimeoutMs)
	case "":
		return nil, fmt.Errorf("%w: \"action\" is required; one of %s", ErrInvalidParams, strings.Join(Actions, ", "))
	}
	return nil, fmt.Errorf("%w: %q is not an action; use one of %s", ErrUnknownAction, head.Action, strings.Join(Actions, ", "))
}

// decodeAction decodes input into req strictly: an unknown parameter or a
// wrong type is an error naming the parameter and the action.
func decodeAction(input []byte, action string, req any) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(input, &keys); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidParams, action, jsonProblem(err))
	}
	delete(keys, "action")
	rest, _ := json.Marshal(keys)
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidParams, action, jsonProblem(err))
	}
	return nil
}

// jsonProblem rewrites encoding/json errors in terms of the tool's
// parameters rather than Go types.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
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
