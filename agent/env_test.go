//go:build unix

package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// TestExecEnvironment: an exec agent gets PATH and the like, and what its
// Env sets, but none of the gateway's other variables, such as its tokens.
func TestExecEnvironment(t *testing.T) {
	t.Setenv("AGENTFED_TOKEN", "operator-secret")
	t.Setenv("RESEARCH_TOKEN", "peer-secret")
	t.Setenv("LC_TIME", "C")
	e := &Exec{Command: sh(`env`), Env: map[string]string{"API_KEY": "agent-key", "LANG": "C.UTF-8"}}
	ans, err := e.Handle(context.Background(), federation.NewMessage(federation.TypeRequest, "a", "b", "c", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(ans.Content, "\n") {
		name, value, _ := strings.Cut(line, "=")
		got[name] = value
	}
	for name, want := range map[string]string{"API_KEY": "agent-key", "LANG": "C.UTF-8", "LC_TIME": "C"} {
		if got[name] != want {
			t.Errorf("%s=%q in the agent's environment, want %q", name, got[name], want)
		}
	}
	if got["PATH"] == "" {
		t.Error("the agent has no PATH")
	}
	for name := range got {
		if strings.Contains(name, "TOKEN") {
			t.Errorf("the agent got the gateway's %s", name)
		}
	}
}
