package federation

// Synced context over NATS: what a site's gateways receive by
// sync_context lives in the JetStream KV bucket AF_CTX_<serverId>, one key
// per sender and session, so every gateway of the site (same serverId,
// one queue group) sees the same context and it survives their restarts.
// Only the receiving site's gateways write their bucket: the sender sends
// its sync as a request, as over WebSocket, and the receiver merges it by
// compare-and-swap (Update with the revision it read), so the grants are
// checked where they always are. The version a sync reports is the key's
// KV revision.
//
// Each gateway watches its bucket: the watched state says which sessions
// exist and how large they are (the bounds per sender and per site are
// checked against it, as contextstore.go's are against the disk), and
// which revision is current, so a relay in a session never synced costs no
// request and a cached session is read again only when it changed.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	natsContextBucket  = "AF_CTX"
	natsCASAttempts    = 16              // merges of one session that lost the race, before giving up
	natsKVTimeout      = 5 * time.Second // for one synced-context read or merge
	natsKVMarkerTTL    = time.Minute     // how long an expired key's marker tells watchers
	natsBucketHeadroom = 2               // MaxBytes is this many times the site's limit: JetStream's own backstop
)

// natsBucketToken is id as a KV bucket name or key token: letters, digits
// and '-' as they are, any other byte as _XX (hex), so that distinct ids
// stay distinct.
func natsBucketToken(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
			b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// natsUntoken reverses natsBucketToken, refusing any token it would not
// have written.
func natsUntoken(tok string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] != '_' {
			b.WriteByte(tok[i])
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		c, err := hex.DecodeString(tok[i+1 : i+3])
		if err != nil {
			return "", false
		}
		b.WriteByte(c[0])
		i += 2
	}
	id := b.String()
	return id, natsBucketToken(id) == tok // one token per id: no other spelling of a key
}

func natsContextBucketName(serverID string) string {
	return natsContextBucket + "_" + natsBucketToken(serverID)
}

// natsContextKey is the KV key of sender server's session.
func natsContextKey(server, session string) string {
	return natsBucketToken(server) + "." + natsBucketToken(cmpOr(session, DefaultSession))
}

// natsContextKeyOf is the contextKey of a KV key, false when malformed.
func natsContextKeyOf(key string) (string, bool) {
	s, sess, ok := strings.Cut(key, ".")
	if !ok {
		return "", false
	}
	server, ok1 := natsUntoken(s)
	session, ok2 := natsUntoken(sess)
	return contextKey(server, session), ok1 && ok2 && validIdent(server) && validIdent(session)
}

// decodeNATSContext is a session's value as stored in the bucket, refused
// over limit bytes (whoever may write the bucket may have changed its
// configuration too) or when it is not the JSON of one.
func decodeNATSContext(data []byte, limit int) (*natsStoredContext, error) {
	if len(data) > limit {
		return nil, fmt.Errorf("is %d bytes, over the %d-byte limit per session", len(data), limit)
	}
	var v natsStoredContext
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, errors.New("is not the JSON of a synced context")
	}
	return &v, nil
}

// natsStoredContext is a session's value in the bucket: its version is
// the revision, not stored.
type natsStoredContext struct {
	Data      map[string]any `json:"data"`
	UpdatedAt int64          `json:"updatedAt"` // Unix ms of the last sync
}

// natsContexts is the site's synced context in its KV bucket.
type natsContexts struct {
	kv jetstream.KeyValue
	w  jetstream.KeyWatcher
	// acct keeps the sessions' sizes per sender and a bounded cache of
	// decoded sessions, as the watch reports the bucket (its st is nil);
	// its mu also guards rev.
	acct *contextStore
	rev  map[string]uint64 // contextKey -> current revision, as watched
	done chan struct{}     // closed when the watch has ended

	// merging orders this gateway's merges of one session, so that they
	// race only with the site's other gateways, not with each other.
	merging sessionLocks
}

// sessionLocks are mutexes by session key, each kept while in use.
type sessionLocks struct {
	mu    sync.Mutex // guards locks
	locks map[string]*sessionLock
}

type sessionLock struct {
	sync.Mutex
	users int // holders and waiters; guarded by sessionLocks.mu
}

// lock locks key's mutex and returns its unlock.
func (s *sessionLocks) lock(key string) (unlock func()) {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*sessionLock{}
	}
	l := s.locks[key]
	if l == nil {
		l = &sessionLock{}
		s.locks[key] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
}

// startNATSContexts opens the gateway's context bucket (making it, and
// every granted gateway's, when it embeds the server) and watches it.
func (n *Node) startNATSContexts(l *natsLink) error {
	ctx, cancel := context.WithTimeout(l.ctx, natsSetupTimeout)
	defer cancel()
	servers := []string{n.serverID}
	if n.cfg.NATS.Embedded != nil {
		for _, u := range NATSPermissions(&n.cfg) {
			servers = append(servers, u.ServerID)
		}
	}
	var kv jetstream.KeyValue
	for _, s := range servers {
		_, b, err := openNATSBucket(ctx, l, n.natsContextConfig(s), s != n.serverID || n.cfg.NATS.Embedded != nil)
		if err != nil {
			return err
		}
		if s == n.serverID {
			kv = b
		}
	}
	c := &natsContexts{kv: kv, acct: newContextAccounts(), rev: map[string]uint64{}, done: make(chan struct{})}
	var err error
	if c.w, err = watchNATSBucket(ctx, l.ctx, kv); err != nil {
		return fmt.Errorf("watch JetStream KV bucket %s: %w", natsContextBucketName(n.serverID), err)
	}
	ready := make(chan struct{})
	go c.watch(ready)
	select {
	case <-ready:
	case <-ctx.Done():
		c.stop()
		return fmt.Errorf("JetStream KV bucket %s: its keys did not arrive within %v", natsContextBucketName(n.serverID), natsSetupTimeout)
	}
	l.contexts = c
	return nil
}

// natsContextConfig is gateway server's bucket. Sessions expire a day
// after their last sync, as in storage.dir; JetStream refuses values over
// the per-session limit and a bucket far over the site's.
func (n *Node) natsContextConfig(server string) jetstream.KeyValueConfig {
	lim := defaultContextLimits
	return jetstream.KeyValueConfig{Bucket: natsContextBucketName(server), Description: "agentfed synced context of " + server,
		MaxValueSize: int32(lim.sessionBytes), MaxBytes: int64(lim.totalBytes) * natsBucketHeadroom, TTL: processedKeep,
		LimitMarkerTTL: natsKVMarkerTTL, Storage: jetstream.FileStorage, Replicas: n.cfg.NATS.replicas()}
}

// watch keeps c's view of the bucket until the watch stops; ready is
// closed once the keys the bucket had at the start have arrived.
func (c *natsContexts) watch(ready chan struct{}) {
	defer close(c.done)
	for e := range c.w.Updates() {
		if e == nil {
			close(ready)
			continue
		}
		key, ok := natsContextKeyOf(e.Key())
		if !ok {
			continue
		}
		c.seen(key, e.Revision(), e.Operation() == jetstream.KeyValuePut, len(e.Value()))
	}
}

// seen records revision rev of key: put with size bytes, or removed
// (deleted, or expired). An older revision than one recorded (a merge of
// this gateway records its own at once) changes nothing.
func (c *natsContexts) seen(key string, rev uint64, put bool, size int) {
	a := c.acct
	a.mu.Lock()
	defer a.mu.Unlock()
	if rev < c.rev[key] {
		return
	}
	if _, known := c.rev[key]; put && !known && len(c.rev) >= a.limits.totalSessions {
		return // more keys than the site may hold: someone else writes the bucket
	}
	if put {
		a.addKnownLocked(key, size)
		c.rev[key] = rev
		return
	}
	a.forgetKnownLocked(key)
	a.uncacheLocked(key)
	delete(c.rev, key)
}

func (c *natsContexts) sessionLimit() int {
	c.acct.mu.Lock()
	defer c.acct.mu.Unlock()
	return c.acct.limits.sessionBytes
}

func (c *natsContexts) stop() {
	_ = c.w.Stop()
	<-c.done
}

// merge overlays data onto the session's context by compare-and-swap,
// and returns the new revision. A merge that another gateway of the site
// beat is done again on what that one wrote, up to natsCASAttempts times.
func (c *natsContexts) merge(ctx context.Context, server, session string, data map[string]any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, natsKVTimeout)
	defer cancel()
	k := natsContextKey(server, session)
	defer c.merging.lock(k)()
	for range natsCASAttempts {
		var cur natsStoredContext
		var rev uint64
		var oldSize int
		e, err := c.kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound): // never synced, or expired
		case err != nil:
			return 0, err
		default:
			// A stored value this gateway could not have written is
			// replaced by this sync rather than block the session.
			if v, err := decodeNATSContext(e.Value(), c.sessionLimit()); err == nil {
				cur = *v
			}
			rev, oldSize = e.Revision(), len(e.Value())
		}
		b, err := json.Marshal(natsStoredContext{Data: overlayContext(cur.Data, data), UpdatedAt: time.Now().UnixMilli()})
		if err != nil {
			return 0, fmt.Errorf("encode context: %w", err)
		}
		c.acct.mu.Lock()
		// A session is kept once tracked: a key put past the limit by
		// another client is in the bucket but not kept, so a sync into it
		// needs room as a new session would.
		_, tracked := c.rev[contextKey(server, session)]
		err = c.acct.roomLocked(server, rev != 0 && tracked)
		c.acct.mu.Unlock()
		if err == nil {
			err = c.acct.fits(server, session, len(b), oldSize)
		}
		if err != nil {
			return 0, err // nothing written: the session is as it was
		}
		var next uint64
		if rev == 0 {
			next, err = c.kv.Create(ctx, k, b)
		} else {
			next, err = c.kv.Update(ctx, k, b, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another gateway merged first: merge onto its result
		}
		if err != nil {
			return 0, err
		}
		c.seen(contextKey(server, session), next, true, len(b))
		return int64(next), nil
	}
	e := *ErrOverloaded
	e.Message = fmt.Sprintf("%s: session %q of %q changed %d times while this sync was merged into it; send it again",
		ErrOverloaded.Message, cmpOr(session, DefaultSession), server, natsCASAttempts)
	e.Retryable = true
	return 0, &e
}

// get returns a copy of the session's context data and its revision: nil
// and 0 for a session never synced (asking nobody).
func (c *natsContexts) get(ctx context.Context, server, session string) (map[string]any, int64, error) {
	a := c.acct
	if a.stored.Load() == 0 {
		return nil, 0, nil // the site has no synced context: relays skip the lock
	}
	key := contextKey(server, session)
	a.mu.Lock()
	rev, ok := c.rev[key]
	if cached, hit := a.cache[key]; ok && hit && uint64(cached.Version) >= rev {
		defer a.mu.Unlock()
		return maps.Clone(cached.Data), cached.Version, nil
	}
	a.mu.Unlock()
	if !ok {
		return nil, 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, natsKVTimeout)
	defer cancel()
	e, err := c.kv.Get(ctx, natsContextKey(server, session))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil // expired meanwhile
	}
	if err != nil {
		return nil, 0, err
	}
	v, err := decodeNATSContext(e.Value(), c.sessionLimit())
	if err != nil {
		return nil, 0, fmt.Errorf("stored context %s %w; a sync into the session replaces it", quoteBounded(e.Key()), err)
	}
	sc := &SyncedContext{Data: v.Data, Version: int64(e.Revision()), UpdatedAt: v.UpdatedAt}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, still := c.rev[key]; still {
		a.cacheLocked(key, sc, len(e.Value()))
	}
	return maps.Clone(sc.Data), sc.Version, nil
}

// mergeSynced stores a sync from server: in the site's KV bucket over
// NATS, else in storage.dir.
func (n *Node) mergeSynced(ctx context.Context, server, session string, data map[string]any) (int64, error) {
	if c := n.sharedContexts; c != nil {
		return c.merge(ctx, server, session, data)
	}
	return n.contexts.merge(server, session, data)
}

// syncedContext is the context server synced into session, and its
// version. Its errors are ErrStorage, naming where the context is kept.
func (n *Node) syncedContext(ctx context.Context, server, session string) (map[string]any, int64, error) {
	if c := n.sharedContexts; c != nil {
		data, version, err := c.get(ctx, server, session)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: gateway %q could not read the session's synced context from JetStream KV bucket %s: %v; the sender retries",
				ErrStorage, n.serverID, natsContextBucketName(n.serverID), err)
		}
		return data, version, nil
	}
	data, version, err := n.contexts.get(server, session)
	if err != nil {
		return nil, 0, n.storageError("read the session's synced context", err)
	}
	return data, version, nil
}
