package config

import (
	"errors"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/google/go-cmp/cmp"
)

// TestExecEnv: agents[].handler.env is a mapping of names to values, ${VAR}
// expanded, for exec agents only, and never one of the gateway's tokens.
func TestExecEnv(t *testing.T) {
	env := map[string]string{"AGENT_KEY": "agent-secret", "GW_TOKEN": "gateway-secret"}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	cfg, err := parse([]byte(`
agents:
  - id: a
    handler:
      type: exec
      command: [./a.sh]
      env: {API_KEY: "${AGENT_KEY}", MODE: prod, RETRIES: 3}
`), "a.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"API_KEY": "agent-secret", "MODE": "prod", "RETRIES": "3"}
	if diff := cmp.Diff(want, cfg.Agents[0].Handler.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}

	_, err = parse([]byte(`gateway:
  auth:
    peers:
      - {serverId: main, token: "${GW_TOKEN}"}
agents:
  - id: a
    handler:
      type: exec
      command: [./a.sh]
      env:
        TOKEN: "${GW_TOKEN}"
        1BAD: x
        UNSET: "${NOPE}"
  - id: b
    handler: {type: echo, env: {A: b}}
  - id: c
    handler: {type: exec, command: [./c.sh], env: [A=b]}
`), "b.yaml", lookup)
	var ve *federation.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *federation.ValidationError", err)
	}
	wantProblems := []federation.Problem{
		{Line: 11, Path: "agents[0].handler.env.TOKEN", Message: "is the token of gateway.auth.peers[0].token; an agent must never get the gateway's own credentials: give it one of its own"},
		{Line: 12, Path: "agents[0].handler.env.1BAD", Message: `"1BAD" is not an environment variable name; use letters, digits and _, not starting with a digit`},
		{Line: 13, Path: "agents[0].handler.env.UNSET", Message: "environment variable NOPE is not set; set it before starting agentfed, or write the token itself"},
		{Line: 15, Path: "agents[1].handler.env", Message: "only exec handlers take env; remove it, or set handler.type to exec"},
		{Line: 17, Path: "agents[2].handler.env", Message: "expected a mapping, got a list"},
	}
	if diff := cmp.Diff(wantProblems, ve.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
