package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Ping reports whether the database is open and readable.
func (s *Store) Ping() error {
	return s.db.View(func(*bolt.Tx) error { return nil })
}

// Backup writes a consistent copy of the whole database to w, from one
// read transaction: writers go on meanwhile, and the copy holds exactly
// the state of the moment it began. sized, if not nil, learns the size of
// the copy before it is written. It returns the bytes written.
func (s *Store) Backup(w io.Writer, sized func(int64)) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		if sized != nil {
			sized(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupDir copies the database of a storage.dir that no gateway is
// using to w. A running gateway holds the database locked; back it up
// through the gateway then.
func BackupDir(dir string, w io.Writer) (int64, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Lstat(path); err != nil {
		return 0, fmt.Errorf("no agentfed database in storage.dir %q: %w", dir, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second, OpenFile: OpenFile})
	if errors.Is(err, berrors.ErrTimeout) {
		return 0, fmt.Errorf("%s is %w: back it up through the gateway (agentfed backup FILE, without --dir)", path, errInUse)
	}
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	s := &Store{db: db}
	return s.Backup(w, nil)
}

// VerifyCopy checks the database file at path as Check does (every record
// readable, bbolt's consistency check) and that it is of FormatVersion.
func VerifyCopy(path string) error {
	rep, err := Check(path)
	if err != nil {
		return fmt.Errorf("the copy does not open as a database: %w", err)
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("the copy is damaged: %s", strings.Join(rep.Problems, "; "))
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second, OpenFile: OpenFile})
	if err != nil {
		return fmt.Errorf("the copy does not open as a database: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(Meta))
		if b == nil {
			return fmt.Errorf("the copy is not an agentfed database (no %s bucket)", Meta)
		}
		if v := string(b.Get([]byte(formatKey))); v != strconv.Itoa(FormatVersion) {
			return fmt.Errorf("the copy has storage format version %.20q, not %d", v, FormatVersion)
		}
		return nil
	})
}
