package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// TestStorageDir: client commands read storage.dir alone, whatever else
// the file holds, including ${VAR}s that are unset where they run.
func TestStorageDir(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, body, want string }{
		{"set", "federation: {peers: [{token: '${AGENTFED_TEST_UNSET}'}]}\nstorage: {dir: /var/lib/agentfed}\n", "/var/lib/agentfed"},
		{"default", "gateway: {listen: '127.0.0.1:1'}\n", federation.DefaultStorage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := StorageDir(path)
			if err != nil || got != tt.want {
				t.Fatalf("StorageDir = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := StorageDir(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("StorageDir of a missing file: no error")
	}
}
