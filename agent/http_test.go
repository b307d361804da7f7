package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
)

// newAgentServer starts a loopback HTTP agent that checks each request is a
// POSTed FederationMessage, then answers according to the URL path.
func newAgentServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	decode := func(w http.ResponseWriter, r *http.Request) (*federation.Message, bool) {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			http.Error(w, "Content-Type is "+ct, http.StatusUnsupportedMediaType)
			return nil, false
		}
		var msg federation.Message
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, "bad message: "+err.Error(), http.StatusBadRequest)
			return nil, false
		}
		if key, want := r.Header.Get("Idempotency-Key"), msg.FromServer+"/"+msg.MessageID; key != want {
			http.Error(w, fmt.Sprintf("Idempotency-Key %q, want %q", key, want), http.StatusBadRequest)
			return nil, false
		}
		return &msg, true
	}
	mux.HandleFunc("POST /json", func(w http.ResponseWriter, r *http.Request) {
		msg, ok := decode(w, r)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"content": "re: " + msg.Content,
			"context": map[string]any{"from": msg.FromAgent, "session": msg.Context["session"]},
		})
	})
	mux.HandleFunc("POST /text", func(w http.ResponseWriter, r *http.Request) {
		msg, ok := decode(w, r)
		if !ok {
			return
		}
		fmt.Fprintf(w, "\n  plain reply to %s  \n", msg.MessageID)
	})
	mux.HandleFunc("POST /json-text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `["not", "an", "object"]`)
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down: "+strings.Repeat("x", 1000), http.StatusInternalServerError)
	})
	mux.HandleFunc("POST /big", func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("y", 64<<10)
		for range (maxReply / len(chunk)) + 2 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	stop := make(chan struct{})
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hanging up only once the body is read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done(): // the client gave up
		case <-stop:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	return srv
}

func TestHTTP(t *testing.T) {
	srv := newAgentServer(t)
	tests := []struct {
		path string
		want *federation.Answer
	}{
		{
			path: "/json",
			want: &federation.Answer{Content: "re: ping", Context: map[string]any{"from": "planner", "session": "s-1"}},
		},
		{
			path: "/text",
			want: &federation.Answer{Content: "plain reply to m-1"},
		},
		{
			path: "/json-text",
			want: &federation.Answer{Content: `["not", "an", "object"]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			h := &HTTP{URL: srv.URL + tt.path, Client: srv.Client()}
			msg := testMessage("ping")
			msg.Context = map[string]any{"session": "s-1"}
			got, err := h.Handle(t.Context(), msg)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	srv := newAgentServer(t)
	tests := []struct {
		name    string
		http    HTTP
		want    []string
		notWant []string
	}{
		{
			name:    "server error",
			http:    HTTP{URL: srv.URL + "/fail"},
			want:    []string{"federation: agent failed", srv.URL + "/fail", "status 500 Internal Server Error", `body: "database down: xxx`, `x…"`},
			notWant: []string{strings.Repeat("x", 300)},
		},
		{
			name: "not found",
			http: HTTP{URL: srv.URL + "/nowhere"},
			want: []string{"status 404"},
		},
		{
			name: "body too large",
			http: HTTP{URL: srv.URL + "/big"},
			want: []string{"response body: output exceeds 4 MiB"},
		},
		{
			name: "timeout",
			http: HTTP{URL: srv.URL + "/slow", Timeout: 200 * time.Millisecond},
			want: []string{"timed out after 200ms"},
		},
		{
			name: "connection refused",
			http: HTTP{URL: closedURL(t)},
			want: []string{"connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			ans, err := tt.http.Handle(ctx, testMessage("ping"))
			if err == nil {
				t.Fatalf("Handle succeeded with %+v, want an error", ans)
			}
			if !errors.Is(err, federation.ErrAgentFailed) {
				t.Errorf("error %v does not wrap federation.ErrAgentFailed", err)
			}
			if code := gateway.CodeOf(err); code != federation.CodeAgentError {
				t.Errorf("CodeOf(err) = %s, want %s", code, federation.CodeAgentError)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
		})
	}
}

// TestHTTPCancel checks that a caller giving up abandons the request and is
// reported as the caller's error, not the agent's.
func TestHTTPCancel(t *testing.T) {
	srv := newAgentServer(t)
	h := &HTTP{URL: srv.URL + "/slow", Client: srv.Client()}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := h.Handle(ctx, testMessage("ping"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Handle error = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if code := gateway.CodeOf(err); code != gateway.CodeTimeout {
		t.Errorf("CodeOf(err) = %s, want %s", code, gateway.CodeTimeout)
	}
}

// closedURL returns the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}
