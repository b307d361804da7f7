package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
)

func TestCodeOfAndToError(t *testing.T) {
	limited := &gateway.Error{Code: "RATE_LIMITED", Message: "slow down", Retryable: true, RetryAfterMs: 250,
		Details: map[string]any{"limit": 10}}
	tests := []struct {
		name string
		err  error
		want *gateway.Error // nil for a nil err
	}{
		{"nil", nil, nil},
		{"gateway error", limited, limited},
		{"wrapped gateway error keeps its fields and the whole message", fmt.Errorf("call peer %q: %w", "b", limited),
			&gateway.Error{Code: "RATE_LIMITED", Message: `call peer "b": slow down`, Retryable: true, RetryAfterMs: 250,
				Details: map[string]any{"limit": 10}}},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded),
			&gateway.Error{Code: gateway.CodeTimeout, Message: "wait: context deadline exceeded"}},
		{"cancelled", context.Canceled, &gateway.Error{Code: gateway.CodeCancelled, Message: "context canceled"}},
		{"plain", errors.New("disk full"), &gateway.Error{Code: gateway.CodeInternal, Message: "disk full"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode := ""
			if tt.want != nil {
				wantCode = tt.want.Code
			}
			if got := gateway.CodeOf(tt.err); got != wantCode {
				t.Errorf("CodeOf = %q, want %q", got, wantCode)
			}
			if diff := cmp.Diff(tt.want, gateway.ToError(tt.err)); diff != "" {
				t.Errorf("ToError mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorIsMatchesCode(t *testing.T) {
	remote := gateway.NewError(gateway.CodePeerUnavailable, "the remote gateway's own words")
	if !errors.Is(fmt.Errorf("federation: %w", remote), gateway.ErrClosed) {
		t.Error("errors.Is does not match a received error to the sentinel with its code")
	}
	if errors.Is(remote, gateway.NewError(gateway.CodeTimeout, "")) {
		t.Error("errors.Is matched errors with different codes")
	}
	if errors.Is(remote, errors.New(gateway.CodePeerUnavailable)) {
		t.Error("errors.Is matched a plain error")
	}
}

func TestLogThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var th gateway.LogThrottle
		if ok, _ := th.Allow(); !ok {
			t.Fatal("the first line should pass")
		}
		for range 5 {
			if ok, _ := th.Allow(); ok {
				t.Fatal("a line within the interval passed")
			}
		}
		time.Sleep(time.Second)
		if ok, n := th.Allow(); !ok || n != 5 {
			t.Fatalf("after the interval: ok=%v suppressed=%d; want true, 5", ok, n)
		}
	})
}
