package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/config"
	"github.com/agentfed/agentfed/internal/tstest"
)

// bin is the agentfed binary built once for the end-to-end tests.
var bin string

func TestMain(m *testing.M) {
	var dir string
	var err error
	if bin, dir, err = tstest.BuildAgentfed("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one `agentfed serve` process.
type server struct {
	*tstest.Gateway
	token string // the operator token serve generated, or "" when the config sets one
}

// operatorTokens maps a server's host:port to the operator token it generated,
// which agentfed passes to client commands that name that --gateway, as
// the CLI would find it itself when run with the server's --config.
var operatorTokens sync.Map

// serve starts `agentfed serve` with args and waits until it logs its
// listening address.
func serve(t *testing.T, args ...string) *server {
	t.Helper()
	return serveIn(t, t.TempDir(), args...)
}

// serveIn is serve in the working directory dir.
func serveIn(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	s := &server{Gateway: tstest.Serve(t, bin, dir, nil, append([]string{"--listen", "127.0.0.1:0"}, args...)...)}
	s.token = generatedToken(t, dir, args)
	if s.token != "" {
		operatorTokens.Store(s.Addr, s.token)
	}
	return s
}

// generatedToken reads the operator token a serve run in dir with args
// keeps in its storage.dir, or returns "" when it has none.
func generatedToken(t *testing.T, dir string, args []string) string {
	t.Helper()
	file := filepath.Join(dir, "agentfed.yaml") // serve's default, when it exists
	if _, err := os.Stat(file); err != nil {
		file = ""
	}
	if i := slices.Index(args, "--config"); i >= 0 {
		file = args[i+1]
	}
	storage := federation.DefaultStorage
	if file != "" {
		var err error
		if storage, err = config.StorageDir(file); err != nil {
			t.Fatal(err)
		}
	}
	if !filepath.IsAbs(storage) {
		storage = filepath.Join(dir, storage)
	}
	token, err := federation.ReadOperatorToken(storage)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return token
}

// agentfed runs the CLI and returns stdout, stderr and the exit code.
func agentfed(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return agentfedIn(t, "", stdin, args...)
}

// agentfedIn is agentfed in the working directory dir.
func agentfedIn(t *testing.T, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	if i := slices.Index(args, "--gateway"); i >= 0 && !slices.Contains(args, "--token") && os.Getenv("AGENTFED_TOKEN") == "" {
		_, addr, _ := strings.Cut(args[i+1], "://")
		if token, ok := operatorTokens.Load(addr); ok {
			cmd.Env = append(os.Environ(), "AGENTFED_TOKEN="+token.(string))
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run agentfed %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func peerServer(t *testing.T, serverID, agentID, caps, token string) *server {
	cfg := fmt.Sprintf(`
federation:
  enabled: true
  serverId: %q
  requireAuth: true
gateway:
  auth:
    peers:
      - serverId: "main-agent-server"
        token: "${MAIN_TOKEN}"
agents:
  - id: %q
    capabilities: [%s]
    description: "echo agent of %s"
    handler: {type: echo}
storage:
  dir: %q
`, serverID, agentID, caps, serverID, t.TempDir())
	t.Setenv("MAIN_TOKEN", token)
	return serve(t, "--config", writeFile(t, serverID+".yaml", cfg))
}

func TestEndToEndThreeProcesses(t *testing.T) {
	research := peerServer(t, "research-server", "agent-research-01", "web-search, summarization", "research-secret")
	data := peerServer(t, "data-server", "agent-data-01", "data-analysis", "data-secret")
	mainCfg := fmt.Sprintf(`
federation:
  enabled: true
  serverId: main-agent-server
  defaultTimeoutMs: 5000
  peers:
    - id: research-agent
      name: Research Specialist
      url: %q
      token: "${RESEARCH_TOKEN}"
      agentId: agent-research-01
      capabilities: [web-search, summarization]
    - id: data-agent
      name: Data Analysis Agent
      url: %q
      token: "${DATA_TOKEN}"
      agentId: agent-data-01
      capabilities: [data-analysis]
gateway:
  auth:
    operatorToken: "${AGENTFED_TOKEN}"
storage:
  dir: %q
`, research.URL, data.URL, t.TempDir())
	t.Setenv("RESEARCH_TOKEN", "research-secret")
	t.Setenv("DATA_TOKEN", "data-secret")
	t.Setenv("AGENTFED_TOKEN", "operator-secret")
	main := serve(t, "--config", writeFile(t, "main.yaml", mainCfg))

	toolJSON := func(action string) (map[string]any, []any, int) {
		t.Helper()
		out, errOut, code := agentfed(t, "", "tool", "--gateway", main.URL, action)
		var v any
		if code == 0 || out != "" {
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("tool %s printed non-JSON (exit %d): %q %s", action, code, out, errOut)
			}
		}
		m, _ := v.(map[string]any)
		a, _ := v.([]any)
		return m, a, code
	}
	steps := []struct {
		action string
		check  func(m map[string]any, a []any) bool
	}{
		{`{"action":"list_peers"}`, func(m map[string]any, _ []any) bool {
			return m["totalPeers"] == 2.0 && !strings.Contains(fmt.Sprint(m), "secret")
		}},
		{`{"action":"send","peerId":"research-agent","message":"hello","correlationId":"c-1"}`, func(m map[string]any, _ []any) bool {
			r, _ := m["response"].(map[string]any)
			return m["status"] == "ok" && r["content"] == "hello" && r["correlationId"] == "c-1" && r["fromServer"] == "research-server"
		}},
		{`{"action":"delegate","requiredCapabilities":["data-analysis"],"task":"crunch"}`, func(m map[string]any, _ []any) bool {
			return m["status"] == "ok" && m["peerId"] == "data-agent"
		}},
		{`{"action":"broadcast","message":"all hands"}`, func(_ map[string]any, a []any) bool {
			return len(a) == 2 && a[0].(map[string]any)["status"] == "ok" && a[1].(map[string]any)["status"] == "ok"
		}},
		{`{"action":"sync_context","peerId":"data-agent","correlationId":"s-1","syncData":{"phase":"analysis"}}`, func(m map[string]any, _ []any) bool {
			return m["status"] == "ok" && m["version"] == 1.0
		}},
		{`{"action":"send","peerId":"data-agent","message":"go","correlationId":"s-1"}`, func(m map[string]any, _ []any) bool {
			ctx, _ := m["response"].(map[string]any)["context"].(map[string]any)
			return ctx["phase"] == "analysis"
		}},
		{`{"action":"query_capabilities","peerId":"research-agent"}`, func(m map[string]any, _ []any) bool {
			return fmt.Sprint(m["capabilities"]) == "[web-search summarization]" && m["description"] == "echo agent of research-server"
		}},
		{fmt.Sprintf(`{"action":"register_peer","peerId":"dyn","peerName":"Dynamic","peerUrl":%q,"peerAgentId":"agent-data-01","peerToken":"data-secret"}`, data.URL), func(m map[string]any, _ []any) bool {
			return m["success"] == true
		}},
		{`{"action":"unregister_peer","peerId":"dyn"}`, func(m map[string]any, _ []any) bool { return m["success"] == true }},
	}
	for _, st := range steps {
		m, a, code := toolJSON(st.action)
		if code != 0 || !st.check(m, a) {
			t.Fatalf("agentfed tool %s: exit %d, result %v %v", st.action, code, m, a)
		}
	}

	// The friendly subcommands read the same stdin/flags and print text.
	out, errOut, code := agentfed(t, "", "send", "--gateway", main.URL, "research-agent", "plain words")
	if code != 0 || !strings.Contains(out, "research-agent answered") || !strings.Contains(out, "plain words") {
		t.Fatalf("agentfed send: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = agentfed(t, `{"action":"list_peers"}`, "tool", "--gateway", main.URL, "-")
	if code != 0 || !strings.Contains(out, `"totalPeers": 2`) {
		t.Fatalf("agentfed tool - (stdin): exit %d %s", code, out)
	}

	// A wrong operator token is refused; the process exits 1 with the code.
	_, errOut, code = agentfed(t, "", "peers", "--gateway", main.URL, "--token", "wrong")
	if code != 1 || !strings.Contains(errOut, "UNAUTHORIZED") {
		t.Fatalf("wrong operator token: exit %d %q", code, errOut)
	}

	// kill -9 a peer: a clear error, quickly, and the rest keeps working.
	research.Cmd.Process.Kill()
	<-research.Done
	m, _, code := toolJSON(`{"action":"send","peerId":"research-agent","message":"anyone?"}`)
	if code != 1 || m["status"] != "error" || m["error"].(map[string]any)["code"] != "PEER_UNAVAILABLE" {
		t.Fatalf("send to killed peer: exit %d %v", code, m)
	}
	if m, _, code := toolJSON(`{"action":"send","peerId":"data-agent","message":"still here"}`); code != 0 || m["status"] != "ok" {
		t.Fatalf("send to live peer after another died: exit %d %v", code, m)
	}

	// SIGTERM: a clean shutdown, exit 0.
	if err := main.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("main exited with %v after SIGTERM\n%s", err, main.Logs)
	}
	if strings.Contains(main.Logs.String(), "secret") {
		t.Fatalf("a token appeared in the logs:\n%s", main.Logs)
	}
}

func TestServeWithoutConfig(t *testing.T) {
	s := serve(t)
	out, errOut, code := agentfed(t, "", "tool", "--gateway", s.URL, `{"action":"list_peers"}`)
	if code != 0 || !strings.Contains(out, `"totalPeers": 0`) {
		t.Fatalf("list_peers on a default gateway: exit %d %s %s", code, out, errOut)
	}
	// The default gateway hosts an echo agent; reach it through a second
	// default gateway registered as a dynamic peer.
	s2 := serve(t)
	reg := fmt.Sprintf(`{"action":"register_peer","peerId":"other","peerName":"Other","peerUrl":%q,"peerAgentId":"echo"}`, s2.URL)
	if _, errOut, code := agentfed(t, "", "tool", "--gateway", s.URL, reg); code != 0 {
		t.Fatalf("register: %s", errOut)
	}
	out, errOut, code = agentfed(t, "", "send", "--gateway", s.URL, "other", "ping")
	if code != 0 || !strings.Contains(out, "ping") {
		t.Fatalf("send to the default echo agent: exit %d %s %s", code, out, errOut)
	}
	if err := s.Stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
}

func TestConfigErrorsExitTwo(t *testing.T) {
	bad := writeFile(t, "bad.yaml", `
federation:
  enabled: true
  requireAuth: true
  peers:
    - id: a
      name: A
      url: http://127.0.0.1:1
      agentId: x
    - id: a
      name: B
      urll: ws://127.0.0.1:2
      agentId: y
      timeoutMs: -5
`)
	for _, args := range [][]string{{"config", "check", bad}, {"serve", "--config", bad}} {
		_, errOut, code := agentfed(t, "", args...)
		if code != 2 {
			t.Fatalf("%v: exit %d; want 2\n%s", args, code, errOut)
		}
		for _, want := range []string{"federation.peers[0].url", "federation.peers[1].id", "federation.peers[1].urll", "federation.peers[1].timeoutMs", "federation.peers[0].token"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%v: output does not name %s:\n%s", args, want, errOut)
			}
		}
	}
	missing := writeFile(t, "env.yaml", "federation:\n  peers:\n    - {id: a, name: A, url: \"ws://127.0.0.1:1\", agentId: x, token: \"${AGENTFED_TEST_UNSET_VAR}\"}\n")
	if _, errOut, code := agentfed(t, "", "config", "check", missing); code != 2 || !strings.Contains(errOut, "AGENTFED_TEST_UNSET_VAR") {
		t.Fatalf("unset variable: exit %d %s", code, errOut)
	}
}

func TestInitWritesAValidConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agentfed.yaml")
	if _, errOut, code := agentfed(t, "", "init", path); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	if out, errOut, code := agentfed(t, "", "config", "check", path); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("config check of init's file: exit %d %s %s", code, out, errOut)
	}
	if _, errOut, code := agentfed(t, "", "init", path); code != 2 || !strings.Contains(errOut, "--force") {
		t.Fatalf("init over an existing file: exit %d %s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"send", "only-peer"},
		{"delegate", "task-without-capability"},
		{"tool", "{not json"},
		{"serve", "--log-level", "loud"},
		{"bench", "--concurrency", "0"},
		{"bench", "--duration", "-1s"},
		{"bench", "--only", "warp-speed"},
		{"frobnicate"},
	} {
		if _, errOut, code := agentfed(t, "", args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with a message", args, code, errOut)
		}
	}
	_, errOut, code := agentfed(t, "", "peers", "--gateway", "ws://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "cannot reach gateway") {
		t.Fatalf("unreachable gateway: exit %d %q", code, errOut)
	}
}

func TestDemo(t *testing.T) {
	out, errOut, code := agentfed(t, "", "demo")
	if code != 0 || !strings.Contains(out, "all eight actions worked") {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	_ = io.Discard
}
