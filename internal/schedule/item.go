package schedule

import (
	"context"
	"strings"

	"github.com/cenkalti/backoff/v5"
)

// Item is what the schedule keeps of one queued message.
type Item struct {
	ID        string
	Key       string // the peer it goes to, or DelegateKey of a delegation's capabilities
	Rank      int    // priority: higher goes first
	CreatedAt int64  // Unix ms; older goes first among equal ranks
	Next      int64  // Unix ms of the next attempt; 0: now
	Expires   int64  // Unix ms when it is dead if not delivered; 0: never

	// The owner's, while an attempt runs; guarded by the owner's mutex.
	Stop      context.CancelFunc // ends the attempt in flight
	Done      chan struct{}      // closed when the attempt in flight ends
	Cancelled bool               // an operator cancelled it during an attempt

	bo    *backoff.ExponentialBackOff // its retry schedule, once it has failed
	probe bool                        // the attempt probes its down peer
}

// delegatePrefix marks the keys of durable delegations, which are not tied
// to one peer: those needing the same capabilities wait together.
const delegatePrefix = "delegate\x00"

// DelegateKey is the Item.Key of a delegation needing capabilities.
func DelegateKey(capabilities []string) string {
	return delegatePrefix + strings.Join(capabilities, "\x00")
}
