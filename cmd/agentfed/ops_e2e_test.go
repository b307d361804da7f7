package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/store"
	"github.com/agentfed/agentfed/internal/tstest"
)

func TestHealthCommand(t *testing.T) {
	s := serve(t)
	out, errOut, code := agentfed(t, "", "health", "--gateway", s.URL)
	if code != 0 || out != "alive: yes\nready: yes\n  [+]storage ok\n  [+]listening ok\n  [+]peers ok\n" {
		t.Fatalf("health: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = agentfed(t, "", "health", "--json", "--gateway", s.URL)
	if code != 0 || !strings.Contains(out, `"ready": {`) || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("health --json: exit %d, %s", code, out)
	}
	s.Stop(t, syscall.SIGTERM)
	out, errOut, code = agentfed(t, "", "health", "--json", "--gateway", s.URL)
	if code != 1 || !strings.Contains(out, `"code":"GATEWAY_UNREACHABLE"`) || !strings.Contains(errOut, "cannot reach gateway") {
		t.Fatalf("health of a stopped gateway: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A backup taken while the gateway runs restores its state: a gateway
// started on the copy has the same generated serverId.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	s := serveIn(t, dir)
	file := filepath.Join(t.TempDir(), "agentfed.db")
	out, errOut, code := agentfed(t, "", "backup", file, "--gateway", s.URL)
	if code != 0 || !strings.Contains(out, "backed up ") {
		t.Fatalf("backup: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := agentfed(t, "", "backup", file, "--gateway", s.URL); code != 2 || !strings.Contains(errOut, "exists") {
		t.Fatalf("backup over an existing file: exit %d, %s", code, errOut)
	}
	if _, errOut, code := agentfed(t, "", "backup", filepath.Join(t.TempDir(), "x.db"), "--gateway", s.URL, "--token", "wrong"); code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Fatalf("backup with a wrong token: exit %d, %s", code, errOut)
	}
	// Offline, from the storage dir, once the gateway has stopped.
	if _, errOut, code := agentfed(t, "", "backup", filepath.Join(t.TempDir(), "y.db"), "--dir", filepath.Join(dir, "agentfed-data")); code != 1 || !strings.Contains(errOut, "in use by a running agentfed gateway: back it up through the gateway") {
		t.Fatalf("offline backup of a running gateway's dir: exit %d, %s", code, errOut)
	}
	logs := s.Logs.String()
	s.Stop(t, syscall.SIGTERM)
	offline := filepath.Join(t.TempDir(), "offline.db")
	if _, errOut, code := agentfed(t, "", "backup", offline, "--dir", filepath.Join(dir, "agentfed-data")); code != 0 {
		t.Fatalf("offline backup: exit %d, %s", code, errOut)
	}

	restored := t.TempDir()
	os.MkdirAll(filepath.Join(restored, "agentfed-data"), 0o700)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(restored, "agentfed-data", "agentfed.db"), b, 0o600)
	r := serveIn(t, restored)
	id := func(logs string) string {
		_, rest, _ := strings.Cut(logs, "serverId=")
		id, _, _ := strings.Cut(rest, " ")
		return id
	}
	if id(logs) == "" {
		t.Fatalf("the first gateway logged no serverId:\n%s", logs)
	}
	// Ready may be seen before the line naming the serverId is in the logs.
	tstest.WaitFor(t, 10*time.Second, func() error {
		if got := id(r.Logs.String()); got != id(logs) {
			return fmt.Errorf("restored gateway's serverId %q; want %q", got, id(logs))
		}
		return nil
	})
}

// A store written by a newer storage format stops serve at start, with a
// message naming the file, both versions and what to do.
func TestServeRefusesANewerStorageFormat(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "agentfed-data")
	st, err := store.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(store.Meta, "formatVersion", []byte("99")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, errOut, code := agentfedIn(t, dir, "", "serve", "--listen", "127.0.0.1:0")
	for _, want := range []string{"agentfed.db", "storage format version 99 is newer than this agentfed understands (1)", "restore a backup"} {
		if code != 2 || !strings.Contains(errOut, want) {
			t.Fatalf("serve on a newer store: exit %d, %q; want exit 2 saying %q", code, errOut, want)
		}
	}
}
