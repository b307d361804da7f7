//go:build unix

package federation_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// TestStorageRefusesUnsafeFiles: a gateway does not start on a storage.dir
// that others may write to, nor write or read through a symbolic link
// planted where its audit log, database or identity key belongs; the error
// names the path and what to do.
func TestStorageRefusesUnsafeFiles(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, dir, target string)
		want  []string
	}{
		{"world-writable dir", func(t *testing.T, dir, _ string) { chmod(t, dir, 0o777) }, []string{"has mode 0777", "chmod 700"}},
		{"group-writable dir", func(t *testing.T, dir, _ string) { chmod(t, dir, 0o770) }, []string{"has mode 0770", "chmod 700"}},
		{"linked audit log", func(t *testing.T, dir, target string) { symlink(t, target, filepath.Join(dir, "audit.log")) }, []string{"audit.log is a symbolic link"}},
		{"linked database", func(t *testing.T, dir, target string) { symlink(t, target, filepath.Join(dir, "agentfed.db")) }, []string{"agentfed.db is a symbolic link"}},
		{"linked identity", func(t *testing.T, dir, target string) {
			symlink(t, target, filepath.Join(dir, federation.IdentityFile))
		}, []string{"identity.key is a symbolic link"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newConfig(t, "careful", "")
			target := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, cfg.Storage.Dir, target)
			cfg.ApplyDefaults()
			n, err := federation.New(cfg, federation.Options{})
			if err == nil {
				n.Shutdown(t.Context())
				t.Fatalf("New accepted %s", tt.name)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), cfg.Storage.Dir) {
				t.Errorf("error %q does not name %s", err, cfg.Storage.Dir)
			}
			if b, _ := os.ReadFile(target); string(b) != "precious\n" {
				t.Errorf("the link's target was changed: %q", b)
			}
		})
	}
	t.Run("private dir", func(t *testing.T) {
		cfg := newConfig(t, "careful", "")
		chmod(t, cfg.Storage.Dir, 0o750)
		start(t, cfg, listen(t), nil)
	})
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
