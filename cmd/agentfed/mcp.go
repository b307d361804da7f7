package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/mcpserver"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"
)

func newMCPCmd(s *streams) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve the agent_federation tool to an MCP host (Claude, Cursor, IDEs) on stdio",
		Long: `Run a Model Context Protocol server on stdin and stdout for an agent host to
start. It offers one tool, agent_federation (input schema: 'agentfed schema'),
and the resources agentfed://peers and agentfed://outbox, and carries every
call to the gateway as an operator, like every other client command.

The gateway is dialled when the first call needs it and again after its
connection drops, so the host may start this before the gateway. A gateway
also serves MCP itself over streamable HTTP at /mcp.`,
		Example: `  agentfed mcp --gateway ws://127.0.0.1:18789 --token "$AGENTFED_TOKEN"
  # in an MCP host's configuration:
  {"mcpServers": {"agentfed": {"command": "agentfed", "args": ["mcp"], "env": {"AGENTFED_TOKEN": "..."}}}}`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkURL(); err != nil {
				return err
			}
			if _, err := f.httpClient(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			b := &clientBackend{flags: &f}
			defer b.close()
			srv := mcpserver.New(b, mcpOptions())
			err := srv.Run(ctx, &mcp.IOTransport{Reader: readCloser{s.in}, Writer: writeCloser{s.out}})
			if err != nil && ctx.Err() == nil && !errors.Is(err, mcp.ErrConnectionClosed) {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

// mcpOptions describe agentfed's MCP server on stdio, as federation describes it on /mcp.
func mcpOptions() mcpserver.Options {
	return mcpserver.Options{Name: "agentfed", Version: federation.Version, Tool: mcpserver.Tool{
		Name: federation.ToolName, Description: federation.ToolDescription, InputSchema: federation.ToolSchema()}}
}

// clientBackend serves MCP calls over one operator connection to the
// gateway, dialled on first use and again once it has ended.
type clientBackend struct {
	flags *clientFlags
	mu    sync.Mutex // guards c
	c     *gateway.Client
}

func (b *clientBackend) client(ctx context.Context) (*gateway.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil && b.c.Err() == nil {
		return b.c, nil
	}
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
	c, err := b.flags.dial(ctx)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			// The explanation (which gateway, what to do) as the message,
			// PEER_UNAVAILABLE as the code a host can act on.
			return nil, gateway.NewError(gateway.CodePeerUnavailable, ee.err.Error())
		}
		return nil, err
	}
	b.c = c
	return c, nil
}

func (b *clientBackend) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	c, err := b.client(ctx)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	err = c.Call(ctx, method, params, &out)
	return out, err
}

func (b *clientBackend) CallTool(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
	return b.call(ctx, federation.MethodTool, input)
}

func (b *clientBackend) ListOutbox(ctx context.Context) (json.RawMessage, error) {
	return b.call(ctx, federation.MethodOutbox, federation.OutboxParams{Op: "list"})
}

func (b *clientBackend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		b.c.Close()
	}
}

// readCloser and writeCloser give the command's streams the Close the
// transport wants; the process owns stdin and stdout.
type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }

type writeCloser struct{ io.Writer }

func (writeCloser) Close() error { return nil }
