package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

// TestChaosReceiverDiskFails (issue 19, item 3): the receiver's store
// cannot grow (RLIMIT_FSIZE at its current size: writes that need a new
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
	fi, err := os.Stat(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	limitFileSize(t, receiver.cmd.Process.Pid, fi.Size())

	id := sendDurable(t, sender.url, "big")
	waitUntil(t, 20*time.Second, func() error { // failed, and retried at least once
		e, err := status(t, sender.url, id)
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
	limitFileSize(t, receiver.cmd.Process.Pid, -1) // the disk recovers
	e := waitDelivered(t, sender.url, id)
	if n := len(e.Result.Response.Content); n != 262144 {
		t.Errorf("reply of %d bytes, want 262144", n)
	}
	if n := lines(t, file); n != 1 {
		t.Errorf("the agent ran %d times, want once", n)
	}
	sender.stop(t, syscall.SIGTERM)
	receiver.stop(t, syscall.SIGTERM)
}
