package federation

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// TestBreakerOpensAndRecovers drives a peer's breaker through closed, open,
// half-open and closed again on the bubble's fake clock.
func TestBreakerOpensAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newHealthTracker(BreakerSettings{Failures: 3, Open: 10 * time.Second})
		h := tr.get("p")
		unreachable := gateway.NewError(gateway.CodePeerUnavailable, "connection refused")
		for i := range 3 {
			done, err := h.allow("p", time.Second)
			if err != nil {
				t.Fatalf("attempt %d refused before the breaker should open: %v", i, err)
			}
			done(unreachable, 0)
		}
		if _, err := h.allow("p", time.Second); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("after 3 failures: %v; want CIRCUIT_OPEN", err)
		}
		if got := h.info(); got.State != HealthDown || got.Circuit != "open" {
			t.Fatalf("health with open circuit: %+v", got)
		}
		time.Sleep(10*time.Second + time.Millisecond)
		done, err := h.allow("p", time.Second)
		if err != nil {
			t.Fatalf("after the open period a probe should pass: %v", err)
		}
		if _, err := h.allow("p", time.Second); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("a second request during the probe: %v; want CIRCUIT_OPEN", err)
		}
		done(nil, 2*time.Millisecond)
		if got := h.info(); got.Circuit != "closed" || got.RTTMs != 2 {
			t.Fatalf("after a successful probe: %+v", got)
		}
	})
}

// TestAgentErrorsDoNotTripTheBreaker: an answer is an answer, even an
// error one; only unreachability and timeouts count against a peer.
func TestAgentErrorsDoNotTripTheBreaker(t *testing.T) {
	tr := newHealthTracker(BreakerSettings{Failures: 2})
	h := tr.get("p")
	for range 5 {
		done, err := h.allow("p", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		done(gateway.NewError(CodeAgentError, "script exited 1"), time.Millisecond)
	}
	if got := h.info(); got.Circuit != "closed" || got.State != HealthHealthy {
		t.Fatalf("agent errors changed peer health: %+v", got)
	}
}

func TestHealthStates(t *testing.T) {
	tr := newHealthTracker(BreakerSettings{Failures: 100})
	h := tr.get("p")
	if got := h.info().State; got != HealthUnknown {
		t.Fatalf("fresh peer: %s", got)
	}
	fail := func() { done, _ := h.allow("p", 0); done(gateway.NewError(gateway.CodeTimeout, "slow"), 0) }
	ok := func() { done, _ := h.allow("p", 0); done(nil, time.Millisecond) }
	fail()
	if got := h.info().State; got != HealthDown {
		t.Fatalf("never answered, last failed: %s", got)
	}
	ok()
	if got := h.info(); got.State != HealthDegraded || got.ErrorRate != 0.5 {
		t.Fatalf("1 of 2 failed: %+v", got)
	}
	for range 18 {
		ok()
	}
	if got := h.info(); got.State != HealthHealthy || got.ErrorRate != 0.05 {
		t.Fatalf("1 of 20 failed: %+v", got)
	}
}

// TestReplayGuardFutureStamp: a message stamped ahead of this clock stays
// fresh until a window after its stamp, and its id must be remembered
// that long.
func TestReplayGuardFutureStamp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, _ := newReplayGuard(200*time.Millisecond, nil, nil)
		m := NewMessage(TypeRequest, "s", "a", "b", "x")
		m.Timestamp = time.Now().Add(190 * time.Millisecond).UnixMilli()
		if err := g.check(m, false, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond) // past now+window, still within stamp+window
		if err := g.check(m, false, true); !errors.Is(err, ErrReplayed) {
			t.Fatalf("replay of a future-stamped message: %v; want REPLAYED", err)
		}
	})
}

// TestSuccessReportAllocatesNothing pins the breaker's bookkeeping of a
// delivery that succeeded, which every relay does: it allocates nothing
// (errors.As on a nil error used to allocate its target, twice a relay).
func TestSuccessReportAllocatesNothing(t *testing.T) {
	h := newHealthTracker(BreakerSettings{Failures: 3, Open: 10 * time.Second}).get("p")
	if n := testing.AllocsPerRun(100, func() {
		if excludedFromBreaker(nil) {
			t.Fatal("a success is excluded from the breaker")
		}
		h.record(nil, time.Millisecond)
	}); n != 0 {
		t.Fatalf("reporting a success allocates %v times; want 0", n)
	}
	if got := h.info(); got.State != HealthHealthy {
		t.Fatalf("health after successes: %+v", got)
	}
}
