package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// TestGrowingStoreCommitsIntoWrittenBlocks: as a store grows through group
// commits, its file is written (no hole) past bbolt's high-water mark, so
// the next commits write into blocks the file system has already
// allocated; and the margin changes nothing that is read back, checked or
// opened again. bbolt alone grows the file with ftruncate, leaving a hole
// right after its pages.
func TestGrowingStoreCommitsIntoWrittenBlocks(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 400)
	for g := range 100 { // 100 group commits of 32 writes, about 1.3 MB
		var wg sync.WaitGroup
		for i := range 32 {
			key := fmt.Sprintf("sender-%016d", g*32+i)
			wg.Go(func() {
				if err := s.PutBatch(Outbox, KV{Key: key, Value: value}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var hwm int64
		s.db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil })
		// A top-up leaves at least half the margin; the commit that made
		// it may have used some since.
		if hole := firstHole(t, filepath.Join(dir, FileName)); hole < hwm+marginFor(hwm)/4 {
			t.Fatalf("after %d commits: the file's first hole is at %d, %d bytes past its data (%d bytes); want at least %d written past it",
				g+1, hole, hole-hwm, hwm, marginFor(hwm)/4)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(filepath.Join(dir, FileName))
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check after the margin: %v, %v", err, rep.Problems)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	s.ForEach(Outbox, func(string, []byte) error { n++; return nil })
	if n != 3200 {
		t.Fatalf("%d entries after reopening; want 3200", n)
	}
}

// firstHole is the offset of the first hole in the file at path (its size
// if it has none).
func firstHole(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil {
		t.Fatal(err)
	}
	return off
}
