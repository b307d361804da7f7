package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// sink is the receiving agent's HTTP endpoint: it counts how often each
// content arrives.
type sink struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m federation.Message
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.mu.Lock()
	s.seen[m.Content]++
	s.mu.Unlock()
	fmt.Fprintf(w, "got %s", m.Content)
}

func (s *sink) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.seen))
	for k, v := range s.seen {
		out[k] = v
	}
	return out
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDurableExactlyOnceAcrossKill9: with the receiver down, 1,000 durable
// messages are sent and the sender is killed with SIGKILL part way
// through; after both restart, every message the sender acknowledged is
// handled exactly once, and none is handled twice.
func TestDurableExactlyOnceAcrossKill9(t *testing.T) {
	const total = 1000
	sk := &sink{seen: map[string]int{}}
	ts := httptest.NewServer(sk)
	defer ts.Close()
	recvAddr := freeAddr(t)
	recvCfg := writeFile(t, "recv.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: receiver}
agents:
  - id: sink
    handler: {type: http, url: %q}
    maxConcurrency: 32
storage: {dir: %q}
`, ts.URL, t.TempDir()))
	sendCfg := writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers:
    - {id: recv, name: Receiver, url: "ws://%s", agentId: sink, timeoutMs: 5000}
gateway: {heartbeatMs: 200}
storage: {dir: %q}
`, recvAddr, t.TempDir()))

	sender := serve(t, "--config", sendCfg)
	c, err := gateway.Dial(context.Background(), sender.URL, &gateway.DialOptions{Token: sender.token})
	if err != nil {
		t.Fatal(err)
	}
	var (
		acked   sync.Map // content -> messageId
		nAcked  atomic.Int64
		killed  atomic.Bool
		work    = make(chan int)
		senders sync.WaitGroup
	)
	for range 32 {
		senders.Go(func() {
			for i := range work {
				var r federation.Result
				err := c.Call(context.Background(), federation.MethodTool,
					map[string]any{"action": "send", "peerId": "recv", "message": fmt.Sprintf("m-%d", i), "durable": true}, &r)
				if err != nil || r.Status != federation.StatusQueued {
					continue // not acknowledged: may or may not be delivered, but never twice
				}
				acked.Store(fmt.Sprintf("m-%d", i), r.MessageID)
				if nAcked.Add(1) == total/2 && killed.CompareAndSwap(false, true) {
					sender.Cmd.Process.Kill() // kill -9 mid-way
				}
			}
		})
	}
	for i := range total {
		work <- i
	}
	close(work)
	senders.Wait()
	c.Close()
	<-sender.Done
	if !killed.Load() {
		t.Fatal("the sender was never killed")
	}
	t.Logf("%d of %d messages acknowledged before kill -9", nAcked.Load(), total)

	// Restart the sender from the same storage, and start the receiver.
	sender = serve(t, "--config", sendCfg)
	receiver := serve(t, "--config", recvCfg, "--listen", recvAddr)
	var want []string
	acked.Range(func(k, _ any) bool { want = append(want, k.(string)); return true })
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen, missing := sk.snapshot(), 0
		for _, k := range want {
			if seen[k] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged messages never arrived\nsender log:\n%s", missing, sender.Logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Let the outbox drain: nothing may remain queued.
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, _, code := agentfed(t, "", "outbox", "list", "--gateway", sender.URL, "--state", "queued", "--json")
		if code == 0 && jsonLen(t, out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still has queued messages: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for content, n := range sk.snapshot() { // no receiver crashes here: not even repeated calls
		if n != 1 {
			t.Errorf("%s handled %d times", content, n)
		}
	}
	t.Logf("handled %d distinct messages (%d acknowledged), none twice", len(sk.snapshot()), len(want))
	receiver.Stop(t, syscall.SIGTERM)
	sender.Stop(t, syscall.SIGTERM)
}

func jsonLen(t *testing.T, out string) int {
	var l federation.OutboxList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("outbox list --json: %v: %q", err, out)
	}
	return len(l.Messages)
}
