//go:build linux

package agent

import (
	"os/exec"
	"runtime"
	"syscall"
)

// tieToGateway makes the kernel kill cmd's process when the gateway dies,
// even by SIGKILL, where nothing would run the process-group kill. Call it
// after setProcessGroup and before Start; call the returned func once Wait
// has returned.
//
// The parent-death signal fires when the thread that started the child
// exits, not the process (prctl(2), PR_SET_PDEATHSIG). The Go runtime ends a
// thread only when a goroutine locked to it exits still locked, so the
// calling goroutine is locked to its thread from Start until Wait has
// returned: no other goroutine can leave that thread locked and end it
// while the child runs (see golang/go#27505).
func tieToGateway(cmd *exec.Cmd) (unlock func()) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
