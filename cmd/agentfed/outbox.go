package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/errtext"
	"github.com/spf13/cobra"
)

// outboxCall runs one federation.outbox operation.
func (f *clientFlags) outboxCall(ctx context.Context, p federation.OutboxParams) (json.RawMessage, error) {
	c, err := f.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out json.RawMessage
	if err := c.Call(ctx, federation.MethodOutbox, p, &out); err != nil {
		return nil, &exitError{code: exitFailed, err: err}
	}
	return out, nil
}

func newStatusCmd(s *streams) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status MESSAGE_ID",
		Short: "Show a durable message's state and, once delivered, its answer",
		Args:  argNames("MESSAGE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := f.outboxCall(cmd.Context(), federation.OutboxParams{Op: "status", MessageID: args[0]})
			if err != nil {
				return err
			}
			if f.json {
				fmt.Fprintln(s.out, indent(out))
				return nil
			}
			e, err := decode[federation.OutboxEntry](out)
			if err != nil {
				return err
			}
			p := &printer{w: s.out}
			p.f("%s: %s %s to %s, %d attempts, created %s\n", e.MessageID, e.State, e.Kind, orAny(e.PeerID), e.Attempts, time.UnixMilli(e.CreatedAt).Format(time.RFC3339))
			if e.Result != nil && e.State == federation.StateDelivered {
				p.line(e.Result)
			} else if e.LastError != nil {
				p.f("last error: %s: %s\n", e.LastError.Code, errtext.Plain(e.LastError.Message))
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newOutboxCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{Use: "outbox", Short: "List, retry, cancel and drop durable messages (dead letters included)"}
	var lf clientFlags
	var states []string
	var limit int
	var after string
	list := &cobra.Command{
		Use:   "list",
		Short: "List durable messages, oldest first, a page at a time (--state dead for the dead letters)",
		Args:  argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := lf.outboxCall(cmd.Context(), federation.OutboxParams{Op: "list", States: states, Limit: limit, After: after})
			var ee *exitError
			if errors.As(err, &ee) && gateway.CodeOf(err) == gateway.CodeInvalidParams {
				ee.flags = map[string]string{"limit": "--limit", "state": "--state", "after": "--after"}
			}
			if err != nil {
				return err
			}
			if lf.json {
				fmt.Fprintln(s.out, indent(out))
				return nil
			}
			l, err := decode[federation.OutboxList](out)
			if err != nil {
				return err
			}
			if len(l.Messages) == 0 {
				fmt.Fprintln(s.out, "no durable messages")
				return nil
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MESSAGE ID\tSTATE\tKIND\tPEER\tATTEMPTS\tLAST ERROR")
			for _, e := range l.Messages {
				last := ""
				if e.LastError != nil {
					last = e.LastError.Code
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", cell(e.MessageID), cell(string(e.State)), cell(string(e.Kind)), cell(e.PeerID), e.Attempts, cell(last))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if l.Next != "" {
				fmt.Fprintf(s.out, "more: repeat with --after %s\n", l.Next)
			}
			return nil
		},
	}
	lf.register(list, true)
	list.Flags().StringSliceVar(&states, "state", nil, "queued, delivered, failed or dead (repeat or comma-separate; default all)")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many, 1 to 1000 (a page also stops at 2 MiB)")
	list.Flags().StringVar(&after, "after", "", "list the page after this message id (the previous page's next)")

	for _, op := range []struct{ name, short, done string }{
		{"retry", "Queue a dead or failed message again, with a fresh ttl", "queued again"},
		{"cancel", "Take a queued message out of the queue for good (it becomes dead; drop it then)", "cancelled (dead, never delivered)"},
		{"drop", "Delete a message that is no longer queued (cancel a queued one first)", "dropped"},
	} {
		var f clientFlags
		c := &cobra.Command{
			Use: op.name + " MESSAGE_ID", Short: op.short, Args: argNames("MESSAGE_ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				out, err := f.outboxCall(cmd.Context(), federation.OutboxParams{Op: op.name, MessageID: args[0]})
				if err != nil {
					return err
				}
				if f.json {
					fmt.Fprintln(s.out, indent(out))
				} else {
					fmt.Fprintf(s.out, "%s: %s\n", args[0], op.done)
				}
				return nil
			},
		}
		f.register(c, true)
		cmd.AddCommand(c)
	}
	cmd.AddCommand(list)
	return cmd
}
