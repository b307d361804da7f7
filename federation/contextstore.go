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

// contextLimits bound what peers can make a gateway keep of synced
// context. Sizes are of a session's stored JSON.
type contextLimits struct {
	sessionBytes   int // one session
	senderBytes    int // all sessions of one sender
	senderSessions int // sessions of one sender
	totalBytes     int // all sessions of all senders
	totalSessions  int // sessions of all senders
	cacheEntries   int // sessions kept decoded in memory
	cacheBytes     int // their stored size
}

var defaultContextLimits = contextLimits{
	sessionBytes:   256 << 10,
	senderBytes:    8 << 20,
	senderSessions: 10_000,
	totalBytes:     256 << 20,
	totalSessions:  100_000,
	cacheEntries:   4096,
	cacheBytes:     16 << 20,
}

// contextStore keeps synced context per sender server and session in
// storage.dir, so it survives a restart, with a bounded cache in memory.
// Sessions never synced cost nothing: a set of the keys on disk answers
// them without a lookup.
type contextStore struct {
	st     *store.Store
	limits contextLimits

	// writeMu orders merges and prunes, across their disk writes; mu is
	// held only for the maps, never across an fsync, so that relays
	// reading synced context (on a connection's reader) do not wait for
	// one.
	writeMu    sync.Mutex
	mu         sync.Mutex // guards the maps below
	cache      map[string]cachedContext
	cacheBytes int            // stored size of what cache holds
	known      map[string]int // keys stored on disk -> their stored size
	sessions   map[string]int // sender -> number of its keys in known
	senderSize map[string]int // sender -> stored size of its keys
	totalSize  int            // stored size of every key
	// stored is len(known), read without mu: until anything is synced,
	// relays skip the lock (which a merge holds across an fsync).
	stored atomic.Int64
}

// cachedContext is a decoded session and its stored size.
type cachedContext struct {
	*SyncedContext
	size int
}

func newContextStore(st *store.Store) (*contextStore, error) {
	s := newContextAccounts()
	s.st = st
	err := st.ForEach(store.Context, func(key string, v []byte) error {
		s.addKnownLocked(key, len(v))
		return nil
	})
	return s, err
}

// newContextAccounts is a contextStore without storage: its sizes,
// bounds and cache, for a store kept elsewhere (nats_context.go).
func newContextAccounts() *contextStore {
	return &contextStore{limits: defaultContextLimits, cache: map[string]cachedContext{}, known: map[string]int{},
		sessions: map[string]int{}, senderSize: map[string]int{}}
}

// addKnownLocked records that key is stored with size bytes, replacing
// what was recorded of it.
func (s *contextStore) addKnownLocked(key string, size int) {
	server, _, _ := strings.Cut(key, "\x00")
	old, ok := s.known[key]
	if !ok {
		s.sessions[server]++
	}
	s.known[key] = size
	s.senderSize[server] += size - old
	s.totalSize += size - old
	s.stored.Store(int64(len(s.known)))
}

func (s *contextStore) forgetKnownLocked(key string) {
	size, ok := s.known[key]
	if !ok {
		return
	}
	server, _, _ := strings.Cut(key, "\x00")
	delete(s.known, key)
	if s.sessions[server]--; s.sessions[server] <= 0 {
		delete(s.sessions, server)
		delete(s.senderSize, server)
	} else {
		s.senderSize[server] -= size
	}
	s.totalSize -= size
	s.stored.Store(int64(len(s.known)))
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
		return c.SyncedContext, nil
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
	s.cacheLocked(key, c, len(b))
	return c, nil
}

// cacheLocked keeps c decoded, evicting arbitrary entries when full (the
// disk has them all).
func (s *contextStore) cacheLocked(key string, c *SyncedContext, size int) {
	s.uncacheLocked(key)
	for k := range s.cache {
		if len(s.cache) < s.limits.cacheEntries && s.cacheBytes+size <= s.limits.cacheBytes {
			break
		}
		s.uncacheLocked(k)
	}
	s.cache[key] = cachedContext{SyncedContext: c, size: size}
	s.cacheBytes += size
}

func (s *contextStore) uncacheLocked(key string) {
	if c, ok := s.cache[key]; ok {
		delete(s.cache, key)
		s.cacheBytes -= c.size
	}
}

// merge overlays data onto the stored context (top-level keys replace,
// a null value deletes), bumps the version and persists it.
func (s *contextStore) merge(server, session string, data map[string]any) (int64, error) {
	key := contextKey(server, session)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	oldSize, exists := s.known[key]
	if err := s.roomLocked(server, exists); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	cur, err := s.getLocked(key)
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	next := &SyncedContext{Data: overlayContext(cur.Data, data), Version: cur.Version + 1, UpdatedAt: time.Now().UnixMilli()}
	s.mu.Unlock()
	b, err := json.Marshal(next)
	if err != nil {
		return 0, fmt.Errorf("encode context: %w", err)
	}
	if err := s.fits(server, session, len(b), oldSize); err != nil {
		return 0, err // nothing written: the session is as it was
	}
	if err := s.st.PutBatch(store.Context, store.KV{Key: key, Value: b}); err != nil {
		return 0, fmt.Errorf("save context: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addKnownLocked(key, len(b))
	s.cacheLocked(key, next, len(b))
	return next.Version, nil
}

// overlayContext is a copy of cur with data's top-level keys replacing
// its own, a null value deleting one.
func overlayContext(cur, data map[string]any) map[string]any {
	next := maps.Clone(cur)
	if next == nil { // never synced, or stored as null
		next = make(map[string]any, len(data))
	}
	for k, v := range data {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	return next
}

// roomLocked refuses a new session when its sender or the gateway keeps
// as many as allowed.
func (s *contextStore) roomLocked(server string, exists bool) error {
	switch {
	case exists:
		return nil
	case s.sessions[server] >= s.limits.senderSessions:
		return fmt.Errorf("%w: %q already keeps %d synced sessions here; reuse a correlationId", ErrOverloaded, server, s.limits.senderSessions)
	case len(s.known) >= s.limits.totalSessions:
		e := *ErrOverloaded
		e.Message = fmt.Sprintf("%s: this gateway keeps %d synced sessions, its limit; they expire 24 hours after their last sync", ErrOverloaded.Message, s.limits.totalSessions)
		e.Retryable = true
		return &e
	}
	return nil
}

// fits refuses a merge whose result, size bytes replacing oldSize, would
// take the session, its sender or the gateway over their limits. writeMu
// is held: the sizes cannot change meanwhile.
func (s *contextStore) fits(server, session string, size, oldSize int) error {
	s.mu.Lock()
	sender, total := s.senderSize[server]+size-oldSize, s.totalSize+size-oldSize
	s.mu.Unlock()
	switch {
	case size > s.limits.sessionBytes:
		return fmt.Errorf("%w: synced context of session %q would be %d bytes, over the %d-byte limit per session; the session keeps its earlier context: delete keys (null) or use another correlationId",
			ErrTooLarge, cmpOr(session, DefaultSession), size, s.limits.sessionBytes)
	case sender > s.limits.senderBytes:
		return fmt.Errorf("%w: synced context from %q would total %d bytes, over the %d-byte limit per sender; the session keeps its earlier context: delete keys (null) or sessions no longer needed",
			ErrTooLarge, server, sender, s.limits.senderBytes)
	case total > s.limits.totalBytes:
		e := *ErrOverloaded
		e.Message = fmt.Sprintf("%s: this gateway keeps %d bytes of synced context, its limit is %d; sessions expire 24 hours after their last sync", ErrOverloaded.Message, s.totalSize, s.limits.totalBytes)
		e.Retryable = true
		return &e
	}
	return nil
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
		s.forgetKnownLocked(key)
		s.uncacheLocked(key)
	}
}
