//go:build !unix

package store

// noFollow is 0 where open cannot refuse a symbolic link; OpenFile checks
// after opening instead.
const noFollow = 0
