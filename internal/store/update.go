package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// errNoWrite rolls back an Update that has nothing to write: a commit
// would fsync for nothing.
var errNoWrite = errors.New("store: nothing to write")

// Update reads keys of bucket and writes what fn makes of their values, in
// one transaction: nothing can change them in between. fn gets the values
// in the order of keys, nil for a key with none; they are valid only during
// the call. It returns the writes (a nil Value deletes); when fn fails, or
// returns none, nothing is written. Unlike PutBatch it does not share its
// commit with concurrent writers.
func (s *Store) Update(bucket string, keys []string, fn func(values [][]byte) ([]KV, error)) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return fmt.Errorf("no bucket %q", bucket)
		}
		values := make([][]byte, len(keys))
		for i, k := range keys {
			values[i] = b.Get([]byte(k))
		}
		kvs, err := fn(values)
		if err == nil && len(kvs) == 0 {
			return errNoWrite
		}
		if err != nil {
			return err
		}
		return apply(tx, &batchReq{bucket: bucket, kvs: kvs})
	})
	if errors.Is(err, errNoWrite) {
		return nil
	}
	return err
}
