package outbox

import (
	"errors"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/schedule"
)

// Durable message states.
const (
	StateQueued    = "queued"    // on disk, waiting for (another) delivery attempt
	StateDelivered = "delivered" // the peer answered; Result holds the answer
	StateFailed    = "failed"    // the peer answered with an error retrying cannot fix
	StateDead      = "dead"      // ttlMs passed before any peer accepted it
)

// ValidState reports whether s is one of the states.
func ValidState(s string) bool {
	switch s {
	case StateQueued, StateDelivered, StateFailed, StateDead:
		return true
	}
	return false
}

// Entry is a durable message as the outbox keeps it on disk and as status
// and the outbox list report it. M is the message's type, R the type of a
// delivery's result; both are JSON-encoded within the entry.
type Entry[M, R any] struct {
	MessageID            string         `json:"messageId"`
	Kind                 string         `json:"kind"` // send, delegate or broadcast
	PeerID               string         `json:"peerId,omitempty"`
	RequiredCapabilities []string       `json:"requiredCapabilities,omitempty"`
	Strategy             string         `json:"strategy,omitempty"`
	State                string         `json:"state"`
	Attempts             int            `json:"attempts"`
	CreatedAt            int64          `json:"createdAt"`           // Unix ms
	ExpiresAt            int64          `json:"expiresAt,omitempty"` // Unix ms; 0: never
	NextAttemptAt        int64          `json:"nextAttemptAt,omitempty"`
	FinishedAt           int64          `json:"finishedAt,omitempty"` // Unix ms of the final state
	LastError            *gateway.Error `json:"lastError,omitempty"`
	Result               *R             `json:"result,omitempty"`
	Message              *M             `json:"message"`
	TimeoutMs            int            `json:"timeoutMs,omitempty"`
	TTLMs                int            `json:"ttlMs,omitempty"`

	// PeerAttempts counts the attempts that reached the peer's gateway;
	// federation.durable.maxAttempts bounds them.
	PeerAttempts int `json:"peerAttempts,omitempty"`

	// Stream is the JetStream stream that holds a durable message sent to
	// a NATS peer until its receiver finishes it and says so (the
	// federation package's nats_outcome.go); the outbox does not deliver
	// such a message, only marks it dead once its ttl or MaxAge has passed
	// by HeldGrace. Empty for the messages the outbox delivers.
	Stream string `json:"stream,omitempty"`
}

// Report is how one delivery attempt went, as the owner judges it.
type Report[R any] struct {
	// State is StateDelivered or StateFailed when the attempt settled the
	// message, StateQueued when it is to be tried again.
	State  string
	Result *R             // the answer, kept with a final state
	Error  *gateway.Error // why the attempt failed, if it did; kept as lastError
	// Peer is how the attempt bears on holding back the peer: Up when its
	// gateway answered, Down when it could not be reached, Unsure after a
	// timeout. Only attempts that are not Down count towards MaxAttempts.
	Peer schedule.Outcome
}

// Errors. They match with errors.Is; their text says which message and
// what to do.
var (
	ErrUnknown = errors.New("outbox: unknown message") // no entry with that message id
	ErrState   = errors.New("outbox: wrong state")     // the entry's state does not allow the operation
	ErrStorage = errors.New("outbox: storage error")   // the store could not write; nothing changed
)

// refusal is an error of one of the kinds above, whose text is only its
// message: the owner puts its own words in front.
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }
