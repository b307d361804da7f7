package store

// A written margin ahead of the data.
//
// bbolt grows its file with ftruncate, which leaves a hole: the pages a
// commit appends then land in blocks the file system has not allocated
// yet, and the sync of those pages must also commit the file system's
// journal for the new blocks (ext4, where this was measured). A store that
// grows (its outbox filling while a peer is down, or before the first
// delivered entries are pruned) paid that on every commit: a synced write
// into a hole took about 1.5x one over written blocks on the VM of
// docs/BENCHMARKS.md ("A written margin"), and BenchmarkGrowingStores,
// two stores growing at once, wrote 1.12-1.43x faster with the margin (the
// whole durable bench moved within its noise).
//
// So the group commit keeps the file written, with zeros, some way past
// bbolt's high-water mark: a quarter of the data, at least marginMin and
// at most marginMax, topped up once less than half of it is left. The
// zeros cost one synced write per top-up (under the writer lock: up to
// half of marginMax, and the whole margin on the first commit after each
// Open, which does not know what was written before) and at most
// marginMax of disk. bbolt reads and writes no page past its high-water
// mark, and, finding the file already long enough, no longer truncates it
// to grow. Between starts, a store that does not grow (its freed pages
// reused) does not top up again. On a full disk, commits go on into the
// margin; a top-up that fails drops it until the next Open.
//
// Only on Linux (margin_linux.go): elsewhere bbolt may lock the file with
// fcntl, whose locks the close of a second descriptor would drop, and the
// gain was not measured.
const (
	marginMin = 1 << 20
	marginMax = 16 << 20
)

// zeros is what a top-up writes, a piece at a time.
var zeros [256 << 10]byte

// marginFor is the margin wanted past a high-water mark of hwm bytes.
func marginFor(hwm int64) int64 {
	return min(max(hwm/4, marginMin), marginMax)
}

// topUp writes zeros past hwm, bbolt's high-water mark, when less than
// half the margin is left. It runs inside a write transaction, so no
// commit writes the file meanwhile. The margin is only a speed-up: if it
// cannot be written (a full disk), the file gets its old size back and the
// store stops trying.
func (s *Store) topUp(hwm int64) {
	want := marginFor(hwm)
	if s.margin == nil || s.written-hwm >= want/2 {
		return
	}
	fi, err := s.margin.Stat()
	if err != nil {
		s.dropMargin(-1)
		return
	}
	end := hwm + want
	for off := max(s.written, hwm); off < end && err == nil; off += int64(len(zeros)) {
		_, err = s.margin.WriteAt(zeros[:min(int64(len(zeros)), end-off)], off)
	}
	if err == nil {
		err = s.margin.Sync()
	}
	if err != nil {
		s.dropMargin(fi.Size())
		return
	}
	s.written = end
}

// dropMargin stops topping up, first giving the file back its size before
// a failed top-up when size is not negative.
func (s *Store) dropMargin(size int64) {
	if size >= 0 {
		s.margin.Truncate(size)
	}
	s.margin.Close()
	s.margin = nil
}
