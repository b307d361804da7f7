package config

import (
	"strings"
	"testing"
)

func TestParseA2AAuth(t *testing.T) {
	in := []byte("gateway:\n  auth:\n    a2a:\n      - id: framework\n        token: ${AGENTFED_TEST_A2A_TOKEN}\n        allowAgents: [echo]\n")
	t.Setenv("AGENTFED_TEST_A2A_TOKEN", "from-env")
	cfg, err := Parse(in, "a2a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Gateway.Auth.A2A; len(a) != 1 || a[0].ID != "framework" || a[0].Token != "from-env" || a[0].AllowAgents[0] != "echo" {
		t.Fatalf("gateway.auth.a2a = %+v", a)
	}
	_, err = Parse([]byte("gateway:\n  auth:\n    a2a:\n      - id: framework\n        tokn: x\n"), "a2a.yaml")
	if err == nil || !strings.Contains(err.Error(), "gateway.auth.a2a[0].tokn") || !strings.Contains(err.Error(), `did you mean "token"`) {
		t.Fatalf("unknown key under gateway.auth.a2a: %v", err)
	}
}
