package store

import bolt "go.etcd.io/bbolt"

// Scan calls fn for the keys of bucket that sort after the key after (all
// keys when after is empty), in key order, until fn returns false. It
// seeks to after, so reading one page of a large bucket costs that page.
// The value is valid only during the call.
func (s *Store) Scan(bucket, after string, fn func(key string, value []byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucket)).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if !fn(string(k), v) {
				return nil
			}
		}
		return nil
	})
}
