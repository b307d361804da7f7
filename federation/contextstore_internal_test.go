package federation

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

// TestContextStoreBounds: sessions never synced leave nothing behind, the
// cache stays bounded, and one sender cannot keep unlimited sessions.
func TestContextStoreBounds(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := newContextStore(st)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50_000 { // messages with fresh correlationIds
		if _, _, err := s.get("peer", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.cache) != 0 {
		t.Fatalf("%d cache entries for sessions never synced", len(s.cache))
	}
	for i := range s.limits.senderSessions {
		if _, err := s.merge("flooder", fmt.Sprint(i), map[string]any{"k": i}); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if len(s.cache) > s.limits.cacheEntries {
		t.Fatalf("cache grew to %d entries", len(s.cache))
	}
	if _, err := s.merge("flooder", "one-more", map[string]any{"k": 1}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("session past the cap: %v; want OVERLOADED", err)
	}
	if v, err := s.merge("flooder", "0", map[string]any{"k": 2}); err != nil || v != 2 {
		t.Fatalf("an existing session must still update: %d %v", v, err)
	}
	// After a restart the keys on disk are known again.
	s2, err := newContextStore(st)
	if err != nil {
		t.Fatal(err)
	}
	data, v, err := s2.get("flooder", "0")
	if err != nil || v != 2 || data["k"] != 2.0 || s2.sessions["flooder"] != s.limits.senderSessions || s2.senderSize["flooder"] != s.senderSize["flooder"] {
		t.Fatalf("after reload: %v %d %v, %d sessions", data, v, err, s2.sessions["flooder"])
	}
}

func TestContextStorePrune(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, _ := newContextStore(st)
	s.merge("peer", "old", map[string]any{"a": 1})
	s.prune(time.Now().Add(time.Hour)) // everything is older than that
	if len(s.known) != 0 || s.sessions["peer"] != 0 || len(s.cache) != 0 {
		t.Fatalf("after prune: known %d sessions %d cache %d", len(s.known), s.sessions["peer"], len(s.cache))
	}
	if data, v, _ := s.get("peer", "old"); len(data) != 0 || v != 0 {
		t.Fatalf("a pruned session still answers %v v%d", data, v)
	}
}

// TestContextStoreSizes: a session, a sender and the gateway each have a
// total; a merge over one is refused and leaves the stored context as it
// was.
func TestContextStoreSizes(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, _ := newContextStore(st)
	s.limits.sessionBytes, s.limits.senderBytes, s.limits.totalSessions = 1000, 2500, 5
	big := strings.Repeat("x", 400)
	for i := range 2 {
		if _, err := s.merge("a", "s1", map[string]any{fmt.Sprint("k", i): big}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.merge("a", "s1", map[string]any{"k2": big}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "per session") {
		t.Fatalf("a session over its limit: %v; want TOO_LARGE per session", err)
	}
	if data, v, _ := s.get("a", "s1"); v != 2 || len(data) != 2 {
		t.Fatalf("after a refused merge: version %d, %d keys; want the earlier 2 and 2", v, len(data))
	}
	if _, err := s.merge("a", "s2", map[string]any{"k": big + big}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.merge("a", "s3", map[string]any{"k": big + big}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "per sender") {
		t.Fatalf("a sender over its total: %v; want TOO_LARGE per sender", err)
	}
	for i := range 3 {
		if _, err := s.merge(fmt.Sprint("other", i), "s", map[string]any{"k": 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.merge("newcomer", "s", map[string]any{"k": 1}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("a session past the gateway's total: %v; want OVERLOADED", err)
	}
}
