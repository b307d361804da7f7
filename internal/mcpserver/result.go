package mcpserver

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/errtext"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxText bounds the text rendering of a result; structured content is
// always whole.
const maxText = 8 << 10

// errorResult is a failed action: isError, with the code and message both
// as text and as structured content {"error": {"code", "message"}}, the
// message without words that restate the code.
func errorResult(e *gateway.Error) *mcp.CallToolResult {
	plain := *e
	plain.Message = errtext.Plain(e.Message)
	e = &plain
	return &mcp.CallToolResult{
		IsError:           true,
		Content:           []mcp.Content{&mcp.TextContent{Text: e.Code + ": " + clip(e.Message, maxText)}},
		StructuredContent: map[string]any{"error": e},
	}
}

// successResult is an action's result as structured content (an array,
// which structured content cannot be, as {"results": [...]}), with a short
// summary line and the JSON as text. A single delivery whose status is not
// ok is reported with isError.
func successResult(out json.RawMessage) *mcp.CallToolResult {
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		return errorResult(gateway.NewError(gateway.CodeInternal, "the gateway returned a result that is not JSON: "+err.Error()))
	}
	structured, ok := v.(map[string]any)
	if !ok {
		structured = map[string]any{"results": v}
	}
	text := summary(structured)
	res := &mcp.CallToolResult{StructuredContent: structured}
	if status, _ := structured["status"].(string); status == "error" || status == "timeout" {
		res.IsError = true
	}
	res.Content = []mcp.Content{&mcp.TextContent{Text: clip(text+"\n"+string(out), maxText)}}
	return res
}

// summary is one line saying what happened, for hosts that show text only.
func summary(r map[string]any) string {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	switch {
	case r["results"] != nil:
		list, _ := r["results"].([]any)
		ok := 0
		for _, e := range list {
			if m, _ := e.(map[string]any); m != nil && str(m, "status") == "ok" {
				ok++
			}
		}
		return fmt.Sprintf("%d of %d peers answered ok.", ok, len(list))
	case r["peers"] != nil:
		list, _ := r["peers"].([]any)
		return fmt.Sprintf("%d peers.", len(list))
	case str(r, "status") == "ok":
		resp, _ := r["response"].(map[string]any)
		if resp == nil {
			return fmt.Sprintf("%s: ok.", str(r, "peerId"))
		}
		return fmt.Sprintf("%s answered: %s", str(r, "peerId"), clip(str(resp, "content"), 2<<10))
	case str(r, "status") != "":
		e, _ := r["error"].(map[string]any)
		if e == nil {
			return fmt.Sprintf("%s: %s.", str(r, "peerId"), str(r, "status"))
		}
		return fmt.Sprintf("%s: %s: %s: %s", str(r, "peerId"), str(r, "status"), str(e, "code"), clip(str(e, "message"), 1<<10))
	}
	return "Done."
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return strings.TrimSpace(s) + "…"
}
