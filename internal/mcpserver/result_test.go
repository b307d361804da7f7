package mcpserver

import (
	"strings"
	"testing"

	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestSuccessResult(t *testing.T) {
	for _, tt := range []struct {
		name, out, summary string
		isError            bool
		structured         any
	}{
		{"send ok", `{"peerId":"p","status":"ok","response":{"content":"hi"}}`, "p answered: hi", false, nil},
		{"send failed", `{"peerId":"p","status":"timeout","error":{"code":"TIMEOUT","message":"no answer"}}`, "p: timeout: TIMEOUT: no answer", true, nil},
		{"durable", `{"peerId":"p","status":"queued","messageId":"m"}`, "p: queued.", false, nil},
		{"broadcast", `[{"peerId":"a","status":"ok"},{"peerId":"b","status":"error"}]`, "1 of 2 peers answered ok.", false,
			map[string]any{"results": []any{map[string]any{"peerId": "a", "status": "ok"}, map[string]any{"peerId": "b", "status": "error"}}}},
		{"list_peers", `{"serverId":"s","totalPeers":2,"peers":[{},{}]}`, "2 peers.", false, nil},
		{"other", `{"success":true}`, "Done.", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := successResult([]byte(tt.out))
			text := res.Content[0].(*mcp.TextContent).Text
			if first, _, _ := strings.Cut(text, "\n"); first != tt.summary {
				t.Errorf("summary = %q, want %q", first, tt.summary)
			}
			if !strings.HasSuffix(text, "\n"+tt.out) {
				t.Errorf("text %q does not end with the JSON result", text)
			}
			if res.IsError != tt.isError {
				t.Errorf("isError = %v, want %v", res.IsError, tt.isError)
			}
			if tt.structured != nil {
				if d := cmp.Diff(tt.structured, res.StructuredContent); d != "" {
					t.Errorf("structuredContent (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestErrorResultIsBounded(t *testing.T) {
	res := errorResult(gateway.NewError(gateway.CodeInvalidParams, strings.Repeat("é", maxText)))
	text := res.Content[0].(*mcp.TextContent).Text
	if !res.IsError || len(text) > maxText+len("INVALID_PARAMS: ")+len("…") || !strings.HasSuffix(text, "…") {
		t.Errorf("isError %v, text of %d bytes, want a clipped error", res.IsError, len(text))
	}
	if !strings.HasPrefix(text, "INVALID_PARAMS: é") {
		t.Errorf("text starts %q", text[:20])
	}
}
