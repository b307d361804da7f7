package main

import (
	"errors"
	"testing"

	"github.com/agentfed/agentfed/gateway"
)

// TestMessageNamesFlags: a gateway's INVALID_PARAMS about parameters the
// CLI set names the flags, and only where a parameter starts a problem.
func TestMessageNamesFlags(t *testing.T) {
	err := &exitError{code: exitFailed, flags: map[string]string{"peerToken": "--peer-token", "peerUrl": "--peer-url", "priority": "--priority"},
		err: gateway.NewError(gateway.CodeInvalidParams, `federation: invalid parameters: peerUrl: scheme "http" is not ws:// or wss://; peerToken: required; the priority stays`)}
	want := `--peer-url: scheme "http" is not ws:// or wss://; --peer-token: required; the priority stays`
	if got := err.message(); got != want {
		t.Fatalf("message() = %q, want %q", got, want)
	}
	if got := err.stableCode(); got != gateway.CodeInvalidParams {
		t.Fatalf("stableCode() = %q", got)
	}
	if got := (&exitError{code: exitUsage, err: errors.New("bad flag")}).stableCode(); got != codeUsage {
		t.Fatalf("usage error code %q, want %s", got, codeUsage)
	}
}
