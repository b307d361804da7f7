package store

import "os"

// A written margin ahead of the data.
//
// bbolt grows its file with ftruncate, which leaves a hole: the pages a
// commit appends then land in blocks the file system has not allocated
// yet, and the commit's syncs (two: its pages, then its meta page) must
// also commit the file system's journal for the new blocks (ext4, xfs).
// Journal commits are shared by the whole file system, so two stores that
// commit at once (a gateway's outbox and a receiver's records, say) wait
// for each other's. A store that grows (its outbox filling while a peer is
// down, or before the first delivered entries are pruned) paid that on
// every commit: a synced page written into a hole took 1.5x one written
// over existing blocks on the VM of docs/BENCHMARKS.md ("Durable accepts
// with fsync"), and durable accepts rose by a third to three quarters with
// the margin.
//
// So the group commit keeps the file written, with zeros, some way past
// bbolt's high-water mark: a quarter of the data, at least marginMin and
// at most marginMax, topped up once less than half of it is left. The
// zeros cost one synced write per top-up and at most marginMax of disk.
// bbolt reads and writes no page past its high-water mark, and, finding
// the file already long enough, no longer truncates it to grow. A store
// that does not grow (its freed pages reused) never tops up.
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

// openMargin opens the file at path for the margin's writes; nil if it
// cannot (then there is no margin).
func openMargin(path string) *os.File {
	f, err := OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil
	}
	return f
}
