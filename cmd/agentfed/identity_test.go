package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

func TestIdentityCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agentfed.yaml")
	storage := filepath.Join(dir, "data")
	cfg := "federation:\n  enabled: true\n  serverId: research-server\nstorage:\n  dir: " + storage + "\n"
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	identity := func() string {
		var out, errOut bytes.Buffer
		if code := run([]string{"identity", "--config", file}, strings.NewReader(""), &out, &errOut); code != exitOK {
			t.Fatalf("agentfed identity exited %d: %s", code, errOut.String())
		}
		return out.String()
	}
	first := identity()
	for _, re := range []string{
		`(?m)^serverId: +research-server$`,
		`(?m)^signingKey: +ed25519:[A-Za-z0-9_-]{43}$`,
		`(?m)^encryptionKey: +x25519:[A-Za-z0-9_-]{43}$`,
		`(?m)^fingerprint: +([0-9a-f]{2}:){15}[0-9a-f]{2}$`,
	} {
		if !regexp.MustCompile(re).MatchString(first) {
			t.Errorf("output does not match %s:\n%s", re, first)
		}
	}
	id, err := federation.LoadIdentity(storage)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first, id.Public().SigningKey) {
		t.Errorf("output %q does not show the key kept in %s", first, storage)
	}
	if again := identity(); again != first {
		t.Errorf("a second run printed another identity:\n%s\nthen\n%s", first, again)
	}
}
