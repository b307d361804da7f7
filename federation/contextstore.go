package federation

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/agentfed/agentfed/internal/store"
)

// DefaultSession is the session of messages that carry no correlationId.
const DefaultSession = "default"

// SyncedContext is what sync_context stored for one sender and session.
type SyncedContext struct {
	Data    map[string]any `json:"data"`
	Version int64          `json:"version"`
}

// contextStore keeps synced context per sender server and session, in
// memory and in storage.dir, so it survives a restart.
type contextStore struct {
	st *store.Store

	mu    sync.Mutex // guards cache and every read-modify-write
	cache map[string]*SyncedContext
}

func newContextStore(st *store.Store) *contextStore {
	return &contextStore{st: st, cache: make(map[string]*SyncedContext)}
}

func contextKey(server, session string) string {
	if session == "" {
		session = DefaultSession
	}
	return server + "\x00" + session
}

// getLocked returns the stored context, loading it from storage once.
func (s *contextStore) getLocked(key string) (*SyncedContext, error) {
	if c, ok := s.cache[key]; ok {
		return c, nil
	}
	c := &SyncedContext{Data: map[string]any{}}
	b, err := s.st.Get(store.Context, key)
	if err != nil {
		return nil, err
	}
	if b != nil {
		if err := json.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("stored context %q: %w", key, err)
		}
	}
	s.cache[key] = c
	return c, nil
}

// merge overlays data onto the stored context (top-level keys replace,
// a null value deletes), bumps the version and persists it.
func (s *contextStore) merge(server, session string, data map[string]any) (int64, error) {
	key := contextKey(server, session)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.getLocked(key)
	if err != nil {
		return 0, err
	}
	next := &SyncedContext{Data: maps.Clone(cur.Data), Version: cur.Version + 1}
	for k, v := range data {
		if v == nil {
			delete(next.Data, k)
		} else {
			next.Data[k] = v
		}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return 0, fmt.Errorf("encode context: %w", err)
	}
	if err := s.st.Put(store.Context, key, b); err != nil {
		return 0, fmt.Errorf("save context: %w", err)
	}
	s.cache[key] = next
	return next.Version, nil
}

// get returns a copy of the stored context data and its version.
func (s *contextStore) get(server, session string) (map[string]any, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.getLocked(contextKey(server, session))
	if err != nil {
		return nil, 0, err
	}
	return maps.Clone(c.Data), c.Version, nil
}
