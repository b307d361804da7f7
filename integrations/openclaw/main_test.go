// Package openclaw_test proves agentfed against the real OpenClaw: a pinned
// openclaw gateway (from npm, run on a pinned Node 24) whose model is a
// scripted server on loopback, and real agentfed gateways around it.
//
// The tests need AGENTFED_NODE24 (a Node 24 binary) and AGENTFED_OPENCLAW
// (openclaw's openclaw.mjs); .ci/openclaw.sh installs both and prints them:
//
//	eval "$(bash .ci/openclaw.sh)" && go test ./integrations/openclaw/
//
// Without them the tests skip, except under CI=true, where they fail.
package openclaw_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// bin is the agentfed binary, built once.
var bin string

func TestMain(m *testing.M) {
	var dir string
	var err error
	if bin, dir, err = tstest.BuildAgentfed("../../cmd/agentfed"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	oc.stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tools are the interop tools' paths, from the environment.
type tools struct{ node, openclaw string }

// needOpenClaw returns the Node 24 and openclaw the tests run, skipping the
// test when they are not installed (failing it under CI=true).
func needOpenClaw(t *testing.T) tools {
	t.Helper()
	tl := tools{node: os.Getenv("AGENTFED_NODE24"), openclaw: os.Getenv("AGENTFED_OPENCLAW")}
	if tl.node != "" && tl.openclaw != "" {
		return tl
	}
	msg := "AGENTFED_NODE24 and AGENTFED_OPENCLAW are not set; install the pinned Node 24 and openclaw with: eval \"$(bash .ci/openclaw.sh)\""
	if os.Getenv("CI") == "true" {
		t.Fatal("CI must run the OpenClaw interop tests: " + msg)
	}
	t.Skip(msg)
	return tl
}

// pluginDir is this directory: the agentfed OpenClaw plugin.
func pluginDir(t *testing.T) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// openClaw is the one OpenClaw gateway of the test binary, started by the
// first test that needs it (start-up takes 15-20 s) and stopped by TestMain.
type openClaw struct {
	once sync.Once
	err  error

	tools     tools
	model     *model
	cmd       *exec.Cmd
	exited    chan struct{}
	url       string // ws://127.0.0.1:port
	token     string // its gateway.auth.token
	state     string // its state directory, removed at stop
	log       *bytes.Buffer
	logMu     sync.Mutex // guards log
	tmpBefore tmpState

	// pluginGateway is where the agentfed plugin inside OpenClaw finds its
	// agentfed gateway; tests start that gateway on this address.
	pluginGateway string
}

// opToken is every agentfed gateway's operator token in these tests, and
// the token the plugin inside OpenClaw presents.
var opToken = randomHex(16)

var oc openClaw

// get starts OpenClaw once and returns it, or fails t.
func (o *openClaw) get(t *testing.T) *openClaw {
	t.Helper()
	tl := needOpenClaw(t)
	o.once.Do(func() { o.err = o.start(tl, pluginDir(t)) })
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

const openClawConfig = `{
  "gateway": {"mode": "local", "port": %d, "bind": "loopback", "auth": {"mode": "token", "token": %q},
    "trustedProxies": ["127.0.0.1"]},
  "logging": {"file": %q},
  "models": {"mode": "replace", "catalogRefresh": {"enabled": false},
    "providers": {"fakellm": {"baseUrl": %q, "apiKey": "any", "api": "openai-completions",
      "models": [{"id": "fake-model", "name": "Fake", "reasoning": false, "input": ["text"],
        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}, "contextWindow": 128000, "maxTokens": 4096}]}}},
  "tools": {"toolSearch": false},
  "agents": {"defaults": {"model": {"primary": "fakellm/fake-model"}, "workspace": %q, "heartbeat": {"every": "0m"}}},
  "plugins": {"load": {"paths": [%q]},
    "entries": {"agentfed": {"enabled": true, "config": {"gatewayUrl": %q, "token": %q, "timeoutMs": 30000}}}}
}`

func (o *openClaw) start(tl tools, plugin string) error {
	o.tools = tl
	o.tmpBefore = snapshotTmp()
	var err error
	if o.state, err = os.MkdirTemp("", "agentfed-openclaw-state-"); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	if o.pluginGateway, err = freeAddr(); err != nil {
		return err
	}
	_, portStr, _ := net.SplitHostPort(addr)
	var port int
	fmt.Sscan(portStr, &port)
	o.url, o.token = "ws://"+addr, randomHex(16)
	o.model = startModel() // before OpenClaw: it retries a failing model for minutes
	cfg := fmt.Sprintf(openClawConfig, port, o.token, filepath.Join(o.state, "openclaw.log"),
		o.model.srv.URL+"/v1", filepath.Join(o.state, "workspace"), plugin, "ws://"+o.pluginGateway, opToken)
	cfgPath := filepath.Join(o.state, "openclaw.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	o.cmd = exec.Command(tl.node, tl.openclaw, "gateway", "run")
	dieWithTest(o.cmd)
	o.cmd.Env = append(os.Environ(),
		"HOME="+o.state, "OPENCLAW_HOME="+o.state, "OPENCLAW_STATE_DIR="+o.state,
		"OPENCLAW_CONFIG_PATH="+cfgPath, "TMPDIR="+o.state, "OPENCLAW_SKIP_CHANNELS=1")
	o.log = &bytes.Buffer{}
	out, err := o.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	o.cmd.Stderr = o.cmd.Stdout
	if err := o.cmd.Start(); err != nil {
		return err
	}
	o.exited = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			o.logMu.Lock()
			if o.log.Len() < 1<<20 {
				o.log.WriteString(sc.Text() + "\n")
			}
			o.logMu.Unlock()
		}
		o.cmd.Wait()
		close(o.exited)
	}()
	return o.waitReady(90 * time.Second)
}

// waitReady polls connect + health until OpenClaw answers.
func (o *openClaw) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-o.exited:
			return fmt.Errorf("openclaw gateway exited during start-up:\n%s", o.logs())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := gateway.Dial(ctx, o.url, &gateway.DialOptions{Token: o.token, Scopes: []string{"operator.read"}})
		if err == nil {
			err = c.Call(ctx, "health", nil, nil)
			c.Close()
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("openclaw gateway not ready within %v: %v\n%s", timeout, last, o.logs())
}

func (o *openClaw) logs() string {
	o.logMu.Lock()
	defer o.logMu.Unlock()
	return o.log.String()
}

// stop ends OpenClaw and removes what it left behind.
func (o *openClaw) stop() {
	if o.cmd != nil && o.cmd.Process != nil {
		o.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-o.exited:
		case <-time.After(15 * time.Second):
			o.cmd.Process.Kill()
			<-o.exited
		}
	}
	if o.model != nil {
		o.model.srv.CloseClientConnections()
		o.model.srv.Close()
	}
	if o.state != "" {
		os.RemoveAll(o.state)
	}
	cleanTmp(o.tmpBefore)
}

// tmpState is what OpenClaw's fixed /tmp paths held before the test run:
// OpenClaw creates /tmp/openclaw and lock files under
// /tmp/openclaw-state-locks-<uid>/ whatever TMPDIR says.
type tmpState struct {
	openclawDir bool
	locksDir    bool
	locks       map[string]bool
}

func locksDir() string { return fmt.Sprintf("/tmp/openclaw-state-locks-%d", os.Getuid()) }

func snapshotTmp() tmpState {
	s := tmpState{locks: map[string]bool{}}
	_, err := os.Stat("/tmp/openclaw")
	s.openclawDir = err == nil
	entries, err := os.ReadDir(locksDir())
	s.locksDir = err == nil
	for _, e := range entries {
		s.locks[e.Name()] = true
	}
	return s
}

// cleanTmp removes what appeared in OpenClaw's fixed /tmp paths since s.
func cleanTmp(s tmpState) {
	if !s.openclawDir {
		os.Remove("/tmp/openclaw") // only when empty: another run may use it
	}
	entries, _ := os.ReadDir(locksDir())
	for _, e := range entries {
		if !s.locks[e.Name()] {
			os.RemoveAll(filepath.Join(locksDir(), e.Name()))
		}
	}
	if !s.locksDir {
		os.Remove(locksDir())
	}
}

// serve starts `agentfed serve` with the YAML config cfg on listen and waits
// until it listens; env is added to its environment.
func serve(t *testing.T, listen, cfg string, env ...string) *tstest.Gateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agentfed.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return tstest.Serve(t, bin, t.TempDir(), env, "--listen", listen, "--config", path)
}

// run runs a command and returns stdout, stderr and the exit code.
func run(t *testing.T, timeout time.Duration, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s %v: %v", name, args, err)
	}
	return out.String(), errb.String(), code
}

// sendResult is the part of a send result the tests check.
type sendResult struct {
	PeerID   string `json:"peerId"`
	Status   string `json:"status"`
	Response *struct {
		Type          string         `json:"type"`
		Content       string         `json:"content"`
		Context       map[string]any `json:"context"`
		CorrelationID string         `json:"correlationId"`
		Priority      string         `json:"priority"`
		FromAgent     string         `json:"fromAgent"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// agentfedJSON runs an agentfed client command with --json and decodes its
// result into out; it returns the exit code.
func agentfedJSON(t *testing.T, out any, args ...string) int {
	t.Helper()
	stdout, stderr, code := run(t, 90*time.Second, bin, append(args, "--json", "--token", opToken)...)
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("agentfed %s: exit %d, output is not JSON (%v):\n%s\n%s", strings.Join(args, " "), code, err, stdout, stderr)
	}
	return code
}
