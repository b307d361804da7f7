package openclaw_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// model is a scripted OpenAI-compatible Chat Completions server, the model
// provider of the OpenClaw gateway under test. It streams (SSE) as OpenClaw
// asks, and answers by the marker ([[name]]) in the conversation's user
// messages:
//
//	[[answer]]        "scripted answer from openclaw"
//	[[fed-send]]      an agent_federation send to echo-peer, then the tool's result
//	[[fed-delegate]]  an agent_federation delegate by capability, then the tool's result
//	[[stall]]         a stream that never ends, until the client closes it
type model struct {
	srv *httptest.Server

	mu       sync.Mutex    // guards the fields below
	requests []chatRequest // every request, in order
	closed   []string      // markers of stalled streams the client closed
}

type chatRequest struct {
	Model    string        `json:"model"`
	Stream   bool          `json:"stream"`
	Messages []chatMessage `json:"messages"`
	Tools    []struct {
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // a string or a list of {type, text} parts
}

// text is a message's text, whichever form its content has.
func (m chatMessage) text() string {
	switch c := m.Content.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			if part, ok := p.(map[string]any); ok {
				if s, ok := part["text"].(string); ok {
					b.WriteString(s)
				}
			}
		}
		return b.String()
	}
	return ""
}

const scriptedAnswer = "scripted answer from openclaw"

func startModel() *model {
	m := &model{}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	return m
}

var markerRE = regexp.MustCompile(`\[\[([a-z-]+)\]\]`)

func (m *model) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, "only POST /v1/chat/completions", http.StatusNotFound)
		return
	}
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	m.requests = append(m.requests, req)
	m.mu.Unlock()

	// Not just the last message: OpenClaw appends internal context after the
	// user's text. The conversation's marker is in its first user message
	// that has one; a tool message means the tool has answered.
	marker, toolResult := "", ""
	for _, msg := range req.Messages {
		switch msg.Role {
		case "user":
			if mm := markerRE.FindStringSubmatch(msg.text()); mm != nil && marker == "" {
				marker = mm[1]
			}
		case "tool":
			toolResult = msg.text()
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	switch {
	case marker == "stall":
		m.stall(w, r)
	case marker == "fed-send" && toolResult == "":
		m.toolCall(w, `{"action":"send","peerId":"echo-peer","message":"ping from openclaw","correlationId":"tool-send-1"}`)
	case marker == "fed-delegate" && toolResult == "":
		m.toolCall(w, `{"action":"delegate","requiredCapabilities":["echoing"],"task":"delegated by openclaw"}`)
	case toolResult != "":
		m.say(w, "federation said: "+toolResult)
	default:
		m.say(w, scriptedAnswer)
	}
}

func chunk(w http.ResponseWriter, delta map[string]any, finish any) {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": "fake-model",
		"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
	})
	fmt.Fprintf(w, "data: %s\n\n", b)
	w.(http.Flusher).Flush()
}

func done(w http.ResponseWriter) {
	fmt.Fprint(w, "data: [DONE]\n\n")
	w.(http.Flusher).Flush()
}

func (m *model) say(w http.ResponseWriter, text string) {
	chunk(w, map[string]any{"role": "assistant", "content": text}, nil)
	chunk(w, map[string]any{}, "stop")
	done(w)
}

func (m *model) toolCall(w http.ResponseWriter, args string) {
	chunk(w, map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{
		"index": 0, "id": "call_fed_1", "type": "function",
		"function": map[string]any{"name": "agent_federation", "arguments": args},
	}}}, nil)
	chunk(w, map[string]any{}, "tool_calls")
	done(w)
}

// stall starts a stream and holds it until the client closes it.
func (m *model) stall(w http.ResponseWriter, r *http.Request) {
	chunk(w, map[string]any{"role": "assistant", "content": ""}, nil)
	<-r.Context().Done()
	m.mu.Lock()
	m.closed = append(m.closed, "stall")
	m.mu.Unlock()
}

// requestsWith returns the requests any of whose messages contains s.
func (m *model) requestsWith(s string) []chatRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []chatRequest
	for _, req := range m.requests {
		for _, msg := range req.Messages {
			if strings.Contains(msg.text(), s) {
				out = append(out, req)
				break
			}
		}
	}
	return out
}

func (m *model) closedStalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.closed)
}
