package tstest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildAgentfed builds the agentfed command in pkg (a path to
// ./cmd/agentfed relative to the calling test's package) into a temporary
// directory, for tests that run real gateway processes. Call it from
// TestMain and remove the directory when the tests are done.
func BuildAgentfed(pkg string) (bin, dir string, err error) {
	if dir, err = os.MkdirTemp("", "agentfed-test-"); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "agentfed")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build agentfed: %v\n%s", err, out)
	}
	return bin, dir, nil
}

// Gateway is one `agentfed serve` process started by Serve.
type Gateway struct {
	Cmd  *exec.Cmd
	Addr string      // host:port it listens on
	URL  string      // ws://Addr
	Logs *SyncBuffer // its stderr, readable while it runs
	// Done receives the process's exit once; Stop and the cleanup read it.
	Done chan error

	args  []string
	found chan string // the listening address, once logged
}

var listeningRE = regexp.MustCompile(`msg="gateway listening" addr=(\S+)`)

// Serve starts `bin serve args...` in the working directory dir with env
// added to its environment, and returns once the gateway logs the address
// it listens on. The test fails if it exits first or says nothing within
// 20 seconds. When the test ends the process is stopped with SIGTERM
// (SIGKILL after 20 seconds), and its logs are printed if the test failed.
func Serve(t testing.TB, bin, dir string, env []string, args ...string) *Gateway {
	t.Helper()
	g := Start(t, bin, dir, env, args...)
	g.WaitListening(t)
	return g
}

// Start is Serve without the wait, for gateways that must start together
// (a cluster that forms only when its members are up): call WaitListening
// on each.
func Start(t testing.TB, bin, dir string, env []string, args ...string) *Gateway {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Cmd: cmd, Logs: &SyncBuffer{}, Done: make(chan error, 1), args: args, found: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case g.found <- m[1]:
				default: // a second listener (a restart within the process) is logged only
				}
			}
			g.Logs.WriteString(sc.Text() + "\n")
		}
		g.Done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			g.Stop(t, syscall.SIGTERM)
		}
		if t.Failed() {
			t.Logf("agentfed serve %v logs:\n%s", args, g.Logs)
		}
	})
	return g
}

// WaitListening waits until the gateway logs the address it listens on,
// and sets Addr and URL; the test fails if it exits first or says nothing
// within 20 seconds.
func (g *Gateway) WaitListening(t testing.TB) {
	t.Helper()
	select {
	case g.Addr = <-g.found:
		g.URL = "ws://" + g.Addr
	case err := <-g.Done:
		g.Done <- err // for Stop and the cleanup
		t.Fatalf("agentfed serve %v exited before listening: %v\n%s", g.args, err, g.Logs)
	case <-time.After(20 * time.Second):
		g.Cmd.Process.Kill()
		t.Fatalf("agentfed serve %v did not log its address", g.args)
	}
}

// Stop sends sig to the gateway and returns how it exited; one that has
// not exited 20 seconds later is killed and the test fails.
func (g *Gateway) Stop(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	g.Cmd.Process.Signal(sig)
	select {
	case err := <-g.Done:
		return err
	case <-time.After(20 * time.Second):
		g.Cmd.Process.Kill()
		<-g.Done
		t.Errorf("agentfed serve did not exit within 20s of %v; killed", sig)
		return nil
	}
}

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type SyncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *SyncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// At walks a decoded JSON value by object keys (string) and array indexes
// (int); a step that does not fit gives nil.
func At(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}
