package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/cenkalti/backoff/v5"
)

// LLM is an agent whose answers come from a model behind an
// OpenAI-compatible Chat Completions endpoint (hosted APIs, vLLM,
// llama.cpp, Ollama, ...).
//
// The message becomes the conversation: System as the system prompt, a
// second system message saying who sent the message (agent, gateway,
// correlationId) with its context (already merged with the session's
// synced context), and the content as the user's turn. The model's final
// text is the answer; the answer's context holds the model and the tokens
// spent ("usage"), which also go to the gateway's audit log.
//
// When AllowActions lists any, the model is offered the agent_federation
// tool (input schema: agentfed schema) and its calls run on the agent's own
// gateway on behalf of the message's sender: only actions both
// AllowActions and the sender's grant (gateway.auth.peers[].allowActions)
// allow run, the others come back to the model as a FORBIDDEN result. The
// loop ends when the model answers with text, or fails after MaxSteps
// model calls.
//
// Requests answered 429 or 5xx are retried with exponential backoff,
// waiting at least what a Retry-After header asks for. Other statuses, a
// body over 4 MiB, exceeding Timeout or MaxSteps are errors wrapping
// [federation.ErrAgentFailed]; the API key is never part of an error.
type LLM struct {
	// BaseURL is the API base; requests go to BaseURL + "/chat/completions".
	BaseURL string
	// Model is the model name sent with every request.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// System is the system prompt.
	System string
	// Temperature and MaxTokens are passed on when set (non-nil, > 0).
	Temperature *float64
	MaxTokens   int
	// MaxSteps caps the model calls for one message. Default 8.
	MaxSteps int
	// AllowActions are the agent_federation actions the model may call.
	AllowActions []string
	// MCPServers are MCP servers whose tools the model may call too. The
	// agent connects to each for every message it handles.
	MCPServers []MCPServer
	// Timeout caps one message's whole handling. Zero: the caller's
	// deadline only.
	Timeout time.Duration
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// MaxTries caps the attempts of one model call (429, 5xx). Default 4.
	MaxTries int
}

var _ federation.Handler = (*LLM)(nil)

// Limits on the model conversation.
const (
	defaultMaxSteps  = 8
	defaultMaxTries  = 4
	maxToolResult    = 32 << 10 // one tool result, as the model sees it
	maxRetryAfter    = time.Minute
	firstRetryWait   = 500 * time.Millisecond
	toolArgumentsMax = 1 << 20
)

// chatMessage is one message of the Chat Completions conversation.
type chatMessage struct {
	Role       string     `json:"role"`
	Content    *string    `json:"content"`
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

type toolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	Tools       []chatTool    `json:"tools,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content   *string    `json:"content"`
			ToolCalls []toolCall `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// Handle implements [federation.Handler].
func (l *LLM) Handle(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
	if msg == nil {
		return nil, fmt.Errorf("%w: llm %q: message is missing", federation.ErrInvalidParams, l.Model)
	}
	ctx, cancel := withTimeout(ctx, l.Timeout)
	defer cancel()
	req := chatRequest{Model: l.Model, Messages: l.conversation(msg), Temperature: l.Temperature, MaxTokens: l.MaxTokens}
	tool, _ := federation.ToolFor(ctx, l.AllowActions)
	if tool != nil && len(tool.Actions()) > 0 { // offered only when this caller allows the agent something
		req.Tools = []chatTool{agentFederationTool(tool)}
	}
	var mt *mcpTools
	if len(l.MCPServers) > 0 {
		var err error
		if mt, err = connectMCP(ctx, l.MCPServers); err != nil {
			return nil, err
		}
		defer mt.close()
		req.Tools = append(req.Tools, mt.offered...)
	}
	usage := federation.Usage{Model: l.Model}
	defer func() { federation.RecordUsage(ctx, usage) }()
	steps := orDefault(l.MaxSteps, defaultMaxSteps)
	for step := 1; step <= steps; step++ {
		resp, err := l.complete(ctx, &req)
		if err != nil {
			return nil, l.failure(ctx, err)
		}
		usage.PromptTokens += resp.Usage.PromptTokens
		usage.CompletionTokens += resp.Usage.CompletionTokens
		usage.TotalTokens += resp.Usage.TotalTokens
		if len(resp.Choices) == 0 {
			return nil, failed("got a model response without choices", "%w: llm %q: the response has no choices", federation.ErrAgentFailed, l.Model)
		}
		m := resp.Choices[0].Message
		if len(m.ToolCalls) == 0 {
			if m.Content == nil || strings.TrimSpace(*m.Content) == "" {
				return nil, failed("got neither text nor a tool call from the model", "%w: llm %q answered with neither text nor a tool call", federation.ErrAgentFailed, l.Model)
			}
			return &federation.Answer{Content: *m.Content, Context: map[string]any{"model": l.Model, "usage": usage, "steps": step}}, nil
		}
		req.Messages = append(req.Messages, chatMessage{Role: "assistant", Content: m.Content, ToolCalls: m.ToolCalls})
		for _, call := range m.ToolCalls {
			out := runTool(ctx, tool, mt, call)
			req.Messages = append(req.Messages, chatMessage{Role: "tool", ToolCallID: call.ID, Content: &out})
		}
	}
	return nil, failed(fmt.Sprintf("had no answer within %d model calls (maxSteps)", steps),
		"%w: llm %q: no answer within %d model calls (handler.maxSteps); the model kept calling tools", federation.ErrAgentFailed, l.Model, steps)
}

// conversation is the messages the model starts from.
func (l *LLM) conversation(msg *federation.Message) []chatMessage {
	var msgs []chatMessage
	if l.System != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: &l.System})
	}
	about := fmt.Sprintf("This message comes from agent %q on gateway %q (type %s, priority %s, correlationId %q).",
		msg.FromAgent, msg.FromServer, msg.Type, msg.Priority, msg.CorrelationID)
	if len(msg.Context) > 0 {
		b, _ := json.Marshal(msg.Context)
		about += " Its context (JSON): " + string(b)
	}
	content := msg.Content
	return append(msgs, chatMessage{Role: "system", Content: &about}, chatMessage{Role: "user", Content: &content})
}

// agentFederationTool offers the tool, its schema exactly agentfed schema.
func agentFederationTool(t *federation.AgentTool) chatTool {
	var ct chatTool
	ct.Type = "function"
	ct.Function.Name = federation.ToolName
	ct.Function.Description = federation.ToolDescription + " Actions allowed here: " + strings.Join(t.Actions(), ", ") + "."
	ct.Function.Parameters = federation.ToolSchema()
	return ct
}

// runTool runs one tool call and returns what the model sees: the result
// as JSON, or {"error": {"code", "message"}}.
func runTool(ctx context.Context, t *federation.AgentTool, mt *mcpTools, call toolCall) string {
	if m, ok := mt.lookup(call.Function.Name); ok {
		return clipResult(mt.call(ctx, m, call.Function.Arguments))
	}
	var out any
	var err error
	switch {
	case t == nil:
		err = fmt.Errorf("%w: no tools are available here", federation.ErrForbidden)
	case call.Function.Name != federation.ToolName:
		err = fmt.Errorf("%w: there is no tool %q", federation.ErrInvalidParams, head([]byte(call.Function.Name), 64))
	case len(call.Function.Arguments) > toolArgumentsMax:
		err = fmt.Errorf("%w: the arguments are over %d KiB", federation.ErrInvalidParams, toolArgumentsMax>>10)
	default:
		out, err = t.Call(ctx, json.RawMessage(call.Function.Arguments))
	}
	if err != nil {
		out = map[string]any{"error": gateway.ToError(err)}
	}
	b, _ := json.Marshal(out)
	return clipResult(string(b))
}

// clipResult bounds what one tool call shows the model.
func clipResult(s string) string {
	if len(s) > maxToolResult {
		return head([]byte(s), maxToolResult)
	}
	return s
}

// failure words a failed model call for the agent's caller.
func (l *LLM) failure(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), errInvocationTimeout):
		return failed(fmt.Sprintf("timed out after %v", l.Timeout), "%w: llm %q: timed out after %v (handler.timeoutMs)", federation.ErrAgentFailed, l.Model, l.Timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("llm %q: %w", l.Model, ctx.Err())
	}
	public := "could not reach its model endpoint"
	var se *statusError
	if errors.As(err, &se) {
		public = fmt.Sprintf("got %d %s from its model endpoint", se.status, http.StatusText(se.status))
	}
	return failed(public, "%w: llm %q: %w", federation.ErrAgentFailed, l.Model, err)
}

// complete makes one Chat Completions call, retrying 429 and 5xx.
func (l *LLM) complete(ctx context.Context, req *chatRequest) (*chatResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, backoff.Permanent(err)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = firstRetryWait
	return backoff.Retry(ctx, func() (*chatResponse, error) { return l.post(ctx, body) },
		backoff.WithBackOff(bo), backoff.WithMaxTries(uint(orDefault(l.MaxTries, defaultMaxTries))), backoff.WithMaxElapsedTime(0))
}

// post sends one request. Errors worth retrying are returned as they are;
// the others wrapped with backoff.Permanent.
func (l *LLM) post(ctx context.Context, body []byte) (*chatResponse, error) {
	endpoint := strings.TrimSuffix(l.BaseURL, "/") + "/chat/completions"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, backoff.Permanent(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if l.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+l.APIKey)
	}
	client := l.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, backoff.Permanent(err)
		}
		return nil, fmt.Errorf("POST %s: %w", endpoint, err) // a transport failure: retried
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("POST %s: read response: %w", endpoint, err)
	case len(out) > maxReply:
		return nil, backoff.Permanent(fmt.Errorf("POST %s: response body exceeds %d MiB", endpoint, maxReply>>20))
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, &retryable{err: &statusError{endpoint, resp.StatusCode, out}, after: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode/100 != 2:
		return nil, backoff.Permanent(&statusError{endpoint, resp.StatusCode, out})
	}
	var cr chatResponse
	if err := json.Unmarshal(out, &cr); err != nil {
		return nil, backoff.Permanent(fmt.Errorf("POST %s: the response is not a chat completion: %v; body: %q", endpoint, err, head(out, bodyExcerptLen)))
	}
	return &cr, nil
}

// statusError is a model endpoint's answer other than 2xx.
type statusError struct {
	endpoint string
	status   int
	body     []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("POST %s: status %d %s; body: %q", e.endpoint, e.status, http.StatusText(e.status), head(e.body, bodyExcerptLen))
}

// retryable is a 429 or 5xx answer; after, when the server sent
// Retry-After, makes backoff wait that long.
type retryable struct {
	err   error
	after *backoff.RetryAfterError
}

func (e *retryable) Error() string { return e.err.Error() }

func (e *retryable) Unwrap() []error {
	if e.after == nil {
		return []error{e.err}
	}
	return []error{e.err, e.after}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date),
// capped at maxRetryAfter; nil when absent or unreadable.
func retryAfter(v string) *backoff.RetryAfterError {
	if v == "" {
		return nil
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(time.Until(t), 0)
	} else {
		return nil
	}
	return &backoff.RetryAfterError{Duration: min(d, maxRetryAfter)}
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
