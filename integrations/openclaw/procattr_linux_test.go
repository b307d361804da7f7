package openclaw_test

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd's process be killed when the test binary dies,
// even by a panic or SIGKILL, so that no OpenClaw gateway outlives it.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
