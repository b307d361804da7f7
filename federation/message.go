package federation

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// MessageType is the kind of a FederationMessage.
type MessageType string

// The message types of the seed's FederationMessage.
const (
	TypeRequest    MessageType = "request"
	TypeResponse   MessageType = "response"
	TypeDelegation MessageType = "delegation"
	TypeBroadcast  MessageType = "broadcast"
	TypeSync       MessageType = "sync"
)

// Valid reports whether t is one of the five message types.
func (t MessageType) Valid() bool {
	switch t {
	case TypeRequest, TypeResponse, TypeDelegation, TypeBroadcast, TypeSync:
		return true
	}
	return false
}

// Priority orders messages wherever they wait: urgent before high before
// normal before low.
type Priority string

// The four priority levels. The empty Priority means PriorityNormal.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// ParsePriority validates s; the empty string is PriorityNormal.
func ParsePriority(s string) (Priority, error) {
	switch p := Priority(s); p {
	case "":
		return PriorityNormal, nil
	case PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent:
		return p, nil
	}
	return "", fmt.Errorf("%w: priority %s is not one of low, normal, high, urgent", ErrInvalidParams, quoteBounded(s))
}

// Rank orders priorities: a higher rank is served first.
func (p Priority) Rank() int {
	switch p {
	case PriorityUrgent:
		return 3
	case PriorityHigh:
		return 2
	case PriorityLow:
		return 0
	}
	return 1
}

// Message is the seed's FederationMessage: the unit that travels between
// gateways inside federation.relay.
type Message struct {
	MessageID     string         `json:"messageId"`
	FromAgent     string         `json:"fromAgent"`
	FromServer    string         `json:"fromServer"`
	ToAgent       string         `json:"toAgent"`
	Type          MessageType    `json:"type"`
	Content       string         `json:"content"`
	Context       map[string]any `json:"context,omitempty"`
	CorrelationID string         `json:"correlationId,omitempty"`
	Priority      Priority       `json:"priority,omitempty"`
	Timestamp     int64          `json:"timestamp"`
	// Hops counts the relays the chain this message belongs to made
	// before it: 0 for a message an operator or a program sends, the
	// handled message's Hops + 1 for one an agent sends while handling a
	// relayed message (ToolFor). A gateway refuses a message past
	// federation.maxHops (HOP_LIMIT). agentfed's addition.
	Hops int64 `json:"hops,omitempty"`
	// Path is the serverIds of the chain's gateways, its origin first and
	// this message's fromServer last: Hops+1 of them. Omitted when Hops
	// is 0. agentfed's addition.
	Path []string `json:"path,omitempty"`
	// Route is set on a reply that crossed the mesh: the serverIds of
	// the gateways its request crossed, its origin first and the
	// answering gateway last (see mesh.go). agentfed's addition.
	Route []string `json:"route,omitempty"`
	// Sealed holds content and context encrypted to the target gateway,
	// which are then empty in the clear (see Message.Seal). agentfed's
	// addition.
	Sealed *Sealed `json:"sealed,omitempty"`
	// Signature is the origin gateway's Ed25519 signature of every other
	// field, base64url (see Identity.Sign). agentfed's addition.
	Signature string `json:"signature,omitempty"`
}

// newID returns a version 7 UUID (RFC 9562): the Unix time in
// milliseconds, then 74 random bits. Being time-ordered, the IDs of
// consecutive messages land next to each other in the outbox's and the
// receiver's B+trees, so a commit of many durable messages dirties a few
// pages instead of one per message. One allocation (uuid.NewString makes
// two, and three IDs are made per relay).
func newID() string { return newIDAt(time.Now()) }

// newIDAt is newID with the time given: a message's ID and timestamp
// share one clock reading.
func newIDAt(now time.Time) string {
	var u uuid.UUID
	ms := uint64(now.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	rand.Read(u[6:])
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u.String()
}

// NewMessage returns a message with a fresh UUID, the current time in Unix
// milliseconds, and a generated correlationId when correlationID is empty.
func NewMessage(typ MessageType, fromServer, fromAgent, toAgent, content string) *Message {
	now := time.Now()
	return &Message{
		MessageID:     newIDAt(now),
		FromAgent:     fromAgent,
		FromServer:    fromServer,
		ToAgent:       toAgent,
		Type:          typ,
		Content:       content,
		CorrelationID: newIDAt(now),
		Priority:      PriorityNormal,
		Timestamp:     now.UnixMilli(),
	}
}

// Reply builds the response to m: type response, same correlationId and
// priority, addressed back to the sender.
func (m *Message) Reply(fromServer, content string, ctx map[string]any) *Message {
	now := time.Now()
	return &Message{
		MessageID:     newIDAt(now),
		FromAgent:     m.ToAgent,
		FromServer:    fromServer,
		ToAgent:       m.FromAgent,
		Type:          TypeResponse,
		Content:       content,
		Context:       ctx,
		CorrelationID: m.CorrelationID,
		Priority:      m.Priority,
		Timestamp:     now.UnixMilli(),
	}
}

// Validate checks the fields a receiving gateway relies on.
func (m *Message) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: message is missing", ErrInvalidParams)
	}
	if err := m.validateIDs(); err != nil {
		return err
	}
	if !m.Type.Valid() {
		return fmt.Errorf("%w: message.type %s is not one of request, response, delegation, broadcast, sync", ErrInvalidParams, quoteBounded(string(m.Type)))
	}
	if _, err := ParsePriority(string(m.Priority)); err != nil {
		return fmt.Errorf("%w: message.priority %s is not one of low, normal, high, urgent", ErrInvalidParams, quoteBounded(string(m.Priority)))
	}
	return m.validateEnvelope()
}

// validateIDs checks the message's identifiers: well formed (ident.go),
// messageId and fromServer required.
func (m *Message) validateIDs() error {
	for _, f := range []struct {
		name     string
		v        string
		required bool
	}{
		{"message.messageId", m.MessageID, true},
		{"message.fromServer", m.FromServer, true},
		{"message.fromAgent", m.FromAgent, false},
		{"message.toAgent", m.ToAgent, false},
		{"message.correlationId", m.CorrelationID, false},
	} {
		if err := checkIdent(f.name, f.v, f.required); err != nil {
			return err
		}
	}
	return nil
}

// validateEnvelope bounds the signature and the sealed envelope, whose
// legitimate values are short; the ciphertext is bounded by the frame.
func (m *Message) validateEnvelope() error {
	fields := []struct{ name, v string }{{"message.signature", m.Signature}}
	if s := m.Sealed; s != nil {
		fields = append(fields, struct{ name, v string }{"message.sealed.suite", s.Suite},
			struct{ name, v string }{"message.sealed.to", s.To},
			struct{ name, v string }{"message.sealed.enc", s.Enc},
			struct{ name, v string }{"message.sealed.replyKey", s.ReplyKey})
	}
	for _, f := range fields {
		if len(f.v) > maxEnvelopeBytes {
			return fmt.Errorf("%w: %s is %d bytes long; at most %d", ErrInvalidParams, f.name, len(f.v), maxEnvelopeBytes)
		}
	}
	return nil
}

// Handler is a local agent: it answers one message at a time, possibly
// concurrently. The context is cancelled when the caller stops waiting.
// Implementations live in package agent.
type Handler interface {
	Handle(ctx context.Context, msg *Message) (*Answer, error)
}

// Answer is what a Handler returns: the reply content and optional context.
type Answer struct {
	Content string         `json:"content"`
	Context map[string]any `json:"context,omitempty"`
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msg *Message) (*Answer, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, msg *Message) (*Answer, error) { return f(ctx, msg) }
