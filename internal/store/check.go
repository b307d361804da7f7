package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged matches a *DamagedError.
var ErrDamaged = errors.New("store: damaged")

// errInUse: another process (a running gateway) holds the file's lock.
var errInUse = errors.New("in use by a running agentfed gateway")

// maxProblems bounds the problems a check reports.
const maxProblems = 20

// DamagedError says that a store file cannot be trusted, why, and what the
// operator can do. Open returns it instead of starting on a damaged file,
// so that nothing more is lost.
type DamagedError struct {
	Path     string
	Problems []string // at most maxProblems
}

func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

func (e *DamagedError) Error() string {
	dir := filepath.Dir(e.Path)
	what := strings.Join(e.Problems, "; ")
	if e.empty() {
		return fmt.Sprintf("storage file %s is empty (0 bytes): its data was lost (a truncated copy or a failed disk), "+
			"and starting on it would silently replace every queued message with an empty store. "+
			"Restore it from a backup; if no gateway has ever run with storage.dir %s, delete the file", e.Path, dir)
	}
	return fmt.Sprintf("storage file %s is damaged: %s. agentfed will not start on it, so that nothing more is lost: "+
		"stop every gateway using it, keep a copy, run \"agentfed store salvage --dir %s NEW.db\" to copy every readable "+
		"record into NEW.db, and replace %s with NEW.db (or restore it from a backup); \"agentfed store check --dir %s\" "+
		"lists the problems", e.Path, what, dir, FileName, dir)
}

func (e *DamagedError) empty() bool { return len(e.Problems) == 1 && e.Problems[0] == problemEmpty }

const problemEmpty = "the file is empty (0 bytes)"

// Report is what Check found in a store file.
type Report struct {
	Path     string
	Records  map[string]int // readable records per bucket
	Problems []string       // empty when the file is sound; at most maxProblems
}

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Check opens the store file at path read-only, reads every record of
// every bucket and runs bbolt's consistency check. It fails (without a
// report) when the file is missing, cannot be opened, or a gateway holds
// it; a damaged file is a report with problems, not an error.
func Check(path string) (*Report, error) {
	db, rep, err := openChecked(path, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if db != nil {
		defer db.Close()
	}
	return rep, err
}

// openChecked opens path with opts and inspects it. A file bbolt refuses
// or panics on is a report with problems and no db; a file that cannot be
// opened at all (missing, no permission, a symbolic link) is an error.
func openChecked(path string, opts *bolt.Options) (*bolt.DB, *Report, error) {
	rep := &Report{Path: path, Records: map[string]int{}}
	f, err := OpenFile(path, os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly:
		// a new store: bbolt creates it
	case err != nil:
		return nil, nil, err
	default:
		fi, err := f.Stat()
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		if fi.Size() == 0 {
			rep.problem(problemEmpty)
			return nil, rep, nil
		}
	}
	if opts.OpenFile == nil {
		opts.OpenFile = OpenFile
	}
	var db *bolt.DB
	err = guarded(func() (err error) {
		db, err = bolt.Open(path, 0o600, opts)
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, nil, fmt.Errorf("%s is %w; stop it first (each gateway needs its own storage.dir)", path, errInUse)
	case err != nil: // the file opened above: what bbolt refuses is its content
		rep.problem("bbolt cannot open it: %v", err)
		return nil, rep, nil
	}
	inspect(db, rep)
	return db, rep, nil
}

// inspect reads every record of db and, when that worked, runs bbolt's
// consistency check.
func inspect(db *bolt.DB, rep *Report) {
	if fi, err := os.Stat(rep.Path); err == nil {
		var size int64
		guarded(func() error { return db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }) })
		if fi.Size() < size {
			rep.problem("the file is %d bytes but its pages reach %d bytes: it was truncated", fi.Size(), size)
		}
	}
	names, err := bucketNames(db)
	if err != nil {
		rep.problem("the list of buckets is unreadable: %v", err)
		return
	}
	for _, name := range names {
		n := 0
		for _, p := range readBucket(db, name, func(_, _ []byte) error { n++; return nil }) {
			rep.problem("%s", p)
		}
		rep.Records[name] = n
	}
	if len(rep.Problems) > 0 {
		return // bbolt's check reads pages on a goroutine of its own, where a fault would crash
	}
	guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				rep.problem("%v", err)
			}
			return nil
		})
	})
}

// guarded runs fn on a goroutine where a memory fault (a page past the end
// of a truncated, memory-mapped file) is a panic, and returns a panic in
// fn (bbolt panics on a damaged page) as an error.
func guarded(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("reading it failed: %v", r)
			}
		}()
		done <- fn()
	}()
	return <-done
}

func bucketNames(db *bolt.DB) ([]string, error) {
	var names []string
	err := guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, string(name))
				return nil
			})
		})
	})
	return names, err
}

// readBucket calls fn for every record of bucket name it can read, in key
// order, then, if a damaged page stopped it, backwards from the last key
// down to the damage (which stops that pass too), and describes what it
// could not read. k and v are
// valid only during the call.
func readBucket(db *bolt.DB, name string, fn func(k, v []byte) error) []string {
	var last []byte // the last key read going forward
	err := guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(name)).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if v == nil {
					continue // a nested bucket: agentfed keeps none
				}
				if err := fn(k, v); err != nil {
					return err
				}
				last = append(last[:0], k...)
			}
			return nil
		})
	})
	if err == nil {
		return nil
	}
	var first []byte // the lowest key read going backward
	guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte(name)).Cursor()
			for k, v := c.Last(); k != nil && (last == nil || bytes.Compare(k, last) > 0); k, v = c.Prev() {
				if v == nil {
					continue
				}
				if err := fn(k, v); err != nil {
					return err
				}
				first = append(first[:0], k...)
			}
			return nil
		})
	})
	where := fmt.Sprintf("the records after key %s", quoteKey(last))
	switch {
	case last == nil && first == nil:
		where = "every record"
	case last == nil:
		where = fmt.Sprintf("the records before key %s", quoteKey(first))
	case first != nil:
		where += fmt.Sprintf(" and before key %s", quoteKey(first))
	}
	return []string{fmt.Sprintf("bucket %q: %s: unreadable (%v)", name, where, err)}
}

// quoteKey quotes a key for a message, bounded.
func quoteKey(k []byte) string {
	if len(k) > 64 {
		return fmt.Sprintf("%q...", k[:64])
	}
	return fmt.Sprintf("%q", k)
}

// SalvageReport is what Salvage copied and what it could not.
type SalvageReport struct {
	Report        // of the damaged file: records per bucket are those copied
	Out    string // the new file
}

// Salvage copies every record it can read from the store file at path into
// a new store file out (which must not exist), and reports what it could
// not read. path is opened read-only and not changed.
func Salvage(path, out string) (*SalvageReport, error) {
	if _, err := os.Stat(out); err == nil {
		return nil, fmt.Errorf("%s already exists; salvage writes a new file", out)
	}
	src, rep, err := openChecked(path, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("nothing can be salvaged from %s: %s; restore it from a backup", path, strings.Join(rep.Problems, "; "))
	}
	defer src.Close()
	dst, err := bolt.Open(out, 0o600, &bolt.Options{Timeout: time.Second, OpenFile: OpenFile})
	if err != nil {
		return nil, err
	}
	names, _ := bucketNames(src)
	res := &SalvageReport{Report: Report{Path: path, Records: map[string]int{}, Problems: rep.Problems}, Out: out}
	for _, name := range names { // Open creates the buckets missing here
		var kvs []KV
		readBucket(src, name, func(k, v []byte) error {
			kvs = append(kvs, KV{Key: string(k), Value: bytes.Clone(v)})
			return nil
		})
		if err := writeBucket(dst, name, kvs); err != nil {
			dst.Close()
			return nil, fmt.Errorf("write %s: %w", out, err)
		}
		res.Records[name] = len(kvs)
	}
	return res, dst.Close()
}

// writeBucket creates bucket name in db and puts kvs, a thousand per
// transaction.
func writeBucket(db *bolt.DB, name string, kvs []KV) error {
	for start := 0; start == 0 || start < len(kvs); start += 1000 {
		batch := kvs[start:min(start+1000, len(kvs))]
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			for _, kv := range batch {
				if err := b.Put([]byte(kv.Key), kv.Value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
