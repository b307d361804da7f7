package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

var soakN = flag.Int("soak", 0, "run the soak test with this many durable messages (e.g. 1000000); 0 skips it")

// TestSoak sends -soak N durable messages from one sender to two
// receivers that are killed with SIGKILL and restarted at random, and
// reports lost (acknowledged, never handled), duplicated (work done twice
// by an agent that honours Idempotency-Key), the agent calls repeated by
// receiver crashes, and the sender's peak resident memory.
//
//	go test -run TestSoak -timeout 2h ./cmd/agentfed/ -soak 1000000
func TestSoak(t *testing.T) {
	if *soakN == 0 {
		t.Skip("soak test: run with -soak N")
	}
	sk := &sink{seen: map[string]int{}}
	ts := httptest.NewServer(sk)
	defer ts.Close()
	addrs := []string{freeAddr(t), freeAddr(t)}
	recvCfgs := make([]string, 2)
	var peers strings.Builder
	for i := range addrs {
		recvCfgs[i] = writeFile(t, fmt.Sprintf("recv%d.yaml", i), fmt.Sprintf(`
federation: {enabled: true, serverId: receiver-%d}
agents: [{id: sink, handler: {type: http, url: %q}, maxConcurrency: 64, maxQueue: 100000}]
storage: {dir: %q}
`, i, ts.URL, t.TempDir()))
		fmt.Fprintf(&peers, "    - {id: recv-%d, name: R%d, url: \"ws://%s\", agentId: sink, timeoutMs: 5000}\n", i, i, addrs[i])
	}
	sendCfg := writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers:
%sgateway: {heartbeatMs: 200}
storage: {dir: %q}
`, peers.String(), t.TempDir()))
	sender := serve(t, "--config", sendCfg)
	var recvMu sync.Mutex
	receivers := []*server{serve(t, "--config", recvCfgs[0], "--listen", addrs[0]), serve(t, "--config", recvCfgs[1], "--listen", addrs[1])}

	// Sample the sender's anonymous memory (its heap and stacks; bbolt's
	// memory-mapped file shows as RssFile, reclaimable page cache).
	var peakAnon atomic.Int64
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if kb := procStatusKB(sender.cmd.Process.Pid, "RssAnon:"); kb > peakAnon.Load() {
				peakAnon.Store(kb)
			}
			select {
			case <-sampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	})

	// Chaos: every 1-3 s, kill -9 a random receiver and restart it.
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	kills := 0
	chaos.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second + rand.N(2*time.Second)):
			}
			i := rand.N(2)
			recvMu.Lock()
			receivers[i].cmd.Process.Kill()
			<-receivers[i].done
			receivers[i] = serve(t, "--config", recvCfgs[i], "--listen", addrs[i])
			kills++
			recvMu.Unlock()
		}
	})

	c, err := gateway.Dial(context.Background(), sender.url, &gateway.DialOptions{Token: sender.token})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	var acked, refused atomic.Int64
	work := make(chan int, 1024)
	var senders sync.WaitGroup
	for range 64 {
		senders.Go(func() {
			for i := range work {
				var r federation.Result
				err := c.Call(context.Background(), federation.MethodTool, map[string]any{
					"action": "send", "peerId": fmt.Sprintf("recv-%d", i%2), "message": fmt.Sprintf("m-%d", i), "durable": true}, &r)
				if err == nil && r.Status == federation.StatusQueued {
					acked.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	for i := range *soakN {
		work <- i
	}
	close(work)
	senders.Wait()
	enqueued := time.Since(start)

	// Wait until every acknowledged message has been handled.
	deadline := time.Now().Add(30 * time.Minute)
	for int64(len(sk.snapshot())) < acked.Load() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	chaos.Wait()
	time.Sleep(2 * time.Second) // late redeliveries, if any, would show as duplicates
	close(sampling)
	sampler.Wait()
	peak := fmt.Sprintf("%d kB (of which anonymous, sampled: %d kB peak; the rest is bbolt's memory-mapped file, %d kB now)",
		procStatusKB(sender.cmd.Process.Pid, "VmHWM:"), peakAnon.Load(), procStatusKB(sender.cmd.Process.Pid, "RssFile:"))
	seen, done := sk.snapshot(), sk.work()
	lost, dup, repeated := 0, 0, 0
	for i := range *soakN {
		key := fmt.Sprintf("m-%d", i)
		switch n := done[key]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
		repeated += max(seen[key]-1, 0)
	}
	t.Logf("soak: %d messages, %d acknowledged, %d refused, enqueued in %v (%.0f msg/s), all handled after %v",
		*soakN, acked.Load(), refused.Load(), enqueued.Round(time.Millisecond), float64(*soakN)/enqueued.Seconds(), time.Since(start).Round(time.Second))
	t.Logf("soak: receivers killed and restarted %d times; lost=%d duplicated=%d; sender peak RSS %s", kills, lost, dup, peak)
	// A receiver killed between its agent finishing and recording the
	// message calls the agent again on redelivery, with the same
	// Idempotency-Key; the agent does the work once (docs/RELIABILITY.md).
	t.Logf("soak: %d agent calls repeated after receiver SIGKILLs, each with an Idempotency-Key already seen", repeated)
	if lost > int(refused.Load()) {
		t.Errorf("lost %d acknowledged messages", lost-int(refused.Load()))
	}
	if dup > 0 {
		t.Errorf("work done twice for %d messages", dup)
	}
	recvMu.Lock()
	for _, r := range receivers {
		r.stop(t, syscall.SIGTERM)
	}
	recvMu.Unlock()
	sender.stop(t, syscall.SIGTERM)
}

// procStatusKB reads one kB field (VmHWM:, RssAnon:, ...) of a process's
// /proc status, or 0.
func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb
		}
	}
	return 0
}
