//go:build !linux

package agent

import "os/exec"

// tieToGateway does nothing where there is no parent-death signal: a
// gateway killed with SIGKILL leaves its agent processes running until
// they exit by themselves.
func tieToGateway(*exec.Cmd) (unlock func()) { return func() {} }
