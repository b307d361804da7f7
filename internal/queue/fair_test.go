package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// waitFrom starts a waiter of sender at rank and returns once it waits
// (or failed). got receives the sender's name when it is admitted (it
// releases at once), or the sender's name and its error.
func waitFrom(s *Sem, sender string, rank int, got chan<- string) {
	go func() {
		err := s.AcquireFrom(context.Background(), sender, rank)
		if err != nil {
			got <- sender + ": " + err.Error()
			return
		}
		got <- sender
		s.Release()
	}()
	synctest.Wait() // waiting, or failed
}

// TestSendersTakeTurns: within a rank, senders are served in turn, so a
// sender that queued much first does not make another wait behind all of
// it; a higher rank still goes first.
func TestSendersTakeTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(1, 100, 0)
		s.Acquire(context.Background(), 0) // the one slot, held until s.Release below
		got := make(chan string, 10)
		for range 4 {
			waitFrom(s, "flood", 0, got)
		}
		waitFrom(s, "b", 0, got)
		waitFrom(s, "c", 0, got)
		waitFrom(s, "urgent", 3, got)
		s.Release()
		var order []string
		for range 7 {
			order = append(order, <-got)
		}
		if want := []string{"urgent", "flood", "b", "c", "flood", "flood", "flood"}; !slices.Equal(order, want) {
			t.Fatalf("admitted %v; want %v", order, want)
		}
	})
}

// TestFullListMakesRoom: one sender may fill an idle wait list, but
// another sender then takes the place of its newest, lowest-ranked waiter
// until both have their share; a sender at its share gets ErrFull.
func TestFullListMakesRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(1, 4, 0)
		s.Acquire(context.Background(), 0) // the one slot, held until s.Release below
		got := make(chan string, 10)
		waitFrom(s, "flood", 2, got)
		waitFrom(s, "flood", 0, got) // the lowest rank: evicted first
		waitFrom(s, "flood", 2, got)
		waitFrom(s, "flood", 2, got) // evicted second (newest at rank 2)
		if err := s.AcquireFrom(context.Background(), "flood", 2); !errors.Is(err, ErrFull) {
			t.Fatalf("fifth waiter of one sender in a list of 4: %v; want ErrFull", err)
		}
		waitFrom(s, "other", 0, got)
		if r := <-got; r != "flood: "+ErrFull.Error() {
			t.Fatalf("first eviction: %q", r)
		}
		waitFrom(s, "other", 0, got)
		if r := <-got; r != "flood: "+ErrFull.Error() {
			t.Fatalf("second eviction: %q", r)
		}
		if err := s.AcquireFrom(context.Background(), "other", 0); !errors.Is(err, ErrFull) {
			t.Fatalf("a sender at its share (2 of 4): %v; want ErrFull", err)
		}
		if busy, waiting := s.Stats(); busy != 1 || waiting != 4 {
			t.Fatalf("busy %d waiting %d; want 1 and 4", busy, waiting)
		}
		s.Release()
		var order []string
		for range 4 {
			order = append(order, <-got)
		}
		if want := []string{"flood", "flood", "other", "other"}; !slices.Equal(order, want) {
			t.Fatalf("admitted %v; want the rank-2 waiters first, then %v", order, want)
		}
	})
}

// TestFairConcurrent: many senders, ranks, cancellations and evictions
// never break the counts.
func TestFairConcurrent(t *testing.T) {
	s := New(2, 16, 0)
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%7 == 0 {
				cancel()
			}
			err := s.AcquireFrom(ctx, []string{"a", "b", "c", "a", "a"}[i%5], i%3)
			if err == nil {
				s.Release()
			}
		})
	}
	wg.Wait()
	if busy, waiting := s.Stats(); busy != 0 || waiting != 0 {
		t.Fatalf("after all: busy %d waiting %d", busy, waiting)
	}
	if len(s.ranks) != 0 || len(s.senders) != 0 {
		t.Fatalf("left behind: %d ranks, %d senders", len(s.ranks), len(s.senders))
	}
}
