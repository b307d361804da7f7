package federation

import "github.com/agentfed/agentfed/gateway"

// Sentinel errors. Each carries the stable code that crosses the wire; wrap
// them with %w and the identifying value. gateway.CodeOf recovers the code.
var (
	ErrInvalidParams        = gateway.NewError(gateway.CodeInvalidParams, "federation: invalid parameters")
	ErrUnknownAction        = gateway.NewError(gateway.CodeUnknownAction, "federation: unknown action")
	ErrUnknownPeer          = gateway.NewError(gateway.CodeUnknownPeer, "federation: unknown peer")
	ErrPeerDisabled         = gateway.NewError(gateway.CodePeerDisabled, "federation: peer disabled")
	ErrPeerUnavailable      = gateway.NewError(gateway.CodePeerUnavailable, "federation: peer unavailable")
	ErrUnknownAgent         = gateway.NewError(gateway.CodeUnknownAgent, "federation: unknown agent")
	ErrNoCapablePeer        = gateway.NewError(gateway.CodeNoCapablePeer, "federation: no capable peer")
	ErrTimeout              = gateway.NewError(gateway.CodeTimeout, "federation: timeout")
	ErrDynamicPeersDisabled = gateway.NewError(gateway.CodeDynamicPeersDisabled, "federation: dynamic peers disabled")
	ErrPeerExists           = gateway.NewError(gateway.CodePeerExists, "federation: peer exists")
	ErrStaticPeer           = gateway.NewError(gateway.CodeStaticPeer, "federation: static peer")
	ErrAgentFailed          = gateway.NewError(gateway.CodeAgentError, "federation: agent failed")
	ErrFederationDisabled   = gateway.NewError(gateway.CodeFederationDisabled, "federation: disabled")
	ErrShuttingDown         = gateway.NewError(gateway.CodeShuttingDown, "federation: shutting down")
	ErrCircuitOpen          = gateway.NewError(gateway.CodeCircuitOpen, "federation: circuit open")
	ErrRateLimited          = gateway.NewError(gateway.CodeRateLimited, "federation: rate limited")
	ErrOverloaded           = gateway.NewError(gateway.CodeOverloaded, "federation: overloaded")
	ErrUnknownMessage       = gateway.NewError(gateway.CodeUnknownMessage, "federation: unknown message")
	ErrForbidden            = gateway.NewError(gateway.CodeForbidden, "federation: forbidden")
	ErrTooLarge             = gateway.NewError(gateway.CodeTooLarge, "federation: too large")
	ErrStale                = gateway.NewError(gateway.CodeStale, "federation: stale message")
	ErrReplayed             = gateway.NewError(gateway.CodeReplayed, "federation: replayed message")
	ErrBadSignature         = gateway.NewError(gateway.CodeBadSignature, "federation: bad signature")
	ErrHopLimit             = gateway.NewError(gateway.CodeHopLimit, "federation: hop limit")
	// ErrStorage is a failure of this gateway's store (a full or failing
	// disk): INTERNAL, but retryable, since nothing about the message is
	// final and it succeeds once the disk recovers.
	ErrStorage = &gateway.Error{Code: gateway.CodeInternal, Message: "federation: storage error", Retryable: true}
)
