package bench

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// latencies collects round-trip times.
type latencies []time.Duration

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of a
// sorted l.
func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(l)))) - 1
	return l[max(0, min(i, len(l)-1))]
}

func (l latencies) mean() time.Duration {
	if len(l) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return sum / time.Duration(len(l))
}

// addTo sorts l and adds its p50, p99, p99.9, mean and sample count to r,
// each name prefixed with prefix.
func (l latencies) addTo(r *Result, prefix string) {
	slices.Sort(l)
	r.add(prefix+"p50", micros(l.percentile(50)), unitMicros)
	r.add(prefix+"p99", micros(l.percentile(99)), unitMicros)
	r.add(prefix+"p99.9", micros(l.percentile(99.9)), unitMicros)
	r.add(prefix+"mean", micros(l.mean()), unitMicros)
	r.add(prefix+"samples", float64(len(l)), unitCount)
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func millis(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// warmup is how long a measurement runs before it records, so that
// connections are dialled, pools filled and code paths warm.
func warmup(d time.Duration) time.Duration { return min(d/10, 500*time.Millisecond) }

// slicesOf is how many alternating slices cases measured together split d
// into: interleaving them spreads the machine's drift (other load, CPU
// frequency, GC) over every case instead of biasing whichever ran last.
func slicesOf(d time.Duration) int { return max(1, min(int(d/(250*time.Millisecond)), 20)) }

// timeLoop calls op sequentially for warm-up and then for d, and returns
// the latency of each call after the warm-up.
func timeLoop(ctx context.Context, d time.Duration, op func(context.Context) error) (latencies, error) {
	if err := repeat(ctx, warmup(d), op); err != nil {
		return nil, err
	}
	return record(ctx, d, make(latencies, 0, 1<<12), op)
}

// repeat calls op sequentially for d, at least once.
func repeat(ctx context.Context, d time.Duration, op func(context.Context) error) error {
	for end := time.Now().Add(d); ; {
		if err := op(ctx); err != nil {
			return err
		}
		if !time.Now().Before(end) {
			return ctx.Err()
		}
	}
}

// record calls op sequentially for d, at least once, and appends the
// latency of each call to l.
func record(ctx context.Context, d time.Duration, l latencies, op func(context.Context) error) (latencies, error) {
	for end := time.Now().Add(d); ; {
		t0 := time.Now()
		if err := op(ctx); err != nil {
			return l, err
		}
		t1 := time.Now()
		l = append(l, t1.Sub(t0))
		if !t1.Before(end) {
			return l, ctx.Err()
		}
	}
}

// count runs op on workers goroutines for d and returns how many calls
// completed and how long they took. The first error stops every worker
// and is returned.
func count(ctx context.Context, workers int, d time.Duration, op func(context.Context) error) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		stop     atomic.Bool
		n        atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				if err := op(ctx); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					cancel()
					return
				}
				n.Add(1)
			}
		})
	}
	sleep(ctx, d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return n.Load(), elapsed, ctx.Err()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// errNotOK is returned for a delivery that came back with a status other
// than ok.
var errNotOK = errors.New("bench: delivery not ok")

// cpuMeter adds up the process's CPU time over the stretches it is
// started and stopped, to report CPU per operation next to latency: with
// both ends of every connection in this process, it is what an operation
// costs the machine.
type cpuMeter struct {
	total, since time.Duration
	ok           bool
}

func (m *cpuMeter) start() { m.since, m.ok = processCPU() }

func (m *cpuMeter) stop() {
	if now, ok := processCPU(); ok && m.ok {
		m.total += now - m.since
	}
}

// addTo adds the CPU time per op as figure name, when it was measured.
func (m *cpuMeter) addTo(r *Result, name string, ops float64) {
	if m.ok && ops > 0 && m.total > 0 {
		r.add(name, micros(m.total)/ops, unitMicros)
	}
}
