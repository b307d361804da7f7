package federation

import "time"

// collect gathers a batch: first, then what ch yields within wait, up to
// max in all.
func collect[T any](ch <-chan T, first T, max int, wait time.Duration) []T {
	batch := []T{first}
	t := time.NewTimer(wait)
	defer t.Stop()
	for len(batch) < max {
		select {
		case v := <-ch:
			batch = append(batch, v)
		case <-t.C:
			return batch
		}
	}
	return batch
}
