package store

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCreateFile: the first writer creates the file, 0600; a second finds
// it there, is told so, and changes nothing.
func TestCreateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if created, err := CreateFile(path, []byte("first")); err != nil || !created {
		t.Fatalf("first CreateFile: created %v, %v", created, err)
	}
	if created, err := CreateFile(path, []byte("second")); err != nil || created {
		t.Fatalf("second CreateFile: created %v, %v; want false, nil", created, err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "first" {
		t.Fatalf("file holds %q, %v; want the first writer's", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".key-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
