package agent

import (
	"context"
	"fmt"
	"maps"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/wsconn"
)

// Echo is an agent that answers every message with its content. The reply's
// context is the message's context (which the gateway has already merged with
// the synced session context) plus a "received" object describing the
// envelope, so a user can see exactly what arrived:
//
//	{"received": {"messageId": "...", "fromAgent": "...", "fromServer": "...",
//	              "type": "request", "correlationId": "...", "priority": "normal"}}
//
// A "received" key in the message's own context is replaced. The zero Echo is
// ready to use.
type Echo struct{}

var (
	_ federation.Handler = Echo{}
	_ wsconn.Immediate   = Echo{}
)

// Immediate reports that Echo neither blocks nor does I/O, so that
// federation answers its messages on the connection's reader goroutine.
func (Echo) Immediate() bool { return true }

// Handle implements [federation.Handler].
func (Echo) Handle(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
	if msg == nil {
		return nil, fmt.Errorf("%w: echo: message is missing", federation.ErrInvalidParams)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	out := maps.Clone(msg.Context)
	if out == nil {
		out = make(map[string]any, 1)
	}
	out["received"] = map[string]any{
		"messageId":     msg.MessageID,
		"fromAgent":     msg.FromAgent,
		"fromServer":    msg.FromServer,
		"type":          string(msg.Type),
		"correlationId": msg.CorrelationID,
		"priority":      string(msg.Priority),
	}
	return &federation.Answer{Content: msg.Content, Context: out}, nil
}
