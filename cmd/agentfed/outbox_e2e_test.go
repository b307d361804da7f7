package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// TestOutboxCancelCLI: a durable message with no ttl to a dead peer can be
// cancelled with `agentfed outbox cancel` (before, it could be neither
// dropped nor cancelled), is then dead and never delivered, even when the
// peer comes back, and can be dropped. A bad --limit is refused naming it.
func TestOutboxCancelCLI(t *testing.T) {
	sk := &sink{seen: map[string]int{}}
	ts := httptest.NewServer(sk)
	defer ts.Close()
	recvAddr := freeAddr(t)
	sendCfg := writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers:
    - {id: recv, name: Receiver, url: "ws://%s", agentId: sink}
gateway: {heartbeatMs: 200}
storage: {dir: %q}
`, recvAddr, t.TempDir()))
	sender := serve(t, "--config", sendCfg)
	cli := func(args ...string) (string, string, int) {
		return agentfed(t, "", append(args, "--gateway", sender.URL)...)
	}
	send := func(msg string) string {
		out, errOut, code := cli("send", "recv", msg, "--durable", "--json")
		var r federation.Result
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Status != federation.StatusQueued {
			t.Fatalf("send --durable %s: exit %d: %s %s", msg, code, out, errOut)
		}
		return r.MessageID
	}
	id := send("cancelled")

	if _, errOut, code := cli("outbox", "drop", id); code == 0 || !strings.Contains(errOut, "cancel it first") {
		t.Fatalf("drop of a queued message: exit %d: %s", code, errOut)
	}
	if out, errOut, code := cli("outbox", "cancel", id); code != 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("outbox cancel: exit %d: %s %s", code, out, errOut)
	}
	out, _, _ := cli("status", id, "--json")
	var e federation.OutboxEntry
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.State != federation.StateDead || e.LastError == nil || e.LastError.Code != "CANCELLED" {
		t.Fatalf("status after cancel: %v: %s", err, out)
	}
	if _, errOut, code := cli("outbox", "cancel", id); code == 0 || !strings.Contains(errOut, "not queued") {
		t.Fatalf("second cancel: exit %d: %s", code, errOut)
	}

	// The peer comes back: a later message arrives, the cancelled one never.
	receiver := serve(t, "--config", writeFile(t, "recv.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: receiver}
agents:
  - {id: sink, handler: {type: http, url: %q}}
storage: {dir: %q}
`, ts.URL, t.TempDir())), "--listen", recvAddr)
	send("after")
	deadline := time.Now().Add(30 * time.Second)
	for sk.snapshot()["after"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the message sent after the cancel never arrived\n%s", sender.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := sk.snapshot()["cancelled"]; n != 0 {
		t.Fatalf("the cancelled message was delivered %d times", n)
	}
	if out, errOut, code := cli("outbox", "drop", id); code != 0 {
		t.Fatalf("drop after cancel: exit %d: %s %s", code, out, errOut)
	}
	if _, errOut, code := cli("outbox", "list", "--limit", "100000"); code == 0 || !strings.Contains(errOut, "limit 100000 is not from 1 to 1000") {
		t.Fatalf("outbox list --limit 100000: exit %d: %s", code, errOut)
	}
	receiver.Stop(t, syscall.SIGTERM)
	sender.Stop(t, syscall.SIGTERM)
}
