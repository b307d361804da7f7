package federation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// AgentError is a local agent's failure as a [Handler] reports it, split
// in two: Public is all the remote caller is told; Err holds the details (a
// command line, a program's output, an internal URL, an error page), which
// stay on this gateway.
//
// Whatever a Handler returns, the caller gets only the error's code
// (AGENT_ERROR unless the error wraps another code), a short message (Public
// when the error is an AgentError, else a generic one) and an error id. The
// details are written to this gateway's log and audit log under that id.
type AgentError struct {
	// Public is a short description without secrets, such as "exited with
	// status 3" or "answered 502 Bad Gateway".
	Public string
	// Err is the whole error. Wrap a sentinel (ErrAgentFailed,
	// ErrInvalidParams, ...) in it to choose the code.
	Err error
}

func (e *AgentError) Error() string { return e.Err.Error() }
func (e *AgentError) Unwrap() error { return e.Err }

// agentFailed turns what agent's handler returned for msg into the error
// the caller gets, after logging and auditing the details under a new
// error id. ctx is the caller's.
func (n *Node) agentFailed(ctx context.Context, agent *localAgent, msg *Message, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: agent %q did not answer before the caller's deadline", ErrTimeout, agent.cfg.ID)
	}
	public := "failed"
	if ae := (*AgentError)(nil); errors.As(err, &ae) && ae.Public != "" {
		public = ae.Public
	}
	code := gateway.CodeOf(err)
	if code == gateway.CodeInternal {
		code = CodeAgentError // an error without a code
	}
	id := errorID()
	if ok, suppressed := n.remoteLog.Allow(); ok {
		n.log.Warn("agent failed", "agent", agent.cfg.ID, "errorId", id, "peer", msg.FromServer, "messageId", msg.MessageID,
			"err", err, "suppressed", suppressed)
	}
	n.audit.write(auditEvent{Dir: "in", Kind: "agent", Peer: msg.FromServer, Agent: agent.cfg.ID, MessageID: msg.MessageID,
		CorrelationID: msg.CorrelationID, Outcome: code, ErrorID: id, Detail: err.Error()})
	out := gateway.NewError(code, fmt.Sprintf("agent %q %s (error id %s; the details are in the log of gateway %q)",
		agent.cfg.ID, public, id, n.serverID))
	out.Details = map[string]string{"errorId": id}
	if e := (*gateway.Error)(nil); errors.As(err, &e) {
		out.Retryable, out.RetryAfterMs = e.Retryable, e.RetryAfterMs
	}
	return out
}

// errorID returns a new id for an agent failure: the time, for sorting,
// and random bits.
func errorID() string {
	var b [4]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}
