package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A backup taken while writers commit is a whole database holding a
// prefix of their writes; a copy cut short is refused.
func TestBackupWhileWriting(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckFormat(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			s.PutBatch(Outbox, KV{Key: fmt.Sprintf("m%04d", i), Value: bytes.Repeat([]byte("x"), 512)})
		}
	})
	var buf bytes.Buffer
	var announced int64
	n, err := s.Backup(&buf, func(size int64) { announced = size })
	wg.Wait()
	if err != nil || n != int64(buf.Len()) || n != announced {
		t.Fatalf("Backup: %d bytes (announced %d, buffered %d), %v", n, announced, buf.Len(), err)
	}
	dir := t.TempDir()
	whole, cut := filepath.Join(dir, "whole.db"), filepath.Join(dir, "cut.db")
	os.WriteFile(whole, buf.Bytes(), 0o600)
	os.WriteFile(cut, buf.Bytes()[:buf.Len()/2], 0o600)
	if err := VerifyCopy(whole); err != nil {
		t.Fatalf("the whole copy: %v", err)
	}
	if err := VerifyCopy(cut); err == nil || !strings.Contains(err.Error(), "the copy") {
		t.Fatalf("a copy cut in half: %v; want it refused", err)
	}
}
