package agent

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/google/go-cmp/cmp"
)

func testMessage(content string) *federation.Message {
	return &federation.Message{
		MessageID:     "m-1",
		FromAgent:     "planner",
		FromServer:    "gw-a",
		ToAgent:       "worker",
		Type:          federation.TypeRequest,
		Content:       content,
		CorrelationID: "c-1",
		Priority:      federation.PriorityHigh,
		Timestamp:     1700000000000,
	}
}

func TestEcho(t *testing.T) {
	received := map[string]any{
		"messageId":     "m-1",
		"fromAgent":     "planner",
		"fromServer":    "gw-a",
		"type":          "request",
		"correlationId": "c-1",
		"priority":      "high",
	}
	tests := []struct {
		name    string
		context map[string]any
		want    map[string]any
	}{
		{
			name: "no context",
			want: map[string]any{"received": received},
		},
		{
			name:    "session context kept",
			context: map[string]any{"session": "s-9", "step": float64(2)},
			want:    map[string]any{"session": "s-9", "step": float64(2), "received": received},
		},
		{
			name:    "received replaced",
			context: map[string]any{"received": "spoofed"},
			want:    map[string]any{"received": received},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := testMessage("hello there")
			msg.Context = tt.context
			before, _ := json.Marshal(msg)

			ans, err := Echo{}.Handle(t.Context(), msg)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			want := &federation.Answer{Content: "hello there", Context: tt.want}
			if diff := cmp.Diff(want, ans); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}

			// The answer survives the wire unchanged.
			wire, err := json.Marshal(ans)
			if err != nil {
				t.Fatal(err)
			}
			var back federation.Answer
			if err := json.Unmarshal(wire, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, &back); diff != "" {
				t.Errorf("answer after JSON round trip (-want +got):\n%s", diff)
			}

			// The request is not modified.
			if after, _ := json.Marshal(msg); string(after) != string(before) {
				t.Errorf("message changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestEchoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (Echo{}).Handle(ctx, testMessage("x")); err == nil {
		t.Fatal("Handle with a cancelled context succeeded")
	}
}
