package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDemoWithLLM runs demo --llm against an OpenAI-compatible server on
// loopback that delegates by capability first, then reports the tool's
// result: the llm agent's delegate reaches the data gateway's agent.
func TestDemoWithLLM(t *testing.T) {
	var calls, withTools atomic.Int32
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Role    string  `json:"role"`
				Content *string `json:"content"`
			} `json:"messages"`
			Tools []json.RawMessage `json:"tools"`
		}
		if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Model != "demo-model" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		if len(req.Tools) == 1 {
			withTools.Add(1)
		}
		msg := map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
			"id": "c1", "type": "function", "function": map[string]any{"name": "agent_federation",
				"arguments": `{"action":"delegate","requiredCapabilities":["statistics"],"task":"compute the mean of 3, 5 and 10"}`}}}}
		if last := req.Messages[len(req.Messages)-1]; last.Role == "tool" {
			var res struct {
				PeerID   string `json:"peerId"`
				Response struct {
					Content string `json:"content"`
				} `json:"response"`
			}
			json.Unmarshal([]byte(*last.Content), &res)
			msg = map[string]any{"role": "assistant", "content": fmt.Sprintf("%s answered: %s", res.PeerID, res.Response.Content)}
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": msg}},
			"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
	}))
	defer model.Close()

	out, errOut, code := agentfed(t, "", "demo", "--llm", model.URL+"/v1", "--llm-model", "demo-model")
	if code != 0 {
		t.Fatalf("demo --llm exited %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "data-agent answered: compute the mean of 3, 5 and 10") {
		t.Errorf("the llm agent's answer is not the delegated result:\n%s", out)
	}
	if !strings.Contains(out, "across 4 gateways") || withTools.Load() == 0 {
		t.Errorf("4 gateways and a model offered the tool expected (%d calls, %d with tools):\n%s", calls.Load(), withTools.Load(), out)
	}

	_, errOut, code = agentfed(t, "", "demo", "--llm", "ftp://x")
	if code != exitUsage || !strings.Contains(errOut, `--llm "ftp://x" is not an http:// or https:// URL`) {
		t.Errorf("demo --llm ftp://x: exit %d, %s", code, errOut)
	}
}
