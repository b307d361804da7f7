package tstest

import (
	"testing"
	"time"
)

// WaitFor calls cond until it returns nil, and fails the test with cond's
// last error once timeout has passed. It polls often at first and then
// every 20 ms, so that a condition met at once costs nothing and a slow
// one does not spin. Tests use it instead of sleeping for a guessed time.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}
