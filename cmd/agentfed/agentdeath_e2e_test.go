//go:build linux

package main

import (
	"context"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// TestExecAgentDiesWithGateway: an exec agent busy with a message when its
// gateway is killed with SIGKILL is killed too (parent-death signal), not
// left running as an orphan.
func TestExecAgentDiesWithGateway(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "agent.pid")
	cfg := writeFile(t, "gw.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: victim}
agents:
  - id: sleeper
    handler: {type: exec, command: ["/bin/sh", "-c", "echo $$ > %s; exec sleep 600"]}
storage: {dir: %q}
`, pidFile, t.TempDir()))
	gw := serve(t, "--config", cfg)
	c, err := gateway.Dial(context.Background(), gw.URL, &gateway.DialOptions{Role: gateway.RolePeer,
		Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack, InstanceID: "caller"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { // fails when the gateway dies
		msg := federation.NewMessage(federation.TypeRequest, "caller", "someone", "sleeper", "work")
		c.Call(context.Background(), federation.MethodRelay, federation.RelayParams{TargetAgent: "sleeper", Message: msg}, nil)
	}()

	var pid int
	tstest.WaitFor(t, 20*time.Second, func() error {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if err == nil && !alive(pid) {
			err = fmt.Errorf("agent %d not running yet", pid)
		}
		return err
	})
	t.Cleanup(func() { // should the test fail, leave no orphan behind
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	gw.Stop(t, syscall.SIGKILL)
	tstest.WaitFor(t, 10*time.Second, func() error {
		if alive(pid) {
			return fmt.Errorf("agent process %d still runs after its gateway was killed", pid)
		}
		return nil
	})
}

// alive reports whether pid is a running process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces, the state follows its ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
