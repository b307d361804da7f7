package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// HTTP is an agent behind an HTTP endpoint. For every message it POSTs the
// federation message as JSON (Content-Type: application/json) to URL; the
// body of a 2xx response is the reply, read as the package documentation
// describes, whatever its Content-Type.
//
// A non-2xx status, exceeding Timeout, a body over 4 MiB or a transport
// failure is a [*federation.AgentError] wrapping
// [federation.ErrAgentFailed]. Its details name the URL and quote the start
// of the body, and stay on the gateway; its public part says only what
// happened ("answered 502 Bad Gateway"). When the caller's context ends first, the
// request is abandoned and the error wraps the context's error.
type HTTP struct {
	// URL is where messages are POSTed.
	URL string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Timeout caps each invocation even when the caller would wait longer.
	// Zero means no cap beyond the caller's deadline.
	Timeout time.Duration
}

var _ federation.Handler = (*HTTP)(nil)

// Handle implements [federation.Handler].
func (h *HTTP) Handle(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
	if msg == nil {
		return nil, failed("got no message", "%w: http %q: message is missing", federation.ErrInvalidParams, h.URL)
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, failed("could not be given the message", "%w: http %q: encode message: %w", federation.ErrInvalidParams, h.URL, err)
	}
	reqCtx, cancel := withTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return nil, failed("is not configured", "%w: http %q: %w", federation.ErrAgentFailed, h.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.1")
	// A durable message can reach the agent twice if its gateway crashed
	// while the agent worked; the key lets the agent do the work once.
	req.Header.Set("Idempotency-Key", msg.FromServer+"/"+msg.MessageID)

	out, status, err := h.do(req)
	switch {
	case err == nil && status/100 == 2:
		return parseReply(out), nil
	case err == nil:
		return nil, failed(fmt.Sprintf("answered %d %s", status, http.StatusText(status)), "%w: http %q: status %d %s; body: %q",
			federation.ErrAgentFailed, h.URL, status, http.StatusText(status), head(out, bodyExcerptLen))
	case ctx.Err() != nil:
		return nil, fmt.Errorf("http %q: %w", h.URL, ctx.Err())
	case errors.Is(context.Cause(reqCtx), errInvocationTimeout):
		return nil, failed(fmt.Sprintf("timed out after %v", h.Timeout), "%w: http %q: timed out after %v (handler.timeoutMs)", federation.ErrAgentFailed, h.URL, h.Timeout)
	case errors.Is(err, errTooLarge):
		return nil, failed(fmt.Sprintf("answered with more than %d MiB", maxReply>>20), "%w: http %q: %w", federation.ErrAgentFailed, h.URL, err)
	}
	return nil, failed("could not be reached", "%w: http %q: %w", federation.ErrAgentFailed, h.URL, err)
}

// do sends req and reads at most maxReply bytes of the response body.
func (h *HTTP) do(req *http.Request) (body []byte, status int, err error) {
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("read response: %w", err)
	case len(body) > maxReply && resp.StatusCode/100 == 2:
		return nil, 0, fmt.Errorf("response body: %w", errTooLarge)
	}
	return body, resp.StatusCode, nil
}
