package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// fdsPerConn is what one peer connection costs in descriptors when both
// of its ends are in this process; fdSlack covers everything else.
const (
	fdsPerConn = 2
	fdSlack    = 256
)

// measureMemory opens o.MemoryPeers idle peer connections from a main
// gateway to an echo gateway and divides the growth of resident memory,
// live heap, goroutine stacks and goroutines by their number. Both ends of
// every connection are in this process, so each figure covers the dialling
// gateway's client and the accepting gateway's server side together.
func measureMemory(ctx context.Context, o *Options, s *sample) Result {
	r := Result{Note: "growth per idle peer connection, both ends (dialling pool client + accepting server conn) in this process; one gateway holds roughly half"}
	peers := o.MemoryPeers
	limit, err := raiseFileLimit(uint64(fdsPerConn*peers + fdSlack))
	if err != nil {
		return fail(r, fmt.Errorf("open-file limit: %w", err))
	}
	if most := (int(limit) - fdSlack) / fdsPerConn; most < peers {
		r.Note += fmt.Sprintf("; open-file limit %d allows only %d connections", limit, most)
		peers = max(most, 2)
	}
	gws, err := newGateways(o.Logger)
	if err != nil {
		return fail(r, err)
	}
	defer gws.close()
	echo, err := gws.start("bench-echo", true, nil)
	if err != nil {
		return fail(r, err)
	}
	conf := make([]federation.PeerConfig, peers)
	ids := make([]string, peers)
	for i := range conf {
		ids[i] = fmt.Sprintf("peer-%05d", i)
		conf[i] = echoPeer(ids[i], echo)
	}
	main, err := gws.start("bench-main", false, conf)
	if err != nil {
		return fail(r, err)
	}
	// One connection first, so that the baseline has every code path and
	// pool warmed and only the per-connection cost remains.
	if err := send(ctx, main, ids[0], s.content); err != nil {
		return fail(r, err)
	}
	before := snapshot()
	t0 := time.Now()
	if err := connectAll(ctx, main, ids[1:], s); err != nil {
		return fail(r, err)
	}
	setup := time.Since(t0)
	sleep(ctx, 100*time.Millisecond) // let the connections go idle
	after := snapshot()
	n := float64(peers - 1)
	r.add("connections", float64(peers), unitCount)
	r.add("rss-per-conn", float64(after.rss-before.rss)/n/1024, unitKiB)
	r.add("heap-per-conn", float64(after.heap-before.heap)/n/1024, unitKiB)
	r.add("stack-per-conn", float64(after.stack-before.stack)/n/1024, unitKiB)
	r.add("goroutines-per-conn", float64(after.goroutines-before.goroutines)/n, unitCount)
	r.add("rss-total", float64(after.rss)/1024, unitKiB)
	r.add("connect-all", millis(setup), unitMillis)
	if before.rss == 0 {
		r.Note += "; resident memory unknown on this system (no /proc/self/status): rss figures are 0"
	}
	return r
}

// connectAll sends one message to each peer, from a few workers, so that
// each has an open pooled connection.
func connectAll(ctx context.Context, main *federation.Node, ids []string, s *sample) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(ids); i = int(next.Add(1)) - 1 {
				if err := send(ctx, main, ids[i], s.content); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// memState is the process's memory at one moment, after a full GC.
type memState struct {
	rss, heap, stack int64
	goroutines       int64
}

func snapshot() memState {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memState{rss: rss(), heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse), goroutines: int64(runtime.NumGoroutine())}
}

// rss returns the resident set size from /proc/self/status, or 0.
func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
