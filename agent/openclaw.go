package agent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// OpenClaw is an agent of an OpenClaw gateway. For every message it connects
// to URL as an OpenClaw operator client (scope operator.write, the shared
// gateway token), starts a turn of the OpenClaw agent AgentID with
// OpenClaw's own "agent" method, waits for it with "agent.wait", and answers
// with the turn's final reply text.
//
// The turn runs in an OpenClaw session of its own per sending gateway and
// correlationId (per messageId when there is none), so the messages of one
// conversation share the agent's history. The message's context, which the
// gateway has merged with the session's synced context, reaches the agent
// as a JSON block in the turn's extra system prompt, together with the
// message's envelope. fromServer/messageId is the turn's idempotencyKey: a
// message delivered twice runs once.
//
// When the caller stops waiting (its deadline, a cancel), the run is aborted
// in OpenClaw (sessions.abort) and the error wraps the context's error. A
// run OpenClaw reports as failed is an error wrapping
// [federation.ErrAgentFailed] with OpenClaw's message; one it reports as
// timed out wraps [federation.ErrTimeout].
type OpenClaw struct {
	// URL is the OpenClaw gateway, ws:// or wss://.
	URL string
	// Token is the OpenClaw gateway's shared token (gateway.auth.token).
	Token string
	// AgentID is the OpenClaw agent to run; empty means OpenClaw's "main".
	AgentID string
	// Timeout caps each turn even when the caller would wait longer. Zero
	// means no cap beyond the caller's deadline.
	Timeout time.Duration
	// Device is the device identity connect proves (see [gateway.Device]).
	// An OpenClaw gateway grants a remote client operator.write only with
	// one it has approved: the first message then fails with OpenClaw's
	// NOT_PAIRED and the command that approves it. On loopback OpenClaw
	// lets its backend clients in without pairing. agentfed serve sets the
	// key kept in storage.dir ([LoadOpenClawDevice]); nil connects without.
	Device *gateway.Device
	// DialOptions, when set, is the base of the connection's options (its
	// HTTPClient for wss:// with a private CA, for instance); Token, Role,
	// Scopes, Client and Device are set by OpenClaw.
	DialOptions *gateway.DialOptions
}

var _ federation.Handler = (*OpenClaw)(nil)

// openClawScopes are the scopes an agent turn needs, and all that is asked.
var openClawScopes = []string{"operator.write"}

// abortTimeout bounds the abort sent after the caller gave up.
const abortTimeout = 5 * time.Second

// maxExtraPrompt bounds the context block handed to the OpenClaw agent.
const maxExtraPrompt = 256 << 10

// Handle implements [federation.Handler].
func (o *OpenClaw) Handle(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
	if msg == nil {
		return nil, fmt.Errorf("%w: openclaw %q: message is missing", federation.ErrInvalidParams, o.URL)
	}
	if msg.Content == "" {
		return nil, fmt.Errorf("%w: openclaw %q: the message has no content for the agent to answer", federation.ErrAgentFailed, o.URL)
	}
	turnCtx, cancel := withTimeout(ctx, o.Timeout)
	defer cancel()
	c, err := gateway.Dial(turnCtx, o.URL, o.dialOptions())
	if err != nil {
		return nil, o.fail(ctx, turnCtx, "connect", err)
	}
	defer c.Close()

	agentID := cmp.Or(o.AgentID, "main")
	params, err := turnParams(turnCtx, msg, agentID)
	if err != nil {
		return nil, fmt.Errorf("%w: openclaw %q: %w", federation.ErrAgentFailed, o.URL, err)
	}
	var started struct {
		RunID  string `json:"runId"`
		Status string `json:"status"`
	}
	if err := c.Call(turnCtx, "agent", params, &started); err != nil {
		if turnCtx.Err() != nil {
			o.abort(turnCtx, c, params.SessionKey, "")
		}
		return nil, o.fail(ctx, turnCtx, "agent", err)
	}
	if started.RunID == "" {
		return nil, fmt.Errorf("%w: openclaw %q: agent answered %q without a runId", federation.ErrAgentFailed, o.URL, started.Status)
	}
	done, err := wait(turnCtx, c, started.RunID)
	if err != nil {
		if turnCtx.Err() != nil {
			o.abort(turnCtx, c, params.SessionKey, started.RunID)
		}
		return nil, o.fail(ctx, turnCtx, "agent.wait", err)
	}
	if done.Status == "timeout" {
		o.abort(turnCtx, c, params.SessionKey, started.RunID)
	}
	return o.answer(done, agentID, started.RunID)
}

// maxWait is the longest one agent.wait call asks OpenClaw to wait.
const maxWait = time.Minute

// wait waits for run to end, with agent.wait calls of at most maxWait
// each, until ctx ends. A call that reports a timeout well before its own
// wait was over reports the run's.
func wait(ctx context.Context, c *gateway.Client, runID string) (*waitResult, error) {
	for {
		chunk := maxWait
		if ms := remainingMs(ctx); ms > 0 {
			chunk = min(chunk, time.Duration(ms)*time.Millisecond)
		}
		start := time.Now()
		var done waitResult
		if err := c.Call(ctx, "agent.wait", waitParams{RunID: runID, TimeoutMs: chunk.Milliseconds()}, &done); err != nil {
			return nil, err
		}
		if done.Status != "timeout" || time.Since(start) < chunk/2 {
			return &done, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

func (o *OpenClaw) dialOptions() *gateway.DialOptions {
	var opts gateway.DialOptions
	if o.DialOptions != nil {
		opts = *o.DialOptions
	}
	opts.Role = gateway.RoleOperator
	opts.Token = o.Token
	opts.Scopes = openClawScopes
	opts.OnEvent = nil // the turn's streamed events are not needed
	opts.Device = o.Device
	opts.Client = gateway.ClientInfo{
		ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack,
		DisplayName: "agentfed", Version: federation.Version, Platform: "agentfed",
	}
	return &opts
}

// agentParams are the fields of OpenClaw's AgentParams that a turn sets.
type agentParams struct {
	Message           string `json:"message"`
	AgentID           string `json:"agentId"`
	SessionKey        string `json:"sessionKey"`
	IdempotencyKey    string `json:"idempotencyKey"`
	Timeout           int64  `json:"timeout,omitempty"` // seconds
	ExtraSystemPrompt string `json:"extraSystemPrompt,omitempty"`
}

type waitParams struct {
	RunID     string `json:"runId"`
	TimeoutMs int64  `json:"timeoutMs,omitempty"`
}

// waitResult is agent.wait's answer: the run's terminal snapshot.
type waitResult struct {
	Status        string `json:"status"`
	StopReason    string `json:"stopReason"`
	Error         any    `json:"error"`
	TerminalReply *struct {
		Text string `json:"text"`
	} `json:"terminalReply"`
}

// turnParams builds the agent request for msg.
func turnParams(ctx context.Context, msg *federation.Message, agentID string) (*agentParams, error) {
	envelope := map[string]any{
		"messageId":  msg.MessageID,
		"fromAgent":  msg.FromAgent,
		"fromServer": msg.FromServer,
		"type":       string(msg.Type),
		"priority":   string(msg.Priority),
	}
	if msg.CorrelationID != "" {
		envelope["correlationId"] = msg.CorrelationID
	}
	block := map[string]any{"message": envelope}
	if len(msg.Context) > 0 {
		block["context"] = msg.Context
	}
	ctxJSON, err := json.MarshalIndent(block, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the message's context: %w", err)
	}
	if len(ctxJSON) > maxExtraPrompt {
		return nil, fmt.Errorf("the message's context is %d bytes as JSON; at most %d reach an OpenClaw agent", len(ctxJSON), maxExtraPrompt)
	}
	session := msg.CorrelationID
	if session == "" {
		session = msg.MessageID
	}
	p := &agentParams{
		Message:        msg.Content,
		AgentID:        agentID,
		SessionKey:     sessionKey(agentID, msg.FromServer, session),
		IdempotencyKey: msg.FromServer + "/" + msg.MessageID,
		ExtraSystemPrompt: "This message came through agentfed, the agent federation, from agent " +
			fmt.Sprintf("%q on server %q. Its envelope and context (JSON):\n", msg.FromAgent, msg.FromServer) +
			"```json\n" + string(ctxJSON) + "\n```",
	}
	if ms := remainingMs(ctx); ms > 0 {
		p.Timeout = (ms + 999) / 1000
	}
	return p, nil
}

// sessionKey names the OpenClaw session of one conversation: the sending
// server and session, hashed so that any ids fit OpenClaw's key syntax.
func sessionKey(agentID, fromServer, session string) string {
	sum := sha256.Sum256([]byte(fromServer + "\x00" + session))
	return "agent:" + agentID + ":agentfed-" + hex.EncodeToString(sum[:12])
}

// remainingMs is the time left before ctx's deadline, 0 when there is none.
func remainingMs(ctx context.Context) int64 {
	d, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(1, time.Until(d).Milliseconds())
}

// answer turns agent.wait's snapshot into the reply or an error.
func (o *OpenClaw) answer(done *waitResult, agentID, runID string) (*federation.Answer, error) {
	switch done.Status {
	case "ok":
		if done.TerminalReply == nil || done.TerminalReply.Text == "" {
			return nil, fmt.Errorf("%w: openclaw %q: agent %q (run %s) finished without a reply", federation.ErrAgentFailed, o.URL, agentID, runID)
		}
		return &federation.Answer{Content: done.TerminalReply.Text}, nil
	case "timeout":
		return nil, fmt.Errorf("%w: openclaw %q: agent %q (run %s) timed out%s", federation.ErrTimeout, o.URL, agentID, runID, o.reason(done))
	}
	return nil, fmt.Errorf("%w: openclaw %q: agent %q (run %s) ended %q%s", federation.ErrAgentFailed, o.URL, agentID, runID, done.Status, o.reason(done))
}

// reason quotes OpenClaw's stated reason for a run's end, bounded.
func (o *OpenClaw) reason(done *waitResult) string {
	var why string
	switch e := done.Error.(type) {
	case string:
		why = e
	case map[string]any:
		if m, ok := e["message"].(string); ok {
			why = m
		}
	}
	if why == "" {
		why = done.StopReason
	}
	if why == "" {
		return ""
	}
	return ": " + head([]byte(why), bodyExcerptLen)
}

// fail maps a failed call to the error Handle returns: the caller's own
// context error when it gave up, a timeout when the handler's Timeout
// passed, else an AGENT_ERROR carrying OpenClaw's message.
func (o *OpenClaw) fail(ctx, turnCtx context.Context, step string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("openclaw %q: %s: %w", o.URL, step, ctx.Err())
	case errors.Is(context.Cause(turnCtx), errInvocationTimeout):
		return fmt.Errorf("%w: openclaw %q: %s: timed out after %v (handler.timeoutMs)", federation.ErrTimeout, o.URL, step, o.Timeout)
	}
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return fmt.Errorf("%w: openclaw %q: %s: %s: %s%s", federation.ErrAgentFailed, o.URL, step, ge.Code, head([]byte(ge.Message), bodyExcerptLen), o.hint(ge))
	}
	return fmt.Errorf("%w: openclaw %q: %s: %v", federation.ErrAgentFailed, o.URL, step, err)
}

// abort stops the session's run (runID, or any) in OpenClaw; it waits at
// most abortTimeout for OpenClaw's answer, even when turnCtx has ended.
func (o *OpenClaw) abort(turnCtx context.Context, c *gateway.Client, key, runID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(turnCtx), abortTimeout)
	defer cancel()
	params := map[string]string{"key": key}
	if runID != "" {
		params["runId"] = runID
	}
	_ = c.Call(ctx, "sessions.abort", params, nil) // best effort: the run's own timeout ends it too
}

// pairingRequestID matches the pairing request ids OpenClaw issues; others
// are not repeated in a hint.
var pairingRequestID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// hint says how to lift an OpenClaw refusal that its owner must act on:
// pairing agentfed's device, or giving it one.
func (o *OpenClaw) hint(e *gateway.Error) string {
	switch {
	case e.Code == "NOT_PAIRED":
		details, _ := e.Details.(map[string]any)
		id, _ := details["requestId"].(string)
		if !pairingRequestID.MatchString(id) {
			id = "<requestId from: openclaw devices list>"
		}
		device := "a device identity"
		if o.Device != nil {
			device = "agentfed's device " + o.Device.ID()
		}
		return fmt.Sprintf("; the OpenClaw gateway has not approved %s: on its host run `openclaw devices approve %s`, then send again", device, id)
	case o.Device == nil && strings.Contains(e.Message, "missing scope"):
		return "; a remote OpenClaw gateway grants scopes only to a paired device identity: give the handler a Device"
	}
	return ""
}
