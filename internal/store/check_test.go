package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

const records = 2000

// filled returns the dir of a closed store with records outbox entries of
// about 200 bytes, spread over many pages.
func filled(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	kvs := make([]KV, records)
	for i := range kvs {
		kvs[i] = KV{Key: fmt.Sprintf("msg-%05d", i), Value: []byte(strings.Repeat("x", 200))}
	}
	if err := s.PutBatch(Outbox, kvs...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ServerID(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// leafPage returns the id of an outbox leaf page in the middle of the
// file, found with bbolt's page inspection.
func leafPage(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var leaves []int
	db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return nil
			}
			if p.Type == "leaf" {
				leaves = append(leaves, id)
			}
		}
	})
	if len(leaves) < 10 {
		t.Fatalf("only %d leaf pages", len(leaves))
	}
	return leaves[len(leaves)/2]
}

func damage(t *testing.T, path string, how string) {
	t.Helper()
	switch how {
	case "empty":
		must(t, os.Truncate(path, 0))
	case "half": // of its pages: the file goes on past them (margin.go)
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		must(t, err)
		var size int64
		db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
		must(t, db.Close())
		must(t, os.Truncate(path, size/2))
	case "page":
		id := leafPage(t, path)
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		must(t, err)
		garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", os.Getpagesize()/4))
		_, err = f.WriteAt(garbage, int64(id*os.Getpagesize()))
		must(t, err)
		must(t, f.Close())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesDamagedStore: a zero-byte, half-truncated or
// page-damaged store file is refused with an error that names the file
// and says what to do; it neither panics nor starts an empty store.
func TestOpenRefusesDamagedStore(t *testing.T) {
	for _, how := range []string{"empty", "half", "page"} {
		t.Run(how, func(t *testing.T) {
			dir := filled(t)
			path := filepath.Join(dir, FileName)
			damage(t, path, how)
			s, err := Open(dir)
			if err == nil {
				s.Close()
				t.Fatal("Open started on a damaged store")
			}
			var de *DamagedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open: %v; want a *DamagedError", err)
			}
			msg := err.Error()
			for _, want := range []string{path, "backup"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if how != "empty" && !strings.Contains(msg, "agentfed store salvage") {
				t.Errorf("error %q does not say how to salvage", msg)
			}
			if fi, _ := os.Stat(path); how == "empty" && fi.Size() != 0 {
				t.Errorf("Open wrote %d bytes into the empty file", fi.Size())
			}
		})
	}
}

// TestCheckAndSalvage: Check finds no problem in a sound store and every
// record; in a damaged one it reports the damage; Salvage copies every
// readable record into a new file that opens cleanly, and says what was
// lost.
func TestCheckAndSalvage(t *testing.T) {
	sound := filepath.Join(filled(t), FileName)
	rep, err := Check(sound)
	if err != nil || len(rep.Problems) > 0 || rep.Records[Outbox] != records || rep.Records[Meta] != 1 {
		t.Fatalf("Check of a sound store: %v %+v", err, rep)
	}
	for _, tt := range []struct {
		how      string
		min, max int // records salvaged
	}{
		// bbolt writes a changed tree's pages at free places, often its
		// end: a bucket whose root was in the lost half is lost whole.
		{"half", 0, records - 1},
		{"page", records - 100, records - 1}, // one leaf page of ~18 records is lost
	} {
		t.Run(tt.how, func(t *testing.T) {
			path := filepath.Join(filled(t), FileName)
			damage(t, path, tt.how)
			rep, err := Check(path)
			if err != nil || len(rep.Problems) == 0 {
				t.Fatalf("Check of a damaged store: %v %+v", err, rep)
			}
			t.Logf("check: %v", rep.Problems)
			outDir := t.TempDir()
			out := filepath.Join(outDir, FileName)
			res, err := Salvage(path, out)
			if err != nil {
				t.Fatal(err)
			}
			if n := res.Records[Outbox]; n < tt.min || n > tt.max || len(res.Problems) == 0 {
				t.Fatalf("salvaged %d outbox records (want %d-%d), problems %v", n, tt.min, tt.max, res.Problems)
			}
			s, err := Open(outDir)
			if err != nil {
				t.Fatalf("the salvaged store does not open: %v", err)
			}
			defer s.Close()
			n := 0
			s.ForEach(Outbox, func(string, []byte) error { n++; return nil })
			if n != res.Records[Outbox] {
				t.Errorf("salvaged file holds %d records, report says %d", n, res.Records[Outbox])
			}
			if _, err := Salvage(path, out); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("salvage over an existing file: %v", err)
			}
		})
	}
}
