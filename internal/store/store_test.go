package store

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

func TestServerIDIsStable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.ServerID()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again, _ := s.ServerID()
	if first != again || !strings.HasPrefix(first, "agentfed-") {
		t.Fatalf("server id %q then %q; want the same generated id", first, again)
	}
}

func TestOpenRefusesDirInUse(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "in use by another agentfed gateway") {
		t.Fatalf("second Open: %v; want an in-use error", err)
	}
}

func TestPutGetDeleteForEach(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"b", "a"} {
		if err := s.Put(Peers, k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(Peers, "b"); err != nil {
		t.Fatal(err)
	}
	var got []string
	s.ForEach(Peers, func(k string, v []byte) error { got = append(got, k+"="+string(v)); return nil })
	if strings.Join(got, ",") != "a=va" {
		t.Fatalf("ForEach saw %v; want [a=va]", got)
	}
	if v, _ := s.Get(Peers, "b"); v != nil {
		t.Fatalf("deleted key still has %q", v)
	}
}

func TestPutBatchConcurrent(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errc := make(chan error, 100)
	for i := range 100 {
		go func() { errc <- s.PutBatch(Outbox, KV{Key: fmt.Sprint(i), Value: []byte("x")}) }()
	}
	for range 100 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	s.ForEach(Outbox, func(string, []byte) error { n++; return nil })
	if n != 100 {
		t.Fatalf("%d records after 100 batched puts", n)
	}
	if err := s.PutBatch(Outbox, KV{Key: "1"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(Outbox, "1"); v != nil {
		t.Fatal("a nil value should delete")
	}
}

func TestPutBatchBadBucketFailsAlone(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errc := make(chan error, 20)
	for i := range 20 {
		bucket := Outbox
		if i == 7 {
			bucket = "nope"
		}
		go func() { errc <- s.PutBatch(bucket, KV{Key: fmt.Sprint(i), Value: []byte("x")}) }()
	}
	failed := 0
	for range 20 {
		if <-errc != nil {
			failed++
		}
	}
	n := 0
	s.ForEach(Outbox, func(string, []byte) error { n++; return nil })
	if failed != 1 || n != 19 {
		t.Fatalf("%d failed, %d stored; want only the bad bucket's write to fail", failed, n)
	}
}

func BenchmarkPutBatchParallel(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetParallelism(32)
	var n atomic.Int64
	pages := pagesWritten(s)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("%016d", n.Add(1)) // time-ordered, as message ids are
			if err := s.PutBatch(Outbox, KV{Key: key, Value: make([]byte, 300)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(pagesWritten(s)-pages)/float64(b.N), "pages/op")
}

// pagesWritten is how many page writes s's transactions have made.
func pagesWritten(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}

func TestDeleteIf(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"keep-1", "old-1", "old-2", "keep-2"} {
		s.Put(Context, k, []byte(k))
	}
	deleted, err := s.DeleteIf(Context, func(k string, _ []byte) bool { return strings.HasPrefix(k, "old-") })
	if err != nil || strings.Join(deleted, ",") != "old-1,old-2" {
		t.Fatalf("DeleteIf = %v, %v", deleted, err)
	}
	var left []string
	s.ForEach(Context, func(k string, _ []byte) error { left = append(left, k); return nil })
	if strings.Join(left, ",") != "keep-1,keep-2" {
		t.Fatalf("left %v", left)
	}
	if deleted, err := s.DeleteIf(Context, func(string, []byte) bool { return false }); err != nil || deleted != nil {
		t.Fatalf("nothing to delete: %v %v", deleted, err)
	}
}

// TestScanPages: Scan starts after the given key, whether or not it is
// still stored, and stops when told.
func TestScanPages(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"a", "b", "d", "e"} {
		if err := s.Put(Outbox, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	page := func(after string, n int) (keys []string) {
		s.Scan(Outbox, after, func(k string, _ []byte) bool {
			keys = append(keys, k)
			return len(keys) < n
		})
		return keys
	}
	for _, tt := range []struct {
		after string
		n     int
		want  string
	}{
		{"", 2, "[a b]"},
		{"b", 2, "[d e]"},
		{"c", 10, "[d e]"}, // c was never stored (or was deleted): the page starts at d
		{"e", 10, "[]"},
	} {
		if got := fmt.Sprint(page(tt.after, tt.n)); got != tt.want {
			t.Errorf("after %q: %s; want %s", tt.after, got, tt.want)
		}
	}
}

// BenchmarkGrowingStores: two stores on the same disk grow at once, each
// with 32 concurrent writers, as a durable sender's outbox and its
// receiver's records do. "margin" is the store as it is; "hole" without
// its written margin (margin.go), as bbolt alone grows a file. Compare
// the two in one run: the disk's speed moves from minute to minute.
func BenchmarkGrowingStores(b *testing.B) {
	for _, name := range []string{"margin", "hole"} {
		b.Run(name, func(b *testing.B) {
			var stores [2]*Store
			for i := range stores {
				s, err := Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if name == "hole" {
					s.dropMargin(-1)
				}
				stores[i] = s
			}
			b.SetParallelism(32) // per GOMAXPROCS, shared by the two stores
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					key := fmt.Sprintf("%016d", i) // time-ordered, as message ids are
					if err := stores[i%2].PutBatch(Outbox, KV{Key: key, Value: make([]byte, 400)}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
