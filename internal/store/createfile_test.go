package store

import (
	"os"
	"path/filepath"
	"strings"
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

// TestReadSecret: a key others may read, or one larger than its limit, is
// refused with what to do; a link in its place is not followed.
func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if _, err := CreateFile(path, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadSecret(path, "test key", 10); err != nil || string(b) != "0123456789" {
		t.Fatalf("ReadSecret = %q, %v", b, err)
	}
	if _, err := ReadSecret(path, "test key", 9); err == nil {
		t.Error("a key over its limit was read")
	}
	os.Chmod(path, 0o644)
	if _, err := ReadSecret(path, "test key", 10); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a 0644 key: %v; want a refusal saying chmod 600", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(path, link)
	if _, err := ReadSecret(link, "test key", 10); err == nil {
		t.Error("a link to a key was followed")
	}
}
