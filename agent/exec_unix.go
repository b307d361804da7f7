//go:build unix

package agent

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup makes cmd lead a new process group and makes cancelling
// its context kill the whole group, not just the direct child.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
}

// killGroup kills the process group led by p. After p has been waited for,
// its id stays reserved while any member of the group lives, so this reaches
// only what p left behind.
func killGroup(p *os.Process) error {
	if p == nil {
		return os.ErrProcessDone
	}
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		if err == syscall.ESRCH {
			return os.ErrProcessDone
		}
		return err
	}
	return nil
}
