package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
	bolt "go.etcd.io/bbolt"
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

// sendDurable sends one durable message through the gateway g and
// returns its messageId.
func sendDurable(t *testing.T, g *server, content string) string {
	t.Helper()
	c, err := gateway.Dial(context.Background(), g.URL, &gateway.DialOptions{Token: g.token})
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

// status returns the outbox entry of id on the gateway g.
func status(t *testing.T, g *server, id string) (*federation.OutboxEntry, error) {
	t.Helper()
	c, err := gateway.Dial(context.Background(), g.URL, &gateway.DialOptions{Token: g.token})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var e federation.OutboxEntry
	err = c.Call(context.Background(), federation.MethodOutbox, federation.OutboxParams{Op: "status", MessageID: id}, &e)
	return &e, err
}

func waitDelivered(t *testing.T, g *server, id string) *federation.OutboxEntry {
	t.Helper()
	var e *federation.OutboxEntry
	tstest.WaitFor(t, 30*time.Second, func() error {
		var err error
		if e, err = status(t, g, id); err != nil {
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
	id := sendDurable(t, sender, "once")
	tstest.WaitFor(t, 10*time.Second, func() error {
		if lines(t, file) == 0 {
			return fmt.Errorf("the agent never started")
		}
		return nil
	})
	sender.Cmd.Process.Kill() // mid-handling: the agent sleeps 2 s
	<-sender.Done
	sender = serve(t, "--config", sendCfg)
	e := waitDelivered(t, sender, id)
	if got := e.Result.Response.Content; got != "ok" {
		t.Errorf("reply %q, want ok", got)
	}
	if n := lines(t, file); n != 1 {
		t.Errorf("the agent ran %d times, want once\nreceiver log:\n%s", n, receiver.Logs)
	}
	sender.Stop(t, syscall.SIGTERM)
	receiver.Stop(t, syscall.SIGTERM)
}

// outboxLeaf returns the id of a leaf page of the outbox bucket: the
// middle child of its root, a branch page (16-byte header, then 16-byte
// elements ending in the child's page id).
func outboxLeaf(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	db.View(func(tx *bolt.Tx) error { root = uint64(tx.Bucket([]byte(store.Outbox)).Root()); return nil })
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := b[root*uint64(os.Getpagesize()):]
	flags, count := binary.LittleEndian.Uint16(page[8:]), binary.LittleEndian.Uint16(page[10:])
	if flags != 0x01 || count < 3 { // branchPageFlag
		t.Fatalf("outbox root page %d: flags %#x, %d elements; want a branch", root, flags, count)
	}
	elem := page[16+16*int(count/2):]
	return int64(binary.LittleEndian.Uint64(elem[8:]))
}

// TestChaosDamagedStore (issue 19, item 5): a gateway with 200 queued
// durable messages is stopped and its store damaged. With a zero-byte
// file, or a page overwritten with garbage, `agentfed serve` refuses to
// start with a message naming the file and what to do (no panic, no fresh
// store); `agentfed store check` reports the damage; `agentfed store
// salvage` copies the readable records into a new file, on which the
// gateway starts with the salvaged messages still queued.
func TestChaosDamagedStore(t *testing.T) {
	const queued = 200
	dir := t.TempDir()
	cfg := writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers: [{id: recv, name: Receiver, url: "ws://%s", agentId: a}]
storage: {dir: %q}
`, freeAddr(t), dir))
	g := serve(t, "--config", cfg)
	for i := range queued {
		sendDurable(t, g, fmt.Sprintf("m-%d", i))
	}
	g.Stop(t, syscall.SIGTERM)
	path := filepath.Join(dir, store.FileName)
	sound, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := agentfed(t, "", "store", "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "outbox 200,") {
		t.Fatalf("store check of a sound store: exit %d\n%s%s", code, out, errOut)
	}

	refused := func(t *testing.T, want string) {
		t.Helper()
		_, errOut, code := agentfed(t, "", "serve", "--config", cfg, "--listen", "127.0.0.1:0")
		if code == 0 || !strings.Contains(errOut, path) || !strings.Contains(errOut, want) || strings.Contains(errOut, "goroutine ") {
			t.Fatalf("serve on a damaged store: exit %d, want a refusal naming %s and %q:\n%s", code, path, want, errOut)
		}
	}
	t.Run("empty", func(t *testing.T) {
		must(t, os.WriteFile(path, nil, 0o600))
		refused(t, "from a backup")
		if fi, _ := os.Stat(path); fi.Size() != 0 {
			t.Fatal("serve wrote into the empty store")
		}
	})
	t.Run("page", func(t *testing.T) {
		must(t, os.WriteFile(path, sound, 0o600))
		leaf := outboxLeaf(t, path)
		garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", os.Getpagesize()/4))
		copy(sound[leaf*int64(os.Getpagesize()):], garbage)
		must(t, os.WriteFile(path, sound, 0o600))
		refused(t, "agentfed store salvage")
		out, _, code := agentfed(t, "", "store", "check", "--dir", dir)
		if code != 1 || !strings.Contains(out, "damaged") || !strings.Contains(out, `bucket "outbox"`) {
			t.Fatalf("store check: exit %d\n%s", code, out)
		}
		salvaged := filepath.Join(t.TempDir(), "new.db")
		out, errOut, code = agentfed(t, "", "store", "salvage", "--dir", dir, salvaged)
		if code != 0 || !strings.Contains(out, "lost") {
			t.Fatalf("store salvage: exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("salvage:\n%s", out)
		must(t, os.Rename(salvaged, path))
		g := serve(t, "--config", cfg)
		list, _, _ := agentfed(t, "", "outbox", "list", "--gateway", g.URL, "--state", "queued", "--limit", "1000", "--json")
		if n := jsonLen(t, list); n < queued-50 || n >= queued {
			t.Errorf("%d messages queued after salvage; want most of %d, not all (one page was lost)", n, queued)
		}
		g.Stop(t, syscall.SIGTERM)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
