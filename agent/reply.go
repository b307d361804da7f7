package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/agentfed/agentfed/federation"
)

// Limits on what an agent may send back.
const (
	maxReply       = 4 << 20  // stdout of an exec agent, body of an http agent
	maxStderr      = 64 << 10 // stderr kept from an exec agent (its tail)
	errTailLen     = 1 << 10  // stderr quoted in an error
	bodyExcerptLen = 256      // response body quoted in an error
)

// errInvocationTimeout is the cause of a context ended by a handler's own
// Timeout, which tells it apart from the caller giving up.
var errInvocationTimeout = errors.New("agent: invocation timed out")

// withTimeout bounds ctx by a handler's Timeout; d <= 0 means no own bound.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, errInvocationTimeout)
}

// parseReply turns an agent's output into an Answer: a JSON object with a
// string "content" (and optionally an object "context") is used as such,
// anything else is the content, trimmed.
func parseReply(out []byte) *federation.Answer {
	out = bytes.TrimSpace(out)
	if len(out) > 0 && out[0] == '{' {
		var r struct {
			Content *string        `json:"content"`
			Context map[string]any `json:"context"`
		}
		if json.Unmarshal(out, &r) == nil && r.Content != nil {
			return &federation.Answer{Content: *r.Content, Context: r.Context}
		}
	}
	return &federation.Answer{Content: string(out)}
}

// tail returns the last n bytes of b, trimmed, marked with "…" when cut.
func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	b = b[len(b)-n:]
	for len(b) > 0 && !utf8.RuneStart(b[0]) {
		b = b[1:]
	}
	return "…" + string(b)
}

// head returns the first n bytes of b, trimmed, marked with "…" when cut.
func head(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	b = b[:n]
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return string(b) + "…"
}

// failed returns an agent failure whose caller is told only public; the
// error built from format and args, with the details, stays on the gateway.
func failed(public, format string, args ...any) error {
	return &federation.AgentError{Public: public, Err: fmt.Errorf(format, args...)}
}

// errTooLarge is returned by a cappedBuffer's Write once it is full.
var errTooLarge = fmt.Errorf("output exceeds %d MiB", maxReply>>20)

// cappedBuffer keeps at most max bytes; the write that would go past max
// fails with errTooLarge after calling full, once.
type cappedBuffer struct {
	max  int
	full func()
	buf  bytes.Buffer
	over bool
}

func (w *cappedBuffer) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.max {
		if !w.over {
			w.over = true
			w.full()
		}
		return 0, errTooLarge
	}
	return w.buf.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > 2*w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

// Bytes returns the last max bytes written.
func (w *tailBuffer) Bytes() []byte {
	if len(w.buf) > w.max {
		return w.buf[len(w.buf)-w.max:]
	}
	return w.buf
}
