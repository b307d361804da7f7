package bench

import (
	"os"
	"slices"
	"time"
)

// fsyncTimes times n synced writes of one 4 KiB page into a new file under
// dir, the disk's cost of a commit that the durable figures depend on: a
// bbolt commit is two of them (its pages, then its meta page), and the
// same code accepts twice as many messages on a disk that syncs twice as
// fast. The host's disk is shared and its speed moves from hour to hour,
// so the durable measurement takes this baseline in the same run.
func fsyncTimes(dir string, n int) (latencies, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	l := make(latencies, 0, n)
	for i := range n {
		page[0] = byte(i)
		start := time.Now()
		if _, err := f.WriteAt(page, 0); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		l = append(l, time.Since(start))
	}
	slices.Sort(l)
	return l, nil
}
