//go:build unix

package federation

import "syscall"

// noFollow makes OpenFile fail rather than follow a symbolic link.
const noFollow = syscall.O_NOFOLLOW
