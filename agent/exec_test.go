//go:build unix

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
)

// sh returns the Command that runs script with /bin/sh; args become $1, $2...
func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		exec Exec
		want *federation.Answer
	}{
		{
			name: "reads the message on stdin",
			exec: Exec{Command: sh(`in=$(cat)
				case "$in" in
				*'"messageId":"m-1"'*'"content":"ping"'*) echo pong ;;
				*) echo "unexpected stdin: $in" ;;
				esac`)},
			want: &federation.Answer{Content: "pong"},
		},
		{
			name: "text is trimmed",
			exec: Exec{Command: sh(`printf '\n  two words \n\n'`)},
			want: &federation.Answer{Content: "two words"},
		},
		{
			name: "empty stdout",
			exec: Exec{Command: sh(`true`)},
			want: &federation.Answer{},
		},
		{
			name: "stderr ignored on success",
			exec: Exec{Command: sh(`echo warning >&2; echo ok`)},
			want: &federation.Answer{Content: "ok"},
		},
		{
			name: "JSON reply",
			exec: Exec{Command: sh(`echo '{"content": "hi", "context": {"n": 1, "tags": ["a"]}}'`)},
			want: &federation.Answer{Content: "hi", Context: map[string]any{"n": float64(1), "tags": []any{"a"}}},
		},
		{
			name: "JSON reply without context",
			exec: Exec{Command: sh(`echo '  {"content": ""}  '`)},
			want: &federation.Answer{Content: ""},
		},
		{
			name: "JSON without content is text",
			exec: Exec{Command: sh(`echo '{"result": 1}'`)},
			want: &federation.Answer{Content: `{"result": 1}`},
		},
		{
			name: "JSON with non-string content is text",
			exec: Exec{Command: sh(`echo '{"content": 5}'`)},
			want: &federation.Answer{Content: `{"content": 5}`},
		},
		{
			name: "JSON with non-object context is text",
			exec: Exec{Command: sh(`echo '{"content": "x", "context": 5}'`)},
			want: &federation.Answer{Content: `{"content": "x", "context": 5}`},
		},
		{
			name: "working directory",
			exec: Exec{Command: []string{"pwd", "-P"}, Dir: dir},
			want: &federation.Answer{Content: realDir},
		},
		{
			name: "relative program resolved against Dir",
			exec: Exec{Command: []string{"./agent.sh"}, Dir: dir},
			want: &federation.Answer{Content: "from script"},
		},
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.sh"), []byte("#!/bin/sh\necho from script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.exec.Handle(t.Context(), testMessage("ping"))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecStdinIsMessage(t *testing.T) {
	msg := testMessage("what arrived?")
	msg.Context = map[string]any{"session": "s-1"}
	// Echoed as is, the message would be read as a JSON reply.
	ans, err := (&Exec{Command: sh(`printf 'stdin: '; cat`)}).Handle(t.Context(), msg)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	var got federation.Message
	if err := json.Unmarshal([]byte(strings.TrimPrefix(ans.Content, "stdin: ")), &got); err != nil {
		t.Fatalf("stdin is not a JSON message: %v\n%s", err, ans.Content)
	}
	if diff := cmp.Diff(msg, &got); diff != "" {
		t.Errorf("message on stdin (-want +got):\n%s", diff)
	}
}

func TestExecConcurrent(t *testing.T) {
	e := &Exec{Command: sh(`in=$(cat); echo "${in#*\"content\":\"}" | cut -d'"' -f1`)}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			want := fmt.Sprintf("request %d", i)
			ans, err := e.Handle(t.Context(), testMessage(want))
			if err != nil {
				t.Errorf("Handle %d: %v", i, err)
				return
			}
			if ans.Content != want {
				t.Errorf("Handle %d: content %q, want %q", i, ans.Content, want)
			}
		})
	}
	wg.Wait()
}

func TestExecErrors(t *testing.T) {
	var longStderr strings.Builder
	longStderr.WriteString(`i=0; while [ $i -lt 5000 ]; do echo "line $i padding padding padding" >&2; i=$((i+1)); done;`)
	longStderr.WriteString(` echo END-MARKER >&2; exit 1`)
	tests := []struct {
		name    string
		exec    Exec
		want    []string // substrings of the error
		notWant []string
	}{
		{
			name: "exit status and stderr",
			exec: Exec{Command: sh(`echo partial; echo boom >&2; exit 3`)},
			want: []string{"federation: agent failed", `exec ["/bin/sh" "-c"`, "exit status 3", `stderr: "boom"`},
		},
		{
			name:    "stderr tail only",
			exec:    Exec{Command: sh(longStderr.String())},
			want:    []string{"exit status 1", `END-MARKER"`, `stderr: "…`},
			notWant: []string{"line 0 ", "line 2000 "},
		},
		{
			name: "killed by a signal",
			exec: Exec{Command: sh(`kill -9 $$`)},
			want: []string{"signal: killed"},
		},
		{
			name: "stdout too large",
			exec: Exec{Command: []string{"yes", "0123456789abcdef"}},
			want: []string{`exec ["yes" "0123456789abcdef"]`, "stdout exceeds 4 MiB"},
		},
		{
			name: "missing program",
			exec: Exec{Command: []string{"/nonexistent/agentfed-test-agent"}},
			want: []string{"/nonexistent/agentfed-test-agent", "no such file or directory"},
		},
		{
			name: "missing directory",
			exec: Exec{Command: []string{"true"}, Dir: "/nonexistent/agentfed-test-dir"},
			want: []string{"/nonexistent/agentfed-test-dir"},
		},
		{
			name: "empty command",
			exec: Exec{},
			want: []string{"Command is empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			ans, err := tt.exec.Handle(ctx, testMessage("ping"))
			if err == nil {
				t.Fatalf("Handle succeeded with %+v, want an error", ans)
			}
			if !errors.Is(err, federation.ErrAgentFailed) {
				t.Errorf("error %v does not wrap federation.ErrAgentFailed", err)
			}
			if code := gateway.CodeOf(err); code != federation.CodeAgentError {
				t.Errorf("CodeOf(err) = %s, want %s", code, federation.CodeAgentError)
			}
			msg := err.Error()
			for _, s := range tt.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(msg, s) {
					t.Errorf("error contains %q:\n%s", s, msg)
				}
			}
			if len(msg) > 2<<10 {
				t.Errorf("error is %d bytes long, want at most 2 KiB", len(msg))
			}
		})
	}
}

// TestExecTimeoutKillsProcess checks that Exec.Timeout ends the invocation and
// kills the program and the children it started.
func TestExecTimeoutKillsProcess(t *testing.T) {
	dir := t.TempDir()
	parentFile, childFile := filepath.Join(dir, "parent.pid"), filepath.Join(dir, "child.pid")
	e := &Exec{
		Command: sh(`echo $$ > "$1"; sleep 30 & echo $! > "$2"; echo working >&2; wait`, parentFile, childFile),
		Timeout: 500 * time.Millisecond,
	}
	start := time.Now()
	_, err := e.Handle(t.Context(), testMessage("ping"))
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Handle returned after %v, want about %v", elapsed, e.Timeout)
	}
	if !errors.Is(err, federation.ErrAgentFailed) {
		t.Fatalf("Handle error = %v, want one wrapping federation.ErrAgentFailed", err)
	}
	for _, s := range []string{"timed out after 500ms", `stderr: "working"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	for _, f := range []string{parentFile, childFile} {
		pid := readPID(t, f)
		tstest.WaitFor(t, 5*time.Second, func() error { return processGone(pid) })
	}
}

// TestExecCancelKillsProcess checks that a caller giving up kills the program
// and its children promptly, and is reported as the caller's error.
func TestExecCancelKillsProcess(t *testing.T) {
	dir := t.TempDir()
	parentFile, childFile := filepath.Join(dir, "parent.pid"), filepath.Join(dir, "child.pid")
	e := &Exec{Command: sh(`echo $$ > "$1"; sleep 30 & echo $! > "$2"; wait; echo late`, parentFile, childFile)}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.Handle(ctx, testMessage("ping"))
		done <- err
	}()
	var pids []int
	for _, f := range []string{parentFile, childFile} {
		tstest.WaitFor(t, 10*time.Second, func() error { _, err := parsePID(f); return err })
		pids = append(pids, readPID(t, f))
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Handle error = %v, want one wrapping context.Canceled", err)
		}
		if errors.Is(err, federation.ErrAgentFailed) {
			t.Errorf("Handle error = %v wraps ErrAgentFailed; the agent did not fail, the caller gave up", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Handle did not return within 5s of cancellation")
	}
	for _, pid := range pids {
		tstest.WaitFor(t, 5*time.Second, func() error { return processGone(pid) })
	}
}

// TestExecLeftoverProcess checks that a background process holding stdout
// open neither hangs the call nor outlives it.
func TestExecLeftoverProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	e := &Exec{Command: sh(`sleep 30 & echo $! > "$1"; echo done`, pidFile)}
	start := time.Now()
	ans, err := e.Handle(t.Context(), testMessage("ping"))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if elapsed := time.Since(start); elapsed > waitDelay+5*time.Second {
		t.Errorf("Handle returned after %v, want about %v", elapsed, waitDelay)
	}
	if diff := cmp.Diff(&federation.Answer{Content: "done"}, ans); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	pid := readPID(t, pidFile)
	tstest.WaitFor(t, 5*time.Second, func() error { return processGone(pid) })
}

func parsePID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	pid, err := parsePID(path)
	if err != nil {
		t.Fatalf("reading PID file: %v", err)
	}
	return pid
}

// processGone reports nil once pid no longer runs. A killed grandchild is
// re-parented to init, which may be slow to reap it (or, in a container,
// never do so), so a zombie counts as gone.
func processGone(pid int) error {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if stat, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); rerr == nil {
		// "pid (comm) state ..."; comm may itself contain ")".
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return nil
		}
	}
	return fmt.Errorf("process %d still exists (kill 0: %v)", pid, err)
}
