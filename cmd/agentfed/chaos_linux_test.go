package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
	"golang.org/x/sys/unix"
)

// limitFileSize makes every regular file the process pid writes stop at
// size bytes (RLIMIT_FSIZE): a write or a growth past it fails with EFBIG,
// as on a full disk, while the process keeps running. size < 0 lifts it.
func limitFileSize(t *testing.T, pid int, size int64) {
	t.Helper()
	lim := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if size >= 0 {
		lim.Cur = uint64(size)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		t.Fatalf("prlimit %d: %v", pid, err)
	}
}

// dataEnd is where the pages of the bbolt file at path end, read from its
// newer meta page (bbolt's file format 2), while a gateway holds it open:
// the file goes on past them, written with zeros (internal/store's
// margin), and a store that cannot grow is one that cannot write past its
// pages.
func dataEnd(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A meta page: a 16-byte page header, then magic, version, page
	// size and flags (4 bytes each), the root bucket (16), the freelist's
	// page id, the high-water mark's page id, the transaction id and an
	// FNV-64a checksum of what precedes it (8 each). The first is at 0,
	// the second one page further; as bbolt does, take the newer valid one.
	var end, txid uint64
	var off int64
	valid := 0
	for range 2 {
		var m [80]byte
		if _, err := f.ReadAt(m[:], off); err != nil {
			t.Fatal(err)
		}
		sum := fnv.New64a()
		sum.Write(m[16:72])
		pageSize := binary.LittleEndian.Uint32(m[24:])
		off = int64(pageSize)
		if binary.LittleEndian.Uint32(m[16:]) != 0xED0CDAED || binary.LittleEndian.Uint32(m[20:]) != 2 ||
			sum.Sum64() != binary.LittleEndian.Uint64(m[72:]) {
			continue // torn by a commit under way
		}
		valid++
		if tx := binary.LittleEndian.Uint64(m[64:]); tx >= txid {
			txid, end = tx, binary.LittleEndian.Uint64(m[56:])*uint64(pageSize)
		}
	}
	if valid == 0 {
		t.Fatalf("%s: no valid bbolt meta page", path)
	}
	return int64(end)
}

// TestChaosReceiverDiskFails (issue 19, item 3): the receiver's store
// cannot grow (RLIMIT_FSIZE where its data ends: writes that need a new
// page fail, as on a full disk) while its agent answers a durable
// message with a reply too big for the free pages. The sender gets a
// retryable error, keeps the message queued and retries; once the disk
// recovers the message is delivered, and the agent ran once.
func TestChaosReceiverDiskFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "runs")
	// A 256 KiB reply: recording it needs pages the store does not have.
	script := fmt.Sprintf(`cat >/dev/null; echo run >> %q; head -c 262144 /dev/zero | tr '\0' x`, file)
	dir := t.TempDir()
	recvAddr := freeAddr(t)
	recvCfg := writeFile(t, "recv.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: receiver}
agents: [{id: a, handler: {type: exec, command: ["/bin/sh", "-c", %q]}}]
storage: {dir: %q}
audit: {enabled: false}
`, script, dir))
	sendCfg := writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers:
    - {id: recv, name: Receiver, url: "ws://%s", agentId: a, timeoutMs: 10000}
gateway: {heartbeatMs: 200}
storage: {dir: %q}
`, recvAddr, t.TempDir()))
	receiver := serve(t, "--config", recvCfg, "--listen", recvAddr)
	sender := serve(t, "--config", sendCfg)
	limitFileSize(t, receiver.Cmd.Process.Pid, dataEnd(t, filepath.Join(dir, store.FileName)))

	id := sendDurable(t, sender, "big")
	tstest.WaitFor(t, 20*time.Second, func() error { // failed, and retried at least once
		e, err := status(t, sender, id)
		switch {
		case err != nil:
			return err
		case e.State == "failed":
			t.Fatalf("a storage error on the receiver failed message %s for good: %+v", id, e.LastError)
		case e.State != "queued" || e.Attempts < 2:
			return fmt.Errorf("message %s is %s after %d attempts (last error %+v); want queued after a retried storage error", id, e.State, e.Attempts, e.LastError)
		case e.LastError == nil || e.LastError.Code != "INTERNAL" || !e.LastError.Retryable:
			return fmt.Errorf("last error %+v; want INTERNAL, retryable", e.LastError)
		}
		return nil
	})
	limitFileSize(t, receiver.Cmd.Process.Pid, -1) // the disk recovers
	e := waitDelivered(t, sender, id)
	if n := len(e.Result.Response.Content); n != 262144 {
		t.Errorf("reply of %d bytes, want 262144", n)
	}
	if n := lines(t, file); n != 1 {
		t.Errorf("the agent ran %d times, want once", n)
	}
	sender.Stop(t, syscall.SIGTERM)
	receiver.Stop(t, syscall.SIGTERM)
}

// auditCount counts the events of the audit log at path with the given
// kind, messageId and outcome.
func auditCount(t *testing.T, path, kind, id, outcome string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		var e struct{ Kind, MessageID, Outcome string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Kind == kind && e.MessageID == id && e.Outcome == outcome {
			n++
		}
	}
	return n
}

// TestChaosSenderDiskFails (issue 19, item 3, the sender's side): while
// the sender's store cannot grow, a durable send too big for its free
// pages is refused with a retryable error (never a false "queued"), and
// a queued message whose answer cannot be written stays queued and is
// retried: the receiver answers the retry from its kept reply. Once the
// disk recovers the message is delivered, and the agent ran once.
func TestChaosSenderDiskFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "runs")
	script := fmt.Sprintf(`cat >/dev/null; echo run >> %q; head -c 262144 /dev/zero | tr '\0' y`, file)
	recvDir, sendDir := t.TempDir(), t.TempDir()
	recvAddr := freeAddr(t)
	recvCfg := writeFile(t, "recv.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: receiver}
agents: [{id: a, handler: {type: exec, command: ["/bin/sh", "-c", %q]}}]
storage: {dir: %q}
`, script, recvDir))
	sendCfg := writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers:
    - {id: recv, name: Receiver, url: "ws://%s", agentId: a, timeoutMs: 10000}
gateway: {heartbeatMs: 200}
storage: {dir: %q}
audit: {enabled: false}
`, recvAddr, sendDir))
	sender := serve(t, "--config", sendCfg)
	id := sendDurable(t, sender, "small") // queued; the receiver is not up yet
	limitFileSize(t, sender.Cmd.Process.Pid, dataEnd(t, filepath.Join(sendDir, store.FileName)))

	c, err := gateway.Dial(context.Background(), sender.URL, &gateway.DialOptions{Token: sender.token})
	if err != nil {
		t.Fatal(err)
	}
	var r federation.Result
	err = c.Call(context.Background(), federation.MethodTool, map[string]any{
		"action": "send", "peerId": "recv", "message": strings.Repeat("z", 262144), "durable": true}, &r)
	c.Close()
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != "INTERNAL" || !ge.Retryable {
		t.Fatalf("durable send on a full disk: %v %+v; want INTERNAL, retryable, and nothing queued", err, r)
	}
	if out, _, _ := agentfed(t, "", "outbox", "list", "--gateway", sender.URL, "--json"); jsonLen(t, out) != 1 {
		t.Fatalf("the refused send was queued: %s", out)
	}

	receiver := serve(t, "--config", recvCfg, "--listen", recvAddr)
	audit := filepath.Join(recvDir, "audit.log")
	tstest.WaitFor(t, 30*time.Second, func() error { // answered, and asked again: the answer was not saved
		if n := auditCount(t, audit, "relay", id, "ok"); n < 2 {
			return fmt.Errorf("the receiver answered %s %d times; want a retry after the sender failed to save the answer", id, n)
		}
		return nil
	})
	if e, err := status(t, sender, id); err != nil || e.State != federation.StateQueued {
		t.Fatalf("while its disk is full the sender reports %+v, %v; want queued", e, err)
	}
	limitFileSize(t, sender.Cmd.Process.Pid, -1) // the disk recovers
	e := waitDelivered(t, sender, id)
	if n := len(e.Result.Response.Content); n != 262144 {
		t.Errorf("reply of %d bytes, want 262144", n)
	}
	if n := lines(t, file); n != 1 {
		t.Errorf("the agent ran %d times, want once", n)
	}
	sender.Stop(t, syscall.SIGTERM)
	receiver.Stop(t, syscall.SIGTERM)
}
