// Command agentfed-bench measures the federation against its performance
// targets, on loopback: gateways in this process, an echo agent, and the
// baselines the figures are compared with (a bare WebSocket echo and
// request-reply through an embedded nats-server). It is a separate command
// so that the agentfed binary operators deploy does not link the
// baselines:
//
//	go run ./cmd/agentfed-bench --duration 5s --json
//
// docs/BENCHMARKS.md explains the figures.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentfed/agentfed/internal/bench"
	"github.com/spf13/cobra"
)

// Exit codes, as agentfed's.
const (
	exitFailed = 1 // a measurement failed, or the report could not be written
	exitUsage  = 2 // bad flags
)

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := newCmd(stdout, stderr)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "agentfed-bench: %v\n", err)
	if e := (*exitError)(nil); errors.As(err, &e) {
		if e.code == exitUsage {
			fmt.Fprintln(stderr, "Run 'agentfed-bench --help' for usage.")
		}
		return e.code
	}
	return exitUsage // cobra's own flag errors
}

func newCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		duration    time.Duration
		asJSON      bool
		concurrency int
		plotFile    string
		only        []string
	)
	cmd := &cobra.Command{
		Use:   "agentfed-bench",
		Short: "Measure the federation against its performance targets, on loopback",
		Long: `Start gateways in this process on 127.0.0.1 (no configuration needed) and
measure, in one run: ` + strings.Join(bench.Measurements, ", ") + `.

relay-rtt is a sequential send through two gateways to an echo agent;
raw-ws-rtt (a bare WebSocket echo of the same frame) and nats-rtt (request-
reply through an embedded nats-server) are its baselines. Every target is
computed from figures of this same run and marked met or missed. Each
measurement runs for --duration after a short warm-up (broadcast twice:
relays in its process take turns with its broadcasts); a whole run takes
about nine times --duration. Progress goes to stderr.

Exit status 0 even when a target is missed; 1 when a measurement failed.`,
		Example: `  go run ./cmd/agentfed-bench
  go run ./cmd/agentfed-bench --duration 1s --only relay-rtt,raw-ws-rtt
  go run ./cmd/agentfed-bench --json > bench.json`,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration <= 0 {
				return usageErr("--duration %v: give a positive duration such as 5s", duration)
			}
			if concurrency <= 0 {
				return usageErr("--concurrency %d: give a positive number of requests in flight, such as 64", concurrency)
			}
			for _, name := range only {
				if !slices.Contains(bench.Measurements, name) {
					return usageErr("--only %q: pick from %s", name, strings.Join(bench.Measurements, ", "))
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return measure(ctx, bench.Options{Duration: duration, Only: only, Concurrency: concurrency, Progress: stderr}, asJSON, plotFile, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", bench.DefaultDuration, "measuring time of each measurement")
	f.BoolVar(&asJSON, "json", false, "print every figure and target as JSON")
	f.StringVar(&plotFile, "plot", "", "also render the round trips, throughput and broadcast growth as a PNG to this file")
	f.IntVar(&concurrency, "concurrency", bench.DefaultConcurrency, "requests in flight in throughput, and senders in durable (the targets are for 64)")
	f.StringSliceVar(&only, "only", nil, "run only these measurements (comma-separated): "+strings.Join(bench.Measurements, ", "))
	return cmd
}

// measure runs the benchmark and writes its report, and the plot if asked.
func measure(ctx context.Context, opts bench.Options, asJSON bool, plotFile string, stdout, stderr io.Writer) error {
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	if plotFile != "" {
		if err := writePlot(rep, plotFile); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
		fmt.Fprintf(stderr, "plot written to %s\n", plotFile)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%s failed; see the report", strings.Join(failed, ", "))}
	}
	return nil
}

// writePlot renders rep to path, replacing it only once the PNG is whole.
func writePlot(rep *bench.Report, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plot-*.png")
	if err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := rep.WritePlot(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	if err := errors.Join(tmp.Chmod(0o644), tmp.Close()); err != nil { // CreateTemp's 0600 is for secrets
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return nil
}
