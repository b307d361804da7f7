package federation

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

// DefaultSession is the session of messages that carry no correlationId.
const DefaultSession = "default"

// SyncedContext is what sync_context stored for one sender and session.
type SyncedContext struct {
	Data      map[string]any `json:"data"`
	Version   int64          `json:"version"`
	UpdatedAt int64          `json:"updatedAt,omitempty"` // Unix ms of the last sync
}

// Bounds on what peers can make a gateway keep.
const (
	maxSessionsPerSender = 10_000 // synced sessions one sender may keep
	maxContextCache      = 4096   // synced contexts kept decoded in memory
)

// contextStore keeps synced context per sender server and session in
// storage.dir, so it survives a restart, with a bounded cache in memory.
// Sessions never synced cost nothing: a set of the keys on disk answers
// them without a lookup.
type contextStore struct {
	st *store.Store

	// writeMu orders merges and prunes, across their disk writes; mu is
	// held only for the maps, never across an fsync, so that relays
	// reading synced context (on a connection's reader) do not wait for
	// one.
	writeMu  sync.Mutex
	mu       sync.Mutex // guards the maps below
	cache    map[string]*SyncedContext
	known    map[string]struct{} // keys stored on disk
	sessions map[string]int      // sender -> number of its keys in known
	// stored is len(known), read without mu: until anything is synced,
	// relays skip the lock (which a merge holds across an fsync).
	stored atomic.Int64
}

func newContextStore(st *store.Store) (*contextStore, error) {
	s := &contextStore{st: st, cache: map[string]*SyncedContext{}, known: map[string]struct{}{}, sessions: map[string]int{}}
	err := st.ForEach(store.Context, func(key string, _ []byte) error {
		s.known[key] = struct{}{}
		server, _, _ := strings.Cut(key, "\x00")
		s.sessions[server]++
		return nil
	})
	s.stored.Store(int64(len(s.known)))
	return s, err
}

func contextKey(server, session string) string {
	if session == "" {
		session = DefaultSession
	}
	return server + "\x00" + session
}

// getLocked returns the stored context (empty for a session never
// synced), loading it from storage into the bounded cache.
func (s *contextStore) getLocked(key string) (*SyncedContext, error) {
	if c, ok := s.cache[key]; ok {
		return c, nil
	}
	c := &SyncedContext{Data: map[string]any{}}
	if _, ok := s.known[key]; !ok {
		return c, nil // never synced: nothing to load, nothing to cache
	}
	b, err := s.st.Get(store.Context, key)
	if err != nil {
		return nil, err
	}
	if b != nil {
		if err := json.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("stored context %q: %w", key, err)
		}
	}
	s.cacheLocked(key, c)
	return c, nil
}

// cacheLocked keeps c decoded, evicting an arbitrary entry when full (the
// disk has them all).
func (s *contextStore) cacheLocked(key string, c *SyncedContext) {
	if _, ok := s.cache[key]; !ok && len(s.cache) >= maxContextCache {
		for k := range s.cache {
			delete(s.cache, k)
			break
		}
	}
	s.cache[key] = c
}

// merge overlays data onto the stored context (top-level keys replace,
// a null value deletes), bumps the version and persists it.
func (s *contextStore) merge(server, session string, data map[string]any) (int64, error) {
	key := contextKey(server, session)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	_, exists := s.known[key]
	if !exists && s.sessions[server] >= maxSessionsPerSender {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: %q already keeps %d synced sessions here; reuse a correlationId", ErrOverloaded, server, maxSessionsPerSender)
	}
	cur, err := s.getLocked(key)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	next := &SyncedContext{Data: maps.Clone(cur.Data), Version: cur.Version + 1, UpdatedAt: time.Now().UnixMilli()}
	s.mu.Unlock()
	if next.Data == nil { // stored as null
		next.Data = make(map[string]any, len(data))
	}
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
	if err := s.st.PutBatch(store.Context, store.KV{Key: key, Value: b}); err != nil {
		return 0, fmt.Errorf("save context: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !exists {
		s.known[key] = struct{}{}
		s.sessions[server]++
		s.stored.Store(int64(len(s.known)))
	}
	s.cacheLocked(key, next)
	return next.Version, nil
}

// get returns a copy of the stored context data and its version: nil and
// 0 for a session never synced.
func (s *contextStore) get(server, session string) (map[string]any, int64, error) {
	if s.stored.Load() == 0 {
		return nil, 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.getLocked(contextKey(server, session))
	if err != nil {
		return nil, 0, err
	}
	return maps.Clone(c.Data), c.Version, nil
}

// prune forgets sessions not synced since cutoff, so a sender's session
// count (capped) and the store do not only ever grow.
func (s *contextStore) prune(cutoff time.Time) {
	s.writeMu.Lock() // a merge in flight must not have its key forgotten
	defer s.writeMu.Unlock()
	old, _ := s.st.DeleteIf(store.Context, func(_ string, v []byte) bool {
		var c SyncedContext
		return json.Unmarshal(v, &c) == nil && c.UpdatedAt < cutoff.UnixMilli()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range old {
		if _, ok := s.known[key]; ok {
			delete(s.known, key)
			server, _, _ := strings.Cut(key, "\x00")
			s.sessions[server]--
			s.stored.Store(int64(len(s.known)))
		}
		delete(s.cache, key)
	}
}
