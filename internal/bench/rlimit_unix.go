//go:build unix

package bench

import (
	"syscall"
	"time"
)

// raiseFileLimit raises the soft limit on open files to need, or as far as
// the hard limit allows, and returns the soft limit now in force.
func raiseFileLimit(need uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if uint64(l.Cur) >= need {
		return uint64(l.Cur), nil
	}
	set(&l.Cur, min(need, uint64(l.Max)))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return uint64(l.Cur), nil
}

// set stores v in a limit, which is a uint64 on most systems and an int64
// on FreeBSD and DragonFly (where the unlimited -1 reads as the largest
// uint64).
func set[T int64 | uint64](limit *T, v uint64) { *limit = T(v) }

// processCPU returns the CPU time, user and system, this process has used.
func processCPU() (time.Duration, bool) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0, false
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()), true
}
