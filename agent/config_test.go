package agent

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/google/go-cmp/cmp"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  federation.HandlerConfig
		want federation.Handler
	}{
		{name: "default is echo", want: Echo{}},
		{name: "echo", cfg: federation.HandlerConfig{Type: "echo", TimeoutMs: 5}, want: Echo{}},
		{
			name: "exec",
			cfg:  federation.HandlerConfig{Type: "exec", Command: []string{"./bot", "-v"}, Dir: "/srv/bot", TimeoutMs: 1500},
			want: &Exec{Command: []string{"./bot", "-v"}, Dir: "/srv/bot", Timeout: 1500 * time.Millisecond},
		},
		{
			name: "http",
			cfg:  federation.HandlerConfig{Type: "http", URL: "https://agents.example/bot"},
			want: &HTTP{URL: "https://agents.example/bot"},
		},
		{
			name: "openclaw",
			cfg:  federation.HandlerConfig{Type: "openclaw", URL: "ws://127.0.0.1:18789", Token: "s3cret", AgentID: "ops", TimeoutMs: 90000},
			want: &OpenClaw{URL: "ws://127.0.0.1:18789", Token: "s3cret", AgentID: "ops", Timeout: 90 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(federation.AgentConfig{ID: "bot", Handler: tt.cfg})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(http.Client{})); diff != "" {
				t.Errorf("handler (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  federation.HandlerConfig
		want string
	}{
		{
			name: "unknown type",
			cfg:  federation.HandlerConfig{Type: "grpc"},
			want: `agent "bot": agents[].handler.type: unknown handler type "grpc"; use one of echo, exec, http, openclaw, llm`,
		},
		{
			name: "type is case-sensitive",
			cfg:  federation.HandlerConfig{Type: "Exec", Command: []string{"true"}},
			want: `unknown handler type "Exec"`,
		},
		{
			name: "exec without command",
			cfg:  federation.HandlerConfig{Type: "exec"},
			want: "agents[].handler.command: required for an exec handler",
		},
		{
			name: "exec with empty program",
			cfg:  federation.HandlerConfig{Type: "exec", Command: []string{""}},
			want: "agents[].handler.command: required for an exec handler",
		},
		{
			name: "http without url",
			cfg:  federation.HandlerConfig{Type: "http"},
			want: "agents[].handler.url: required for an http handler",
		},
		{
			name: "openclaw without url",
			cfg:  federation.HandlerConfig{Type: "openclaw"},
			want: "agents[].handler.url: required for an openclaw handler",
		},
		{
			name: "openclaw with http url",
			cfg:  federation.HandlerConfig{Type: "openclaw", URL: "http://127.0.0.1:18789"},
			want: `agents[].handler.url: scheme "http" is not ws:// or wss://`,
		},
		{
			name: "http with other scheme",
			cfg:  federation.HandlerConfig{Type: "http", URL: "ftp://host/x"},
			want: `agents[].handler.url: scheme "ftp" is not http:// or https://`,
		},
		{
			name: "http without host",
			cfg:  federation.HandlerConfig{Type: "http", URL: "http:///x"},
			want: "has no host",
		},
		{
			name: "negative timeout",
			cfg:  federation.HandlerConfig{Type: "echo", TimeoutMs: -1},
			want: "agents[].handler.timeoutMs: must not be negative (got -1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(federation.AgentConfig{ID: "bot", Handler: tt.cfg})
			if err == nil {
				t.Fatalf("New returned %#v, want an error", h)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
