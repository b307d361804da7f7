package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/store"
	"github.com/spf13/cobra"
)

// httpURL turns the --gateway ws:// or wss:// URL into the http:// or
// https:// URL of path on the same listener.
func (f *clientFlags) httpURL(path string) (string, error) {
	if err := f.checkURL(); err != nil {
		return "", err
	}
	u := strings.TrimSuffix(f.gateway, "/")
	if rest, ok := strings.CutPrefix(u, "wss://"); ok {
		return "https://" + rest + path, nil
	}
	return "http://" + strings.TrimPrefix(u, "ws://") + path, nil
}

// get fetches path from the gateway's listener, with the operator token
// when auth is set, trying again while the connection is refused until
// --wait has passed.
func (f *clientFlags) get(ctx context.Context, path string, auth bool) (*http.Response, error) {
	if f.wait < 0 {
		return nil, usageErr("--wait %v: give a duration such as 10s, or 0 not to wait", f.wait)
	}
	target, err := f.httpURL(path)
	if err != nil {
		return nil, err
	}
	hc, err := f.httpClient()
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{}
	}
	deadline := time.Now().Add(f.wait)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, usageErr("--gateway %q: %v", f.gateway, err)
		}
		if auth {
			token, err := f.operatorToken()
			if err != nil {
				return nil, err
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
		}
		resp, err := hc.Do(req)
		left := time.Until(deadline)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || left <= 0 {
			if err != nil {
				return nil, f.dialProblem(ctx, err)
			}
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return nil, f.dialProblem(ctx, err)
		case <-time.After(min(delay, left)):
		}
	}
}

// probe is one health endpoint's answer.
type probe struct {
	OK     bool     `json:"ok"`
	Status int      `json:"status"`
	Checks []string `json:"checks,omitempty"`
}

func (f *clientFlags) probe(ctx context.Context, path string) (*probe, error) {
	resp, err := f.get(ctx, path, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	p := &probe{OK: resp.StatusCode == http.StatusOK, Status: resp.StatusCode}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasPrefix(line, "[") {
			p.Checks = append(p.Checks, termSafe(line))
		}
	}
	return p, nil
}

func newHealthCmd(s *streams) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show whether the gateway is alive and ready (its /healthz and /readyz)",
		Long: `Ask the gateway's /healthz (alive) and /readyz (storage open, listening,
peers loaded), which need no token, and print the answers. Exits 0 when the
gateway is ready, 1 when it is not or cannot be reached. With --wait, waits
for the gateway to start listening.`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			alive, err := f.probe(cmd.Context(), federation.PathHealthz)
			if err != nil {
				return err
			}
			ready, err := f.probe(cmd.Context(), federation.PathReadyz)
			if err != nil {
				return err
			}
			if f.json {
				b, _ := json.MarshalIndent(map[string]*probe{"alive": alive, "ready": ready}, "", "  ")
				fmt.Fprintln(s.out, string(b))
			} else {
				fmt.Fprintf(s.out, "alive: %s\nready: %s\n", yesNo(alive), yesNo(ready))
				for _, c := range ready.Checks {
					fmt.Fprintf(s.out, "  %s\n", c)
				}
			}
			if !alive.OK || !ready.OK {
				return &exitError{code: exitFailed, errCode: "NOT_READY", printed: !f.json,
					err: fmt.Errorf("gateway %s is not ready (readyz status %d)", f.gateway, ready.Status)}
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func yesNo(p *probe) string {
	if p.OK {
		return "yes"
	}
	return fmt.Sprintf("no (HTTP %d)", p.Status)
}

func newBackupCmd(s *streams) *cobra.Command {
	var (
		f   clientFlags
		dir string
	)
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the gateway's state database to FILE",
		Long: `Copy the gateway's state database (storage.dir/agentfed.db: its serverId,
dynamic peers, synced context, outbox and dead letters) to FILE while it runs.
The copy is taken in one read transaction: it is consistent, and the gateway
goes on serving. Needs the operator token, like every operator command.

With --dir, copy the database of a gateway that is not running
instead, without contacting any gateway.

To restore: stop the gateway, copy FILE to <storage.dir>/agentfed.db (mode
0600, owned by the gateway's user), and start it. Keep identity.key and
operator.token from storage.dir with the backup: the database does not hold
them, and peers pin the identity key.`,
		Args: argNames("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return backup(cmd.Context(), s, &f, dir, args[0])
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "", "copy the database of this storage.dir directly (the gateway must be stopped)")
	return cmd
}

// backup writes the copy to a temporary file next to file, checks that it
// opens as a database of this format, and renames it into place.
func backup(ctx context.Context, s *streams, f *clientFlags, dir, file string) error {
	if _, err := os.Stat(file); err == nil {
		return usageErr("%s exists; give a new file name (a backup never overwrites a file)", file)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".agentfed-backup-*")
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("create the backup next to %s: %w", file, err)}
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	size, err := copyStore(ctx, f, dir, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = store.VerifyCopy(tmp.Name())
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("backup to %s: %w", file, err)}
	}
	fmt.Fprintf(s.out, "backed up %d bytes to %s\n", size, file)
	return nil
}

func copyStore(ctx context.Context, f *clientFlags, dir string, w io.Writer) (int64, error) {
	if dir != "" {
		return store.BackupDir(dir, w)
	}
	resp, err := f.get(ctx, federation.PathBackup, true)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, &exitError{code: exitFailed, err: fmt.Errorf("gateway %s refused the backup (HTTP %d): %s",
			f.gateway, resp.StatusCode, termSafe(strings.TrimSpace(string(msg))))}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("copy cut short after %d bytes: %w", n, err)
	}
	return n, nil
}
