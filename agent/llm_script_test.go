package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// scriptedLLM is an OpenAI-compatible Chat Completions server on loopback
// that answers from a script, per model name, and records every request.
type scriptedLLM struct {
	*httptest.Server
	mu      sync.Mutex // guards scripts and got
	scripts map[string]reply
	got     []recorded
}

// reply decides the answer to a request; n counts the model's requests,
// from 1.
type reply func(req chatRequest, n int) (status int, header map[string]string, body any)

type recorded struct {
	req    chatRequest
	header http.Header
}

func newScriptedLLM(t *testing.T) *scriptedLLM {
	s := &scriptedLLM{scripts: map[string]reply{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptedLLM) script(model string, r reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[model] = r
}

func (s *scriptedLLM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, "not found: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, recorded{req: req, header: r.Header.Clone()})
	n := 0
	for _, g := range s.got {
		if g.req.Model == req.Model {
			n++
		}
	}
	script := s.scripts[req.Model]
	s.mu.Unlock()
	if script == nil {
		http.Error(w, fmt.Sprintf(`{"error":{"message":"no script for model %q"}}`, req.Model), http.StatusNotFound)
		return
	}
	status, header, body := script(req, n)
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// requests returns what model was sent, in order.
func (s *scriptedLLM) requests(model string) []chatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chatRequest
	for _, g := range s.got {
		if g.req.Model == model {
			out = append(out, g.req)
		}
	}
	return out
}

// completion is a 200 answer with text or calls of agent_federation, and
// token usage.
func completion(text string, calls ...string) (int, map[string]string, any) {
	var named []string
	for _, args := range calls {
		named = append(named, "agent_federation", args)
	}
	return namedCalls(text, named...)
}

// namedCalls is completion with calls of any tool: name, arguments, name,
// arguments...
func namedCalls(text string, calls ...string) (int, map[string]string, any) {
	msg := map[string]any{"role": "assistant", "content": nil}
	if text != "" {
		msg["content"] = text
	}
	var tcs []map[string]any
	for i := 0; i+1 < len(calls); i += 2 {
		tcs = append(tcs, map[string]any{"id": fmt.Sprintf("call_%d", i/2+1), "type": "function",
			"function": map[string]any{"name": calls[i], "arguments": calls[i+1]}})
	}
	if len(tcs) > 0 {
		msg["tool_calls"] = tcs
	}
	return 200, nil, map[string]any{
		"id": "chatcmpl-test", "object": "chat.completion", "model": "scripted",
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": "stop"}},
		"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
	}
}

// lastTool is the content of the conversation's last tool message, or "".
func lastTool(req chatRequest) string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if m := req.Messages[i]; m.Role == "tool" && m.Content != nil {
			return *m.Content
		}
	}
	return ""
}

// text returns the contents of a conversation's messages with role.
func text(req chatRequest, role string) string {
	var b strings.Builder
	for _, m := range req.Messages {
		if m.Role == role && m.Content != nil {
			b.WriteString(*m.Content + "\n")
		}
	}
	return b.String()
}
