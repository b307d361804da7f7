//go:build !linux

package openclaw_test

import "os/exec"

// dieWithTest is a no-op where there is no parent-death signal; TestMain
// still stops the gateway.
func dieWithTest(*exec.Cmd) {}
