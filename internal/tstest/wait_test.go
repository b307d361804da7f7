package tstest

import (
	"errors"
	"testing"
	"time"
)

func TestWaitForReturnsOnceMet(t *testing.T) {
	calls := 0
	WaitFor(t, time.Minute, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("cond called %d times; want 3", calls)
	}
}

// recorder is a testing.TB that records a Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func TestWaitForFailsAfterTimeout(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != any(r) {
				panic(p)
			}
		}()
		WaitFor(r, 30*time.Millisecond, func() error { return errors.New("never") })
	}()
	if r.failed == "" {
		t.Fatal("WaitFor returned for a condition never met")
	}
}
