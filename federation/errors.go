package federation

import "github.com/agentfed/agentfed/gateway"

// Stable error codes of the federation, raised by this package; they cross
// the wire in error.code beside the gateway protocol's own (gateway.Code*),
// and docs/PROTOCOL.md lists them. Never rename one.
const (
	CodeUnknownAction        = "UNKNOWN_ACTION"
	CodeUnknownPeer          = "UNKNOWN_PEER"
	CodePeerDisabled         = "PEER_DISABLED"
	CodeUnknownAgent         = "UNKNOWN_AGENT"
	CodeNoCapablePeer        = "NO_CAPABLE_PEER"
	CodeDynamicPeersDisabled = "DYNAMIC_PEERS_DISABLED"
	CodePeerExists           = "PEER_EXISTS"
	CodeStaticPeer           = "STATIC_PEER"
	CodeAgentError           = "AGENT_ERROR"
	CodeFederationDisabled   = "FEDERATION_DISABLED"
	CodeCircuitOpen          = "CIRCUIT_OPEN"    // the peer failed repeatedly; calls fail fast for a while
	CodeRateLimited          = "RATE_LIMITED"    // over a rate limit; retry after retryAfterMs
	CodeOverloaded           = "OVERLOADED"      // too much work queued; retry later
	CodeUnknownMessage       = "UNKNOWN_MESSAGE" // no durable message with that id
	CodeStale                = "STALE_MESSAGE"   // a timestamp outside the replay window
	CodeReplayed             = "REPLAYED"        // a messageId this gateway has already seen from that peer
	CodeBadSignature         = "BAD_SIGNATURE"   // a message or reply not signed by the pinned key, or a sealed one altered
	CodeHopLimit             = "HOP_LIMIT"       // a chain of agents passing work on went past federation.maxHops
)

// Sentinel errors. Each carries the stable code that crosses the wire; wrap
// them with %w and the identifying value. gateway.CodeOf recovers the code.
var (
	ErrInvalidParams        = gateway.NewError(gateway.CodeInvalidParams, "federation: invalid parameters")
	ErrUnknownAction        = gateway.NewError(CodeUnknownAction, "federation: unknown action")
	ErrUnknownPeer          = gateway.NewError(CodeUnknownPeer, "federation: unknown peer")
	ErrPeerDisabled         = gateway.NewError(CodePeerDisabled, "federation: peer disabled")
	ErrPeerUnavailable      = gateway.NewError(gateway.CodePeerUnavailable, "federation: peer unavailable")
	ErrUnknownAgent         = gateway.NewError(CodeUnknownAgent, "federation: unknown agent")
	ErrNoCapablePeer        = gateway.NewError(CodeNoCapablePeer, "federation: no capable peer")
	ErrTimeout              = gateway.NewError(gateway.CodeTimeout, "federation: timeout")
	ErrDynamicPeersDisabled = gateway.NewError(CodeDynamicPeersDisabled, "federation: dynamic peers disabled")
	ErrPeerExists           = gateway.NewError(CodePeerExists, "federation: peer exists")
	ErrStaticPeer           = gateway.NewError(CodeStaticPeer, "federation: static peer")
	ErrAgentFailed          = gateway.NewError(CodeAgentError, "federation: agent failed")
	ErrFederationDisabled   = gateway.NewError(CodeFederationDisabled, "federation: disabled")
	ErrShuttingDown         = gateway.NewError(gateway.CodeShuttingDown, "federation: shutting down")
	ErrCircuitOpen          = gateway.NewError(CodeCircuitOpen, "federation: circuit open")
	ErrRateLimited          = gateway.NewError(CodeRateLimited, "federation: rate limited")
	ErrOverloaded           = gateway.NewError(CodeOverloaded, "federation: overloaded")
	ErrUnknownMessage       = gateway.NewError(CodeUnknownMessage, "federation: unknown message")
	ErrForbidden            = gateway.NewError(gateway.CodeForbidden, "federation: forbidden")
	ErrTooLarge             = gateway.NewError(gateway.CodeTooLarge, "federation: too large")
	ErrStale                = gateway.NewError(CodeStale, "federation: stale message")
	ErrReplayed             = gateway.NewError(CodeReplayed, "federation: replayed message")
	ErrBadSignature         = gateway.NewError(CodeBadSignature, "federation: bad signature")
	ErrHopLimit             = gateway.NewError(CodeHopLimit, "federation: hop limit")
	// ErrStorage is a failure of this gateway's store (a full or failing
	// disk): INTERNAL, but retryable, since nothing about the message is
	// final and it succeeds once the disk recovers.
	ErrStorage = &gateway.Error{Code: gateway.CodeInternal, Message: "federation: storage error", Retryable: true}
)
