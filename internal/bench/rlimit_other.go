//go:build !unix

package bench

import "time"

// raiseFileLimit assumes need descriptors are available where there is
// no RLIMIT_NOFILE.
func raiseFileLimit(need uint64) (uint64, error) { return need, nil }

// processCPU reports no CPU time where there is no getrusage.
func processCPU() (time.Duration, bool) { return 0, false }
