//go:build !unix

package agent

import (
	"os"
	"os/exec"
)

// setProcessGroup leaves cmd as it is: without process groups, cancelling
// kills only the direct child.
func setProcessGroup(*exec.Cmd) {}

// killGroup does nothing where there are no process groups.
func killGroup(*os.Process) error { return nil }
