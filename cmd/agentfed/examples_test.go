package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The systemd unit in examples/ passes systemd-analyze verify without a
// warning, and its ExecStart is a command line agentfed accepts.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../examples/agentfed.service")
	if err != nil {
		t.Fatal(err)
	}
	var exec0 string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec0 = v
		}
	}
	args := strings.Fields(exec0)
	if len(args) < 2 || args[0] != "/usr/local/bin/agentfed" || args[1] != "serve" {
		t.Fatalf("ExecStart=%q; want /usr/local/bin/agentfed serve ...", exec0)
	}
	// Every flag is one serve knows (cobra refuses unknown ones before --help).
	if out, err := exec.Command(bin, append(args[1:], "--help")...).CombinedOutput(); err != nil {
		t.Fatalf("ExecStart's arguments: %v\n%s", err, out)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	// verify checks that ExecStart's binary exists: point it at the one built.
	path := filepath.Join(t.TempDir(), "agentfed.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/agentfed", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
