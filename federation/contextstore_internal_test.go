package federation

import (
	"errors"
	"fmt"
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
	for i := range maxSessionsPerSender {
		if _, err := s.merge("flooder", fmt.Sprint(i), map[string]any{"k": i}); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if len(s.cache) > maxContextCache {
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
	if err != nil || v != 2 || data["k"] != 2.0 || s2.sessions["flooder"] != maxSessionsPerSender {
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
