package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // an action failed, or the gateway could not be reached
	exitUsage  = 2 // bad flags, arguments or configuration
)

// exitError carries an exit code up to run; its message has already been
// printed when printed is true.
type exitError struct {
	code    int
	err     error
	printed bool
	errCode string            // the stable code in --json output; default: see stableCode
	help    bool              // a usage error: point at the command's --help
	flags   map[string]string // tool parameter -> the flag that set it, to name in the message
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...), help: true}
}

// streams are the command's standard streams, so tests can capture them.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &streams{in: stdin, out: stdout, err: stderr}
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	return report(cmd, args, err, stdout, stderr)
}

func newRoot(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "agentfed",
		Short: "Agent federation: agents on different servers find, message and delegate to each other",
		Long: `agentfed runs one gateway per server. Gateways connect to each other over
WebSocket and carry the agent_federation tool's eight actions between agents:
send, delegate, broadcast, list_peers, register_peer, unregister_peer,
sync_context and query_capabilities.

Start a gateway with 'agentfed serve' (no config file needed), then use it
with 'agentfed send', 'agentfed peers', ... or 'agentfed tool JSON'.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       federation.Version,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(
		newServeCmd(s), newConfigCmd(s), newInitCmd(s), newDemoCmd(s), newVersionCmd(s), newSchemaCmd(s),
		newToolCmd(s), newMCPCmd(s), newStatusCmd(s), newOutboxCmd(s), newIdentityCmd(s), newStoreCmd(s),
		newHealthCmd(s), newBackupCmd(s), newNATSCmd(s),
	)
	root.AddCommand(newActionCmds(s)...)
	return root
}

func newVersionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print agentfed's version",
		Args:  argNames(),
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(s.out, versionLine())
		},
	}
}

// versionLine is what both 'agentfed version' and 'agentfed --version' print.
func versionLine() string {
	return fmt.Sprintf("agentfed %s (gateway protocol %d)", federation.Version, gateway.ProtocolVersion)
}

func newSchemaCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the agent_federation tool's JSON Schema, for an LLM host",
		Args:  argNames(),
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(s.out, "%s", federation.ToolSchema())
		},
	}
}

// newLogger builds the daemon's logger from --log-level and --log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format %q: use text or json", format)
}
