// Package store keeps a gateway's state across restarts in one bbolt file
// under storage.dir: the generated server id, dynamic peers and synced
// context. Every write is a committed, fsynced bbolt transaction, so a crash
// leaves either the old or the new value, never half of one. Open reads the
// whole file first and refuses a damaged one (DamagedError); Check and
// Salvage inspect and rescue one. Concurrent writers share commits
// (PutBatch); writes nobody waits on at once can be gathered for a while
// first (Gather). While the file grows, the group commit keeps it written
// some way past its data, so that commits write into allocated blocks
// (margin.go). A Store is safe for concurrent use.
package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets.
const (
	Meta      = "meta"
	Peers     = "peers"
	Context   = "context"
	Outbox    = "outbox"    // durable messages this gateway sends
	Processed = "processed" // durable messages this gateway has handled, with replies
	Replay    = "replay"    // per-sender replay floors that outlive a restart
	A2ATasks  = "a2atasks"  // tasks of the agents served over A2A
	A2ASeen   = "a2aseen"   // A2A message ids already run, for deduplication
	MeshKeys  = "meshkeys"  // signing keys of gateways first seen across the mesh
)

// FileName is the database file inside storage.dir.
const FileName = "agentfed.db"

// Store is an open state database.
type Store struct {
	db *bolt.DB

	mu         sync.Mutex // guards queue and committing
	queue      []*batchReq
	committing bool // a caller is committing the queue

	// The written margin past the data (margin.go); used only inside
	// the group commit's write transactions.
	margin  *os.File // nil: no margin
	written int64    // the file is written up to here
}

type batchReq struct {
	bucket string
	kvs    []KV
	done   chan error
}

// Open creates dir if needed and opens its database. It fails at once, with
// a message that says so, when another gateway holds the same directory, when
// others may write to the directory, or when the database is a symbolic
// link (see PrepareDir and OpenFile). It reads every record and runs
// bbolt's consistency check first, and refuses a damaged, truncated or
// emptied file with a *DamagedError that names it and says what to do,
// instead of panicking or starting afresh.
func Open(dir string) (*Store, error) {
	if err := PrepareDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	db, rep, err := openChecked(path, &bolt.Options{Timeout: time.Second, OpenFile: OpenFile})
	if errors.Is(err, errInUse) {
		return nil, fmt.Errorf("storage.dir %q is in use by another agentfed gateway; give each gateway its own storage.dir", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if len(rep.Problems) > 0 {
		if db != nil {
			db.Close()
		}
		return nil, &DamagedError{Path: path, Problems: rep.Problems}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{Meta, Peers, Context, Outbox, Processed, Replay, A2ATasks, A2ASeen, MeshKeys} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	return &Store{db: db, margin: openMargin(path)}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.margin != nil {
		s.margin.Close()
	}
	return err
}

// Get returns a copy of the value of key in bucket, or nil.
func (s *Store) Get(bucket, key string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte(bucket)).Get([]byte(key)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// Put stores value under key in bucket.
func (s *Store) Put(bucket, key string, value []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).Put([]byte(key), value)
	})
}

// KV is one key and value for PutBatch.
type KV struct {
	Key   string
	Value []byte // nil deletes Key
}

// PutBatch stores (or deletes, for a nil Value) kvs in bucket, and
// returns when they are on disk. Concurrent callers share commits (group
// commit): while one transaction is being written and fsynced, the writes
// that arrive queue up, and the next transaction takes them all at once,
// so many writers pay for one fsync without any fixed delay.
func (s *Store) PutBatch(bucket string, kvs ...KV) error {
	req := &batchReq{bucket: bucket, kvs: kvs, done: make(chan error, 1)}
	s.submit(req)
	return <-req.done
}

// submit queues reqs for the next commit, and commits the queue unless
// another caller is doing so already. Each req's done then says how its
// write went: a request that fails does not fail the others.
func (s *Store) submit(reqs ...*batchReq) {
	s.mu.Lock()
	s.queue = append(s.queue, reqs...)
	if s.committing {
		s.mu.Unlock()
		return // the committing caller will include them
	}
	s.committing = true
	for len(s.queue) > 0 {
		group := s.queue
		s.queue = nil
		s.mu.Unlock()
		s.commit(group)
		s.mu.Lock()
	}
	s.committing = false
	s.mu.Unlock()
}

// commit writes a group in one transaction. If it fails, each request is
// retried alone, so one bad request cannot fail the others.
func (s *Store) commit(group []*batchReq) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		s.topUp(tx.Size())
		for _, r := range group {
			if err := apply(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, r := range group {
			r.done <- err
		}
		return
	}
	for _, r := range group {
		r.done <- s.db.Update(func(tx *bolt.Tx) error { return apply(tx, r) })
	}
}

// timeOrdered are the buckets whose new keys sort after the keys before
// them: durable message ids begin with their creation time (UUIDv7), and a
// handled message's key is its sender's id and then its own. bbolt splits
// a page it fills at FillPercent; at its default (half a page) every page of
// such a bucket stays half empty, and a group commit writes twice the pages
// it needs (and fsyncs twice the bytes). Full pages suit appends.
var timeOrdered = map[string]bool{Outbox: true, Processed: true}

func apply(tx *bolt.Tx, r *batchReq) error {
	b := tx.Bucket([]byte(r.bucket))
	if b == nil {
		return fmt.Errorf("no bucket %q", r.bucket)
	}
	if timeOrdered[r.bucket] {
		b.FillPercent = 1
	}
	for _, kv := range r.kvs {
		var err error
		if kv.Value == nil {
			err = b.Delete([]byte(kv.Key))
		} else {
			err = b.Put([]byte(kv.Key), kv.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteIf deletes, in one group-committed batch, the entries of bucket
// for which expired reports true, and returns their keys. It is how the
// gateway forgets old records (handled messages, delivered outbox entries,
// synced sessions).
func (s *Store) DeleteIf(bucket string, expired func(key string, value []byte) bool) ([]string, error) {
	var keys []string
	var kvs []KV
	err := s.ForEach(bucket, func(k string, v []byte) error {
		if expired(k, v) {
			keys = append(keys, k)
			kvs = append(kvs, KV{Key: k})
		}
		return nil
	})
	if err != nil || len(kvs) == 0 {
		return nil, err
	}
	if err := s.PutBatch(bucket, kvs...); err != nil {
		return nil, err
	}
	return keys, nil
}

// Delete removes key from bucket.
func (s *Store) Delete(bucket, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).Delete([]byte(key))
	})
}

// ForEach calls fn for every key of bucket in key order. The value is valid
// only during the call.
func (s *Store) ForEach(bucket string, fn func(key string, value []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error { return fn(string(k), v) })
	})
}

// ServerID returns the generated server id, creating and saving one
// ("agentfed-" and 8 hex digits) on first use.
func (s *Store) ServerID() (string, error) {
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(Meta))
		if v := b.Get([]byte("serverId")); v != nil {
			id = string(v)
			return nil
		}
		var r [4]byte
		rand.Read(r[:])
		id = "agentfed-" + hex.EncodeToString(r[:])
		return b.Put([]byte("serverId"), []byte(id))
	})
	return id, err
}
