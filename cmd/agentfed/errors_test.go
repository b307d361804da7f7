package main

import (
	"errors"
	"testing"

	"github.com/agentfed/agentfed/gateway"
)

func TestPlainMessage(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`federation: unknown peer: no peer named "x"`, `no peer named "x"`},
		{`federation: timeout`, `timeout`},
		{`dial peer "x": federation: peer unavailable: connection refused`, `dial peer "x": connection refused`},
		{`gateway: connection closed: going away`, `gateway: connection closed: going away`}, // not a restatement of its code
		{`peer "federation: x" is disabled`, `peer "federation: x" is disabled`},
	} {
		if got := plainMessage(tt.in); got != tt.want {
			t.Errorf("plainMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

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
