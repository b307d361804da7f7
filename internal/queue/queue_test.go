package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// admitOrder queues one waiter per rank behind a held slot, in the given
// order and one second apart, then releases and records who got in.
func admitOrder(t *testing.T, s *Sem, ranks []int, gap time.Duration) []int {
	t.Helper()
	if err := s.Acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	for _, r := range ranks {
		wg.Go(func() {
			if err := s.Acquire(context.Background(), r); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
			s.Release()
		})
		synctest.Wait() // r is waiting
		time.Sleep(gap)
	}
	s.Release()
	wg.Wait()
	return got
}

func TestPriorityOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(1, 100, 0)
		got := admitOrder(t, s, []int{0, 0, 1, 3, 2, 0}, 0)
		if want := []int{3, 2, 1, 0, 0, 0}; !slices.Equal(got, want) {
			t.Fatalf("admitted %v; want %v", got, want)
		}
	})
}

// TestAgeingPreventsStarvation: a low waiter that has waited long enough
// goes before urgent work that just arrived.
func TestAgeingPreventsStarvation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(1, 100, 10*time.Second)
		// low (0) waits 40s before urgent (3) arrives: 0+4 > 3.
		got := admitOrder(t, s, []int{0, 3}, 40*time.Second)
		if want := []int{0, 3}; !slices.Equal(got, want) {
			t.Fatalf("admitted %v; want the aged low first %v", got, want)
		}
	})
}

func TestFullAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(1, 1, 0)
		if err := s.Acquire(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Acquire(ctx, 0) }()
		synctest.Wait()
		if err := s.Acquire(context.Background(), 3); !errors.Is(err, ErrFull) {
			t.Fatalf("second waiter with MaxWaiting 1: %v; want ErrFull", err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v", err)
		}
		if busy, waiting := s.Stats(); busy != 1 || waiting != 0 {
			t.Fatalf("after cancel: busy %d waiting %d", busy, waiting)
		}
		s.Release()
		if busy, _ := s.Stats(); busy != 0 {
			t.Fatalf("after release: busy %d", busy)
		}
		defer func() {
			if recover() == nil {
				t.Fatal("a Release without a slot held did not panic")
			}
		}()
		s.Release() // one too many: it would admit more than the limit
	})
}

func TestConcurrentHoldersNeverExceedLimit(t *testing.T) {
	s := New(3, 1000, time.Millisecond)
	var mu sync.Mutex
	cur, peak := 0, 0
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			err := s.Acquire(context.Background(), i%4)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cur++
			peak = max(peak, cur)
			mu.Unlock()
			mu.Lock()
			cur--
			mu.Unlock()
			s.Release()
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("peak holders %d > limit 3", peak)
	}
}

// BenchmarkSem is the priority queue's cost per admission: uncontended
// (a free slot), and with 4 slots shared by 64 or 2,048 goroutines of
// mixed ranks, where most wait in the priority list.
func BenchmarkSem(b *testing.B) {
	ctx := context.Background()
	b.Run("free", func(b *testing.B) {
		s := New(4, 1024, time.Second)
		b.ReportAllocs()
		for b.Loop() {
			err := s.Acquire(ctx, 1)
			if err != nil {
				b.Fatal(err)
			}
			s.Release()
		}
	})
	for _, par := range []int{32, 1024} {
		b.Run(fmt.Sprintf("waiters=%d", 2*par), func(b *testing.B) { benchContended(b, par) })
	}
}

// benchContended has 2*par goroutines of mixed ranks (on 2 CPUs) share 4
// slots, so that most wait in the priority list.
func benchContended(b *testing.B, par int) {
	ctx := context.Background()
	s := New(4, 1<<16, time.Second)
	b.SetParallelism(par)
	b.ReportAllocs()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		rank := int(next.Add(1) % 3)
		for pb.Next() {
			err := s.Acquire(ctx, rank)
			if err != nil {
				b.Error(err)
				return
			}
			s.Release()
		}
	})
}
