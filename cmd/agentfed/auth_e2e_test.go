package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// cliIn runs the CLI in dir with env added to an environment without
// AGENTFED_TOKEN or AGENTFED_CONFIG, and returns stdout, stderr and the
// exit code.
func cliIn(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "AGENTFED_TOKEN=") || strings.HasPrefix(kv, "AGENTFED_CONFIG=")
	})
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run agentfed %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestServeRequiresGeneratedOperatorToken: a bare serve generates an
// operator token into storage.dir (0600), keeps it across restarts and
// refuses operators without it; the CLI finds it by itself in
// ./agentfed-data or through --config / $AGENTFED_CONFIG.
func TestServeRequiresGeneratedOperatorToken(t *testing.T) {
	dir := t.TempDir()
	s := serveIn(t, dir)
	path := filepath.Join(dir, "agentfed-data", federation.OperatorTokenFile)
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode() != 0o600 || s.token == "" {
		t.Fatalf("operator token file %s: %v, mode %v, token %q; want a 0600 file with a token", path, fi.Mode(), err, s.token)
	}
	ctx := context.Background()
	if _, err := gateway.Dial(ctx, s.URL, nil); gateway.CodeOf(err) != gateway.CodeUnauthorized {
		t.Fatalf("operator without a token: %v; want UNAUTHORIZED", err)
	}
	if out, errOut, code := cliIn(t, dir, nil, "peers", "--gateway", s.URL); code != 0 || !strings.Contains(out, "0 peers") {
		t.Fatalf("CLI without flags next to ./agentfed-data: exit %d %s %s", code, out, errOut)
	}
	elsewhere := t.TempDir()
	if _, errOut, code := cliIn(t, elsewhere, nil, "peers", "--gateway", s.URL); code != 1 || !strings.Contains(errOut, "operator token") {
		t.Fatalf("CLI with no way to find the token: exit %d %q; want exit 1 saying how to pass it", code, errOut)
	}
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf("storage: {dir: %q}\n", filepath.Join(dir, "agentfed-data")))
	if _, errOut, code := cliIn(t, elsewhere, nil, "peers", "--gateway", s.URL, "--config", cfg); code != 0 {
		t.Fatalf("CLI with --config: exit %d %s", code, errOut)
	}
	if _, errOut, code := cliIn(t, elsewhere, []string{"AGENTFED_CONFIG=" + cfg}, "peers", "--gateway", s.URL); code != 0 {
		t.Fatalf("CLI with $AGENTFED_CONFIG: exit %d %s", code, errOut)
	}

	// Restarted, the gateway keeps its token.
	if err := s.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	again := serveIn(t, dir)
	if again.token != s.token {
		t.Fatal("the operator token changed across a restart")
	}
	if _, errOut, code := cliIn(t, dir, nil, "peers", "--gateway", again.URL); code != 0 {
		t.Fatalf("CLI after a restart: exit %d %s", code, errOut)
	}
}

// TestServeRefusesSymlinkedOperatorToken: the token file is never read
// or written through a symbolic link.
func TestServeRefusesSymlinkedOperatorToken(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "agentfed-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, "agentfed-data", federation.OperatorTokenFile)); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := cliIn(t, dir, nil, "serve", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "symbolic link") {
		t.Fatalf("serve with a symlinked operator.token: exit %d %q; want exit 1 naming the link", code, errOut)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Fatal("serve wrote through the symbolic link")
	}
}

// TestSIGHUPRevokesAndKeepsListen: removing a previousToken and sending
// SIGHUP closes the peer connection that used it, keeps the one with the
// current token, and (with --listen) warns about nothing.
func TestSIGHUPRevokesAndKeepsListen(t *testing.T) {
	const body = `
federation: {enabled: true, serverId: hup-server, requireAuth: true}
gateway:
  auth:
    peers:
      - serverId: peer-a
        token: a-new%s
agents: [{id: echo}]
storage: {dir: %q}
`
	storage := t.TempDir()
	path := writeFile(t, "hup.yaml", fmt.Sprintf(body, "\n        previousToken: a-old", storage))
	s := serve(t, "--config", path)
	dial := func(token string) *gateway.Client {
		c, err := gateway.Dial(context.Background(), s.URL, &gateway.DialOptions{Role: gateway.RolePeer, Token: token,
			Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack, InstanceID: "peer-a"}})
		if err != nil {
			t.Fatalf("peer with token %s: %v", token, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	old, cur := dial("a-old"), dial("a-new")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(body, "", storage)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Cmd.Process.Signal(syscall.SIGHUP)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-old.Done():
	case <-ctx.Done():
		t.Fatalf("the connection with the removed previousToken is still open after SIGHUP\n%s", s.Logs)
	}
	if err := cur.Call(ctx, federation.MethodHealth, nil, nil); err != nil {
		t.Fatalf("the connection with the current token after SIGHUP: %v", err)
	}
	if err := s.Stop(t, syscall.SIGTERM); err != nil { // all its logs are in
		t.Fatal(err)
	}
	if !strings.Contains(s.Logs.String(), "configuration reloaded") {
		t.Fatalf("no reload logged:\n%s", s.Logs)
	}
	if strings.Contains(s.Logs.String(), "need a restart") {
		t.Fatalf("a reload with --listen warned of a restart:\n%s", s.Logs)
	}
}
