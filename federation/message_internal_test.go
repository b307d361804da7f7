package federation

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestNewID: message IDs are version 7 UUIDs carrying the time they were
// made, ordered by it, and unique.
func TestNewID(t *testing.T) {
	before := time.Now().UnixMilli()
	seen := make(map[string]bool)
	prev := ""
	for range 10000 {
		id := newID()
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("newID %q: %v", id, err)
		}
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("newID %q: version %d variant %v, want 7 and RFC 4122", id, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("newID repeated %q", id)
		}
		seen[id] = true
		if id[:13] < prev[:min(13, len(prev))] { // the millisecond part never goes back
			t.Fatalf("newID %q sorts before the earlier %q", id, prev)
		}
		prev = id
	}
	after := time.Now().UnixMilli()
	u := uuid.MustParse(prev)
	sec, nsec := u.Time().UnixTime()
	if ms := sec*1000 + nsec/1e6; ms < before || ms > after {
		t.Errorf("newID's time %d ms is outside [%d, %d]", ms, before, after)
	}
}
