package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// The fault-injection suite of issue 19 with real processes: each test
// starts `agentfed serve` gateways, breaks one the way an operator would
// see it break (kill -9, a disk that refuses writes, a damaged store) and
// checks what the durable outbox promises in docs/RELIABILITY.md.

// appendAgent is an exec agent that appends one line per run to a file,
// then sleeps: the file counts how often the agent ran.
func appendAgent(t *testing.T, sleep string) (file, handler string) {
	file = filepath.Join(t.TempDir(), "runs")
	script := fmt.Sprintf(`cat >/dev/null; echo run >> %q; sleep %s; echo ok`, file, sleep)
	return file, fmt.Sprintf(`{type: exec, command: ["/bin/sh", "-c", %q]}`, script)
}

func lines(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// pair writes configs for a receiver (on a fixed address, so it can be
// restarted) hosting agent "a" with handler, and a sender whose peer
// "recv" is it.
func pair(t *testing.T, handler string) (sendCfg, recvCfg, recvAddr string) {
	recvAddr = freeAddr(t)
	recvCfg = writeFile(t, "recv.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: receiver}
agents: [{id: a, handler: %s}]
storage: {dir: %q}
`, handler, t.TempDir()))
	sendCfg = writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers:
    - {id: recv, name: Receiver, url: "ws://%s", agentId: a, timeoutMs: 10000}
gateway: {heartbeatMs: 200}
storage: {dir: %q}
`, recvAddr, t.TempDir()))
	return sendCfg, recvCfg, recvAddr
}

// sendDurable sends one durable message through the gateway at url and
// returns its messageId.
func sendDurable(t *testing.T, url, content string) string {
	t.Helper()
	c, err := gateway.Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r federation.Result
	err = c.Call(context.Background(), federation.MethodTool,
		map[string]any{"action": "send", "peerId": "recv", "message": content, "durable": true}, &r)
	if err != nil || r.Status != federation.StatusQueued {
		t.Fatalf("durable send: %v %+v", err, r)
	}
	return r.MessageID
}

// status returns the outbox entry of id on the gateway at url.
func status(t *testing.T, url, id string) (*federation.OutboxEntry, error) {
	t.Helper()
	c, err := gateway.Dial(context.Background(), url, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var e federation.OutboxEntry
	err = c.Call(context.Background(), federation.MethodOutbox, federation.OutboxParams{Op: "status", MessageID: id}, &e)
	return &e, err
}

// waitUntil polls cond every 20 ms until it returns nil or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitDelivered(t *testing.T, url, id string) *federation.OutboxEntry {
	t.Helper()
	var e *federation.OutboxEntry
	waitUntil(t, 30*time.Second, func() error {
		var err error
		if e, err = status(t, url, id); err != nil {
			return err
		}
		if e.State != federation.StateDelivered {
			return fmt.Errorf("message %s is %s (attempts %d, last error %v); want delivered", id, e.State, e.Attempts, e.LastError)
		}
		return nil
	})
	return e
}

// TestChaosSenderKilledMidHandling (issue 19, item 2): the sender is
// killed with SIGKILL while the receiver's agent handles its durable
// message. The receiver finishes that handling and records it; the
// redelivery after the sender restarts gets the kept reply: the agent ran
// once, and the message is delivered.
func TestChaosSenderKilledMidHandling(t *testing.T) {
	file, handler := appendAgent(t, "2")
	sendCfg, recvCfg, recvAddr := pair(t, handler)
	receiver := serve(t, "--config", recvCfg, "--listen", recvAddr)
	sender := serve(t, "--config", sendCfg)
	id := sendDurable(t, sender.url, "once")
	waitUntil(t, 10*time.Second, func() error {
		if lines(t, file) == 0 {
			return fmt.Errorf("the agent never started")
		}
		return nil
	})
	sender.cmd.Process.Kill() // mid-handling: the agent sleeps 2 s
	<-sender.done
	sender = serve(t, "--config", sendCfg)
	e := waitDelivered(t, sender.url, id)
	if got := e.Result.Response.Content; got != "ok" {
		t.Errorf("reply %q, want ok", got)
	}
	if n := lines(t, file); n != 1 {
		t.Errorf("the agent ran %d times, want once\nreceiver log:\n%s", n, receiver.logs)
	}
	sender.stop(t, syscall.SIGTERM)
	receiver.stop(t, syscall.SIGTERM)
}
