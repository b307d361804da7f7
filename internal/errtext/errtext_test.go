package errtext_test

import (
	"testing"

	"github.com/agentfed/agentfed/internal/errtext"
)

func TestPlain(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`federation: unknown peer: no peer named "x"`, `no peer named "x"`},
		{`federation: timeout`, `timeout`},
		{`dial peer "x": federation: peer unavailable: connection refused`, `dial peer "x": connection refused`},
		{`gateway: connection closed: going away`, `gateway: connection closed: going away`}, // not a restatement of its code
		{`peer "federation: x" is disabled`, `peer "federation: x" is disabled`},
	} {
		if got := errtext.Plain(tt.in); got != tt.want {
			t.Errorf("Plain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
