package gateway

import (
	"context"
	"errors"
)

// Stable error codes of the gateway protocol itself. They cross the wire in
// a response's error.code and are listed in docs/PROTOCOL.md; never rename
// one. The federation's own codes (UNKNOWN_PEER, NO_CAPABLE_PEER, ...) are
// defined where they are raised, in package federation.
const (
	CodeInvalidRequest  = "INVALID_REQUEST" // malformed frame or handshake
	CodeInvalidParams   = "INVALID_PARAMS"  // a method's params are wrong
	CodeUnknownMethod   = "UNKNOWN_METHOD"
	CodeUnauthorized    = "UNAUTHORIZED"     // missing or wrong credentials
	CodeForbidden       = "FORBIDDEN"        // authenticated, but not allowed
	CodePeerUnavailable = "PEER_UNAVAILABLE" // cannot connect, or the connection dropped
	CodeTimeout         = "TIMEOUT"
	CodeCancelled       = "CANCELLED"
	CodeShuttingDown    = "SHUTTING_DOWN"
	CodeInternal        = "INTERNAL"
	CodeTooLarge        = "TOO_LARGE" // a message over a size limit
)

// Error is an error with a stable code, as it travels in a response frame.
// Two *Error values match under errors.Is when their codes are equal, so a
// sentinel matches the same error received from a remote gateway.
type Error struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	Details      any    `json:"details,omitempty"`
	Retryable    bool   `json:"retryable,omitempty"`
	RetryAfterMs int    `json:"retryAfterMs,omitempty"`
}

// NewError returns an *Error with the given code and message.
func NewError(code, message string) *Error { return &Error{Code: code, Message: message} }

func (e *Error) Error() string { return e.Message }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the stable code of err: the code of the first *Error in its
// chain, TIMEOUT or CANCELLED for context errors, and INTERNAL otherwise.
func CodeOf(err error) string {
	if err == nil {
		return "" // before e, which escapes: no allocation for success
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCancelled
	}
	return CodeInternal
}

// ToError converts err to the shape sent on the wire. The message is the
// whole error text, so wrapped detail (which peer, which field) survives.
func ToError(err error) *Error {
	if err == nil {
		return nil
	}
	out := &Error{Code: CodeOf(err), Message: err.Error()}
	var e *Error
	if errors.As(err, &e) {
		out.Details, out.Retryable, out.RetryAfterMs = e.Details, e.Retryable, e.RetryAfterMs
	}
	return out
}
