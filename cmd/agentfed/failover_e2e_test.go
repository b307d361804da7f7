package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// TestKill9MidRequestFailover runs three agentfed processes: main and two
// identical workers. Worker 1 is killed with SIGKILL while it handles a
// request: that request fails at once, delegate fails over to worker 2,
// worker 1's circuit opens; when it is restarted, traffic returns to it.
func TestKill9MidRequestFailover(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var first atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			entered <- struct{}{}
			select { // the first request hangs until its gateway dies
			case <-r.Context().Done():
			case <-release:
			}
		}
		fmt.Fprint(w, "worker-1 done")
	})
	mux.HandleFunc("POST /fast", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "worker-2 done") })
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer close(release)

	workerCfg := func(name, path string) string {
		return writeFile(t, name+".yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: %s}
agents: [{id: w, capabilities: [task], handler: {type: http, url: "%s/%s"}}]
storage: {dir: %q}
`, name, ts.URL, path, t.TempDir()))
	}
	w1Cfg, w1Addr := workerCfg("worker-1", "slow"), freeAddr(t)
	w1 := serve(t, "--config", w1Cfg, "--listen", w1Addr)
	w2 := serve(t, "--config", workerCfg("worker-2", "fast"))
	mainCfg := writeFile(t, "main.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: main
  peers:
    - {id: worker-1, name: W1, url: "ws://%s", agentId: w, capabilities: [task]}
    - {id: worker-2, name: W2, url: %q, agentId: w, capabilities: [task]}
gateway: {heartbeatMs: 100, breaker: {failures: 2, openMs: 600000}}
storage: {dir: %q}
`, w1Addr, w2.URL, t.TempDir()))
	main := serve(t, "--config", mainCfg)
	op, err := gateway.Dial(context.Background(), main.URL, &gateway.DialOptions{Token: main.token})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	call := func(action map[string]any) (*federation.DelegateResult, error) {
		var r federation.DelegateResult
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return &r, op.Call(ctx, federation.MethodTool, action, &r)
	}

	// A request in flight on worker 1 when it is killed fails fast.
	done := make(chan *federation.DelegateResult, 1)
	go func() {
		r, _ := call(map[string]any{"action": "send", "peerId": "worker-1", "message": "long job", "timeoutMs": 60000})
		done <- r
	}()
	<-entered
	killedAt := time.Now()
	w1.Cmd.Process.Kill()
	<-w1.Done
	select {
	case r := <-done:
		if r.Status != federation.StatusError || r.Error.Code != gateway.CodePeerUnavailable {
			t.Fatalf("request in flight on a killed worker: %+v", r.Result)
		}
		t.Logf("in-flight request failed %v after kill -9", time.Since(killedAt).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("the request in flight on the killed worker hung")
	}

	// Delegation fails over to worker 2 while worker 1 is dead, and worker
	// 1's circuit opens.
	for range 4 {
		r, err := call(map[string]any{"action": "delegate", "requiredCapabilities": []string{"task"}, "task": "t"})
		if err != nil || r.Status != federation.StatusOK || r.PeerID != "worker-2" {
			t.Fatalf("delegate with worker 1 dead: %+v %v", r, err)
		}
	}
	var peers federation.PeerList
	op.Call(context.Background(), federation.MethodTool, map[string]any{"action": "list_peers"}, &peers)
	if h := peers.Peers[0].Health; h.Circuit != "open" && h.State != federation.HealthDown {
		t.Fatalf("worker 1 after kill -9: %+v", h)
	}

	// Restarted, worker 1 is noticed by the heartbeat and takes work again.
	serve(t, "--config", w1Cfg, "--listen", w1Addr) // stopped by the test's cleanup
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := call(map[string]any{"action": "delegate", "requiredCapabilities": []string{"task"}, "task": "t"})
		if err == nil && r.PeerID == "worker-1" && r.Status == federation.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker 1 never took work after its restart: %+v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	main.Stop(t, syscall.SIGTERM)
}
