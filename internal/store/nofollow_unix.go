//go:build unix

package store

import "syscall"

// noFollow makes open fail on a symbolic link.
const noFollow = syscall.O_NOFOLLOW
