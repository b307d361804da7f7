package store

import (
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestTimeOrderedBucketsFillTheirPages: entries appended in group commits
// to a bucket whose keys are time-ordered (outbox, handled messages) fill
// their pages, so a commit writes as few pages as the entries need; other
// buckets keep bbolt's default of half-filled pages.
func TestTimeOrderedBucketsFillTheirPages(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 400) // about a durable message's entry
	for _, bucket := range []string{Outbox, Processed, Context} {
		for g := range 50 { // 50 group commits of 32 concurrent writes
			var wg sync.WaitGroup
			for i := range 32 {
				key := fmt.Sprintf("sender-%016d", g*32+i) // grows as a UUIDv7 does
				wg.Go(func() {
					if err := s.PutBatch(bucket, KV{Key: key, Value: value}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		var st bolt.BucketStats
		s.db.View(func(tx *bolt.Tx) error { st = tx.Bucket([]byte(bucket)).Stats(); return nil })
		fill := float64(st.LeafInuse) / float64(st.LeafAlloc)
		switch full := bucket != Context; {
		case full && fill < 0.9:
			t.Errorf("%s: leaf pages %.0f%% full (%d pages for %d keys); want at least 90%%", bucket, 100*fill, st.LeafPageN, st.KeyN)
		case !full && fill > 0.75:
			t.Errorf("%s: leaf pages %.0f%% full; want bbolt's default, about half", bucket, 100*fill)
		}
	}
}
