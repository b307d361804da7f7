package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/agent"
)

// TestOpenClawDeviceKey: the device key is generated once into storage.dir
// with mode 0600 and read back as the same identity; a key others may read,
// or a file that holds no Ed25519 key, is refused with what to do.
func TestOpenClawDeviceKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := agent.LoadOpenClawDevice(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, agent.OpenClawDeviceFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o; want 0600", path, fi.Mode().Perm())
	}
	again, err := agent.LoadOpenClawDevice(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != first.ID() || again.PublicKey() != first.PublicKey() || len(first.ID()) != 64 {
		t.Errorf("second load gave device %s, first %s; want the same 64-hex-digit id", again.ID(), first.ID())
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.LoadOpenClawDevice(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key others may read: err = %v; want a refusal saying chmod 600", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.LoadOpenClawDevice(dir); err == nil || !strings.Contains(err.Error(), "delete it to generate a new device identity") {
		t.Errorf("a damaged key: err = %v; want a refusal saying what to do", err)
	}
}
