package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"math/rand/v2"
	"net/http"
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

var soakN = flag.Int("soak", 0, "run the chaos soak with this many durable messages (e.g. 100000); 0: a CI-sized run of 300")

// soakSink is the receivers' HTTP agent: it notes every call, with the
// receiver (its URL path) and the time, so duplicates can be told apart.
type soakSink struct {
	mu    sync.Mutex
	calls map[string][]soakCall // by content
}

type soakCall struct {
	recv int
	at   time.Time
}

func (s *soakSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m federation.Message
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	recv := 0
	fmt.Sscanf(r.URL.Path, "/r%d", &recv)
	s.mu.Lock()
	s.calls[m.Content] = append(s.calls[m.Content], soakCall{recv: recv, at: time.Now()})
	s.mu.Unlock()
	time.Sleep(rand.N(20 * time.Millisecond)) // work: kills land mid-handling too
	fmt.Fprintf(w, "got %s", m.Content)
}

func (s *soakSink) handled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// kill is one SIGKILL of a receiver: sent at start, the process gone at
// dead.
type kill struct {
	recv        int
	start, dead time.Time
}

// soakCounts are the soak's outcome.
type soakCounts struct {
	lost        int // acknowledged ("queued"), never handled
	dupGateway  int // handled again with no receiver crash in between: a bug
	dupCrash    int // handled again after its receiver was killed in between (the crash window)
	handledOnce int
}

// count sorts the sink's calls for the acknowledged messages into the
// soak's counts. A repeated call is in the crash window when its receiver
// was killed between the two calls; the margin covers a call that the
// sink read just after its sender died.
func count(calls map[string][]soakCall, acked []string, kills []kill) soakCounts {
	const margin = 250 * time.Millisecond
	var c soakCounts
	for _, content := range acked {
		cs := calls[content]
		if len(cs) == 0 {
			c.lost++
			continue
		}
		if len(cs) == 1 {
			c.handledOnce++
		}
		for i := 1; i < len(cs); i++ {
			crashed := false
			for _, k := range kills {
				crashed = crashed || k.recv == cs[i].recv && !k.start.After(cs[i].at) && !k.dead.Add(margin).Before(cs[i-1].at)
			}
			if crashed {
				c.dupCrash++
			} else {
				c.dupGateway++
			}
		}
	}
	return c
}

// soakConn is the test's operator connection to the sender, redialled
// after the sender is killed.
type soakConn struct {
	url   string
	token func() string // the running sender's operator token
	mu    sync.Mutex    // guards c
	c     *gateway.Client
}

// send sends one durable message and reports whether it was acknowledged.
func (s *soakConn) send(peer, content string) bool {
	s.mu.Lock()
	c := s.c
	if c == nil {
		var err error
		if c, err = gateway.Dial(context.Background(), s.url, &gateway.DialOptions{Token: s.token()}); err != nil {
			s.mu.Unlock()
			time.Sleep(20 * time.Millisecond) // the sender is restarting
			return false
		}
		s.c = c
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r federation.Result
	err := c.Call(ctx, federation.MethodTool, map[string]any{"action": "send", "peerId": peer, "message": content, "durable": true}, &r)
	if gateway.CodeOf(err) == gateway.CodePeerUnavailable {
		s.mu.Lock()
		if s.c == c {
			s.c = nil
			c.Close()
		}
		s.mu.Unlock()
	}
	return err == nil && r.Status == federation.StatusQueued
}

func (s *soakConn) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		s.c.Close()
	}
}

// TestSoak is the chaos run of issue 19: N durable messages (-soak N;
// 300 by default, sized for CI) from one sender to two receivers, while
// the sender and both receivers are killed with SIGKILL and restarted at
// random. It reports separately the messages lost (acknowledged, never
// handled), duplicated by the gateway (handled twice with no crash of the
// receiver in between: a bug) and duplicated in the crash window (the
// receiver was killed between handling and recording, the limit
// docs/RELIABILITY.md states), and the sender's peak memory.
//
//	go test -run TestSoak -timeout 2h ./cmd/agentfed/ -soak 100000
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos soak: real processes")
	}
	// CI: 300 messages spread over 4 s, a kill every 0.3-0.8 s.
	total, spread, minPause, maxPause := 300, 4*time.Second, 300*time.Millisecond, 800*time.Millisecond
	if *soakN > 0 {
		total, spread, minPause, maxPause = *soakN, 0, time.Second, 3*time.Second
	}
	sk := &soakSink{calls: map[string][]soakCall{}}
	ts := httptest.NewServer(sk)
	defer ts.Close()
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)} // sender, receiver 0, receiver 1
	cfgs := make([]string, 3)
	var peers strings.Builder
	for i := range 2 {
		cfgs[i+1] = writeFile(t, fmt.Sprintf("recv%d.yaml", i), fmt.Sprintf(`
federation: {enabled: true, serverId: receiver-%d}
agents: [{id: sink, handler: {type: http, url: "%s/r%d"}, maxConcurrency: 64, maxQueue: 100000}]
storage: {dir: %q}
audit: {enabled: false}
`, i, ts.URL, i, t.TempDir()))
		fmt.Fprintf(&peers, "    - {id: recv-%d, name: R%d, url: \"ws://%s\", agentId: sink, timeoutMs: 5000}\n", i, i, addrs[i+1])
	}
	cfgs[0] = writeFile(t, "send.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: sender
  peers:
%sgateway: {heartbeatMs: 200}
storage: {dir: %q}
audit: {enabled: false}
`, peers.String(), t.TempDir()))
	var procMu sync.Mutex // guards procs
	procs := make([]*server, 3)
	for i := range procs {
		procs[i] = serve(t, "--config", cfgs[i], "--listen", addrs[i])
	}

	// Sample the sender's anonymous memory (its heap and stacks; bbolt's
	// memory-mapped file shows as RssFile, reclaimable page cache).
	var peakAnon atomic.Int64
	senderPid := func() int { procMu.Lock(); defer procMu.Unlock(); return procs[0].Cmd.Process.Pid }
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if kb := procStatusKB(senderPid(), "RssAnon:"); kb > peakAnon.Load() {
				peakAnon.Store(kb)
			}
			select {
			case <-sampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	})

	// Chaos: every pause, kill -9 the sender or a receiver, in turn from a
	// random one, and restart it.
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	var kills []kill // of receivers; read after chaos.Wait
	senderKills := 0
	chaos.Go(func() {
		for n := rand.N(3); ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(minPause + rand.N(maxPause-minPause)):
			}
			i := n % 3
			procMu.Lock()
			start := time.Now()
			procs[i].Cmd.Process.Kill()
			<-procs[i].Done
			if i == 0 {
				senderKills++
			} else {
				kills = append(kills, kill{recv: i - 1, start: start, dead: time.Now()})
			}
			procs[i] = serve(t, "--config", cfgs[i], "--listen", addrs[i])
			procMu.Unlock()
		}
	})

	conn := &soakConn{url: "ws://" + addrs[0], token: func() string { procMu.Lock(); defer procMu.Unlock(); return procs[0].token }}
	defer conn.close()
	begin := time.Now()
	var ackedMu sync.Mutex
	var acked []string
	var refused atomic.Int64
	work := make(chan int, 1024)
	var senders sync.WaitGroup
	for range 64 {
		senders.Go(func() {
			for i := range work {
				content := fmt.Sprintf("m-%d", i)
				if conn.send(fmt.Sprintf("recv-%d", i%2), content) {
					ackedMu.Lock()
					acked = append(acked, content)
					ackedMu.Unlock()
				} else {
					refused.Add(1) // not acknowledged: may or may not be handled
				}
			}
		})
	}
	for i := range total {
		work <- i
		if spread > 0 {
			time.Sleep(spread / time.Duration(total)) // a steady load across the kills
		}
	}
	close(work)
	senders.Wait()
	enqueued := time.Since(begin)

	// Keep the chaos up until every acknowledged message has been handled
	// at least once by some attempt, then stop it and let the rest drain.
	wait := func(limit time.Duration) {
		for deadline := time.Now().Add(limit); sk.handled() < len(acked) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait(time.Duration(total/100+30) * time.Second)
	close(stop)
	chaos.Wait()
	wait(time.Minute)
	// Let the outbox drain: late redeliveries, if any, would show as duplicates.
	tstest.WaitFor(t, 2*time.Minute, func() error {
		out, _, code := agentfed(t, "", "outbox", "list", "--gateway", "ws://"+addrs[0], "--state", "queued", "--limit", "1", "--json")
		if code != 0 || jsonLen(t, out) != 0 {
			return fmt.Errorf("the sender's outbox still has queued messages")
		}
		return nil
	})
	close(sampling)
	sampler.Wait()
	sk.mu.Lock()
	c := count(sk.calls, acked, kills)
	sk.mu.Unlock()
	t.Logf("soak: %d messages, %d acknowledged, %d not acknowledged (sender killed meanwhile), enqueued in %v, all handled after %v",
		total, len(acked), refused.Load(), enqueued.Round(time.Millisecond), time.Since(begin).Round(time.Second))
	t.Logf("soak: SIGKILLs: sender %d, receivers %d; sender peak RSS %d kB (anonymous, sampled: %d kB)",
		senderKills, len(kills), procStatusKB(senderPid(), "VmHWM:"), peakAnon.Load())
	t.Logf("soak: lost=%d duplicated-by-gateway=%d duplicated-in-crash-window=%d (handled exactly once: %d)",
		c.lost, c.dupGateway, c.dupCrash, c.handledOnce)
	if c.lost > 0 {
		t.Errorf("lost %d acknowledged messages", c.lost)
	}
	if c.dupGateway > 0 {
		t.Errorf("the gateway handled %d messages again with no receiver crash in between", c.dupGateway)
	}
	procMu.Lock()
	for _, p := range procs {
		p.Stop(t, syscall.SIGTERM)
	}
	procMu.Unlock()
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
