package store

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// FormatVersion is the layout of the database this agentfed reads and
// writes: its buckets and the encoding of their values. It is raised when
// a release changes them; a store with a higher version was written by a
// newer agentfed and is refused rather than misread.
const FormatVersion = 1

// formatKey holds the store's format version in the Meta bucket.
const formatKey = "formatVersion"

// CheckFormat compares the store's recorded format version with
// FormatVersion. A store without one (new, or written before versions
// were recorded) is stamped with FormatVersion. A store with another
// version is refused with an error that says what to do.
func (s *Store) CheckFormat() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(Meta))
		v := b.Get([]byte(formatKey))
		if v == nil {
			return b.Put([]byte(formatKey), []byte(strconv.Itoa(FormatVersion)))
		}
		got, err := strconv.Atoi(string(v))
		switch {
		case err != nil || got < 1:
			return fmt.Errorf("%s: storage format version %.20q is not a number; the file is damaged: restore a backup (see 'agentfed backup')", s.db.Path(), v)
		case got > FormatVersion:
			return fmt.Errorf("%s: storage format version %d is newer than this agentfed understands (%d): run the agentfed release that wrote it, or a newer one, or restore a backup made with this release",
				s.db.Path(), got, FormatVersion)
		case got < FormatVersion:
			// No older format exists yet; an upgrade step goes here.
			return fmt.Errorf("%s: storage format version %d is older than %d and cannot be upgraded by this agentfed", s.db.Path(), got, FormatVersion)
		}
		return nil
	})
}

// Format returns the store's recorded format version, 0 when none is.
func (s *Store) Format() (int, error) {
	var v int
	err := s.db.View(func(tx *bolt.Tx) error {
		v, _ = strconv.Atoi(string(tx.Bucket([]byte(Meta)).Get([]byte(formatKey))))
		return nil
	})
	return v, err
}
