package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// waitDelay bounds how long Handle waits for an agent's stdout and stderr to
// close once its process has exited or been killed, so that a stray process
// holding them open cannot hang the call.
const waitDelay = time.Second

// Exec is an agent that runs a program for every message. The program gets
// the federation message as one line of JSON on stdin (the fields of
// [federation.Message]); its stdout is the reply, read as the package
// documentation describes, and its stderr is kept for error messages.
//
// A non-zero exit status, exceeding Timeout, or more than 4 MiB of stdout is
// a [*federation.AgentError] wrapping [federation.ErrAgentFailed]: its
// details name the command and quote the last 1 KiB of stderr, and stay on
// the gateway; its public part says only what happened ("failed: exit
// status 3"). When the caller's context ends first, Handle kills the
// program (on Unix its whole process group) and returns an error wrapping
// the context's error.
type Exec struct {
	// Command is the program and its arguments. It is run directly, not
	// through a shell; use []string{"/bin/sh", "-c", "..."} for one.
	// A relative program path is resolved against Dir.
	Command []string
	// Dir is the working directory; empty means the gateway's.
	Dir string
	// Timeout caps each invocation even when the caller would wait longer.
	// Zero means no cap beyond the caller's deadline.
	Timeout time.Duration
	// Env is set in the program's environment, on top of the few variables
	// of the gateway's that [BaseEnv] names. The program gets nothing else
	// of the gateway's environment.
	Env map[string]string
}

var _ federation.Handler = (*Exec)(nil)

// Handle implements [federation.Handler].
func (e *Exec) Handle(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
	if len(e.Command) == 0 {
		return nil, failed("is not configured", "%w: exec: Command is empty", federation.ErrAgentFailed)
	}
	if msg == nil {
		return nil, failed("got no message", "%w: exec %s: message is missing", federation.ErrInvalidParams, e.name())
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", e.name(), err)
	}
	in, err := json.Marshal(msg)
	if err != nil {
		return nil, failed("could not be given the message", "%w: exec %s: encode message: %w", federation.ErrInvalidParams, e.name(), err)
	}

	runCtx, cancel := withTimeout(ctx, e.Timeout)
	defer cancel()
	runCtx, abort := context.WithCancelCause(runCtx)
	defer abort(nil)

	cmd := exec.CommandContext(runCtx, e.Command[0], e.Command[1:]...)
	cmd.Dir = e.Dir
	cmd.Env = environ(e.Env)
	cmd.Stdin = bytes.NewReader(append(in, '\n'))
	stdout := &cappedBuffer{max: maxReply, full: func() { abort(errTooLarge) }}
	stderr := &tailBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	setProcessGroup(cmd)
	defer tieToGateway(cmd)() // until Wait has returned

	if err := cmd.Start(); err != nil {
		if cmd.Dir != "" {
			if _, serr := os.Stat(cmd.Dir); serr != nil {
				err = fmt.Errorf("working directory: %w", serr) // Start blames the program
			}
		}
		return nil, failed("could not be started", "%w: exec %s: %w", federation.ErrAgentFailed, e.name(), err)
	}
	err = cmd.Wait()
	killGroup(cmd.Process) // whatever the program left running
	return e.result(ctx, runCtx, err, stdout, stderr)
}

// result interprets how an invocation ended; ctx is the caller's, runCtx the
// one the process ran under.
func (e *Exec) result(ctx, runCtx context.Context, err error, stdout *cappedBuffer, stderr *tailBuffer) (*federation.Answer, error) {
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("exec %s: %w", e.name(), ctx.Err())
	case stdout.over:
		return nil, failed(fmt.Sprintf("wrote more than %d MiB to stdout", maxReply>>20),
			"%w: exec %s: stdout exceeds %d MiB; reply with less, or write the data to a file and reply with its path",
			federation.ErrAgentFailed, e.name(), maxReply>>20)
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		// ErrWaitDelay: the program succeeded but left a process holding
		// stdout open; what it wrote before exiting is the reply.
		return parseReply(stdout.buf.Bytes()), nil
	case errors.Is(context.Cause(runCtx), errInvocationTimeout):
		return nil, failed(fmt.Sprintf("timed out after %v", e.Timeout), "%w: exec %s: timed out after %v (handler.timeoutMs)%s",
			federation.ErrAgentFailed, e.name(), e.Timeout, stderrNote(stderr))
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return nil, failed("failed: "+exitErr.ProcessState.String(), "%w: exec %s: %s%s", federation.ErrAgentFailed, e.name(), exitErr, stderrNote(stderr))
	}
	return nil, failed("failed", "%w: exec %s: %w%s", federation.ErrAgentFailed, e.name(), err, stderrNote(stderr))
}

// stderrNote quotes the tail of a program's stderr for an error message.
func stderrNote(stderr *tailBuffer) string {
	s := tail(stderr.Bytes(), errTailLen)
	if s == "" {
		return ""
	}
	return fmt.Sprintf("; stderr: %q", s)
}

// name is the command as errors show it, shortened when long.
func (e *Exec) name() string {
	s := fmt.Sprintf("%q", e.Command)
	if len(s) > 200 {
		s = head([]byte(s), 200)
	}
	return s
}
