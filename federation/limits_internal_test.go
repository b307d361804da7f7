package federation

import (
	"fmt"
	"testing"
)

// TestMadeUpNamesKeepPeersLimited: a flood of unauthenticated names, past
// the number of buckets kept, must not reset the bucket of an
// authenticated peer (which would let it send past its limit).
func TestMadeUpNamesKeepPeersLimited(t *testing.T) {
	l := newPeerLimits(LimitsConfig{PeerRatePerSec: 0.001, PeerBurst: 1})
	if err := l.allow("signer", true, 0); err != nil {
		t.Fatalf("first request of signer: %v", err)
	}
	if err := l.allow("signer", true, 0); code(err) != "RATE_LIMITED" {
		t.Fatalf("second request of signer: %v; want RATE_LIMITED", err)
	}
	for i := range maxLimiters + 10 {
		l.allow(fmt.Sprintf("made-up-%d", i), false, 0)
	}
	if err := l.allow("signer", true, 0); code(err) != "RATE_LIMITED" {
		t.Fatalf("signer after a flood of made-up names: %v; want RATE_LIMITED still", err)
	}
	if n := len(l.unknown); n > maxLimiters {
		t.Errorf("%d unauthenticated buckets kept; want at most %d", n, maxLimiters)
	}
}
