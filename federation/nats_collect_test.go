package federation

import (
	"slices"
	"testing"
	"time"
)

func TestCollectBatch(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 5 {
		ch <- i + 2
	}
	// Full at max: it does not wait out the hour.
	if got := collect(ch, 1, 3, time.Hour); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("collect up to 3 = %v, want [1 2 3]", got)
	}
	// Fewer than max: what came within wait.
	start := time.Now()
	if got := collect(ch, 0, 10, 20*time.Millisecond); !slices.Equal(got, []int{0, 4, 5, 6}) {
		t.Fatalf("collect within wait = %v, want [0 4 5 6]", got)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatalf("collect returned before its wait with room left")
	}
}
