package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/agentfed/agentfed/gateway"
	"github.com/spf13/cobra"
)

// messageFlags are the options shared by send, delegate, broadcast and
// sync, named after the tool's parameters.
type messageFlags struct {
	context       string
	correlationID string
	priority      string
	timeoutMs     int
	fromAgent     string
	durable       bool
	ttlMs         int
}

func (m *messageFlags) register(cmd *cobra.Command, withContext bool) {
	if withContext {
		cmd.Flags().StringVar(&m.context, "context", "", "additional context, a JSON object")
	}
	cmd.Flags().StringVar(&m.correlationID, "correlation-id", "", "conversation id (generated when absent)")
	cmd.Flags().StringVar(&m.priority, "priority", "", "low, normal, high or urgent (default normal)")
	cmd.Flags().IntVar(&m.timeoutMs, "timeout-ms", 0, "timeout override in milliseconds")
	cmd.Flags().StringVar(&m.fromAgent, "from-agent", "", `sending agent id (default "operator")`)
	if withContext { // send, delegate, broadcast
		cmd.Flags().BoolVar(&m.durable, "durable", false, "queue on disk and deliver with retries; prints the messageId to check with 'agentfed status'")
		cmd.Flags().IntVar(&m.ttlMs, "ttl-ms", 0, "with --durable: move to the dead letters if not delivered within this many milliseconds")
	}
}

// apply adds the set options to an action object.
func (m *messageFlags) apply(a map[string]any) error {
	if m.context != "" {
		var ctx map[string]any
		if err := json.Unmarshal([]byte(m.context), &ctx); err != nil || ctx == nil {
			return usageErr("--context must be a JSON object: %.60q", m.context)
		}
		a["context"] = ctx
	}
	setIf(a, "correlationId", m.correlationID)
	setIf(a, "priority", m.priority)
	setIf(a, "fromAgent", m.fromAgent)
	if m.timeoutMs != 0 {
		a["timeoutMs"] = m.timeoutMs
	}
	if m.durable {
		a["durable"] = true
	}
	if m.ttlMs != 0 {
		if !m.durable {
			return usageErr("--ttl-ms applies only to durable messages; add --durable or leave --ttl-ms out")
		}
		a["ttlMs"] = m.ttlMs
	}
	return nil
}

// messageParams name the flags that set messageFlags' parameters.
var messageParams = map[string]string{"context": "--context", "correlationId": "--correlation-id", "priority": "--priority",
	"timeoutMs": "--timeout-ms", "fromAgent": "--from-agent", "durable": "--durable", "ttlMs": "--ttl-ms"}

// text refuses an empty MESSAGE or TASK argument, which would reach the
// peer's agent as empty content.
func text(name, v string) error {
	if v == "" {
		return usageErr("%s is empty; give the text for the peer's agent", name)
	}
	return nil
}

func setIf(a map[string]any, key, v string) {
	if v != "" {
		a[key] = v
	}
}

// actionCmd builds a subcommand that turns its arguments into one action
// object, runs it, and prints the result with show (or as JSON).
type actionCmd struct {
	use, short, example string
	args                cobra.PositionalArgs
	flags               func(cmd *cobra.Command)
	build               func(args []string) (map[string]any, error)
	show                func(p *printer, raw json.RawMessage) error
	// params maps the tool parameters that flags and arguments set to
	// their names, so that the gateway's errors name what the user typed.
	params map[string]string
}

func (a actionCmd) command(s *streams) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use: a.use, Short: a.short, Example: a.example, Args: a.args,
		RunE: func(cmd *cobra.Command, args []string) error {
			action, err := a.build(args)
			if err != nil {
				return err
			}
			out, err := f.call(cmd.Context(), action)
			var ee *exitError
			if errors.As(err, &ee) && gateway.CodeOf(err) == gateway.CodeInvalidParams {
				ee.flags = a.params
			}
			if err != nil {
				return err
			}
			if f.json {
				fmt.Fprintln(s.out, indent(out))
				return failedDeliveries(out)
			}
			if err := a.show(&printer{w: s.out}, out); err != nil {
				return err
			}
			return failedDeliveries(out)
		},
	}
	f.register(cmd, true)
	if a.flags != nil {
		a.flags(cmd)
	}
	return cmd
}

func newActionCmds(s *streams) []*cobra.Command {
	var (
		send, deleg, bcast, sync messageFlags
		caps                     []string
		strategy                 string
		scope                    string
		syncData                 string
		reg                      struct {
			id, name, url, agentID, token, description string
			caps                                       []string
			timeoutMs                                  int
			peerType                                   string
		}
		capsTimeout int
	)
	cmds := []actionCmd{{
		use: "send PEER_ID MESSAGE", short: "Send a message to one peer's agent and print its answer",
		example: `  agentfed send research-agent "Research quantum computing" --priority high`,
		args:    argNames("PEER_ID", "MESSAGE"),
		flags:   func(c *cobra.Command) { send.register(c, true) },
		build: func(args []string) (map[string]any, error) {
			if err := text("MESSAGE", args[1]); err != nil {
				return nil, err
			}
			a := map[string]any{"action": "send", "peerId": args[0], "message": args[1]}
			return a, send.apply(a)
		},
		show:   showResult,
		params: withParams(messageParams, "peerId", "PEER_ID"),
	}, {
		use: "delegate --capability CAP [--capability CAP ...] TASK", short: "Delegate a task to any peer with all the required capabilities",
		example: `  agentfed delegate --capability web-search --capability summarization "Summarize AI safety papers"`,
		args:    argNames("TASK"),
		flags: func(c *cobra.Command) {
			deleg.register(c, true)
			c.Flags().StringSliceVar(&caps, "capability", nil, "a required capability (repeat, or comma-separate)")
			c.Flags().StringVar(&strategy, "strategy", "", "round-robin, least-loaded, lowest-latency or random (default: the gateway's)")
			c.MarkFlagRequired("capability")
		},
		build: func(args []string) (map[string]any, error) {
			if err := text("TASK", args[0]); err != nil {
				return nil, err
			}
			a := map[string]any{"action": "delegate", "requiredCapabilities": caps, "task": args[0]}
			setIf(a, "strategy", strategy)
			return a, deleg.apply(a)
		},
		show:   showDelegate,
		params: withParams(messageParams, "requiredCapabilities", "--capability", "strategy", "--strategy"),
	}, {
		use: "broadcast MESSAGE", short: "Send a message to every enabled peer",
		example: `  agentfed broadcast "Maintenance in 1 hour" --priority urgent`,
		args:    argNames("MESSAGE"),
		flags: func(c *cobra.Command) {
			bcast.register(c, true)
			c.Flags().StringVar(&scope, "scope", "", "direct (default: every enabled peer) or mesh (every gateway reachable across federation.mesh, once)")
		},
		build: func(args []string) (map[string]any, error) {
			if err := text("MESSAGE", args[0]); err != nil {
				return nil, err
			}
			a := map[string]any{"action": "broadcast", "message": args[0]}
			setIf(a, "scope", scope)
			return a, bcast.apply(a)
		},
		show:   showBroadcast,
		params: withParams(messageParams, "scope", "--scope"),
	}, {
		use: "peers", short: "List peers, their capabilities and connection state (list_peers)",
		args:  argNames(),
		build: func([]string) (map[string]any, error) { return map[string]any{"action": "list_peers"}, nil },
		show:  showPeers,
	}, {
		use: "register", short: "Register a dynamic peer (register_peer)",
		example: `  agentfed register --peer-id temp-01 --peer-name "Temp agent" --peer-url ws://127.0.0.1:18791 --peer-agent-id agent-temp-01 --peer-capabilities analysis,reporting`,
		args:    argNames(),
		flags: func(c *cobra.Command) {
			c.Flags().StringVar(&reg.id, "peer-id", "", "unique id for the new peer (required)")
			c.Flags().StringVar(&reg.name, "peer-name", "", "human-readable name (required)")
			c.Flags().StringVar(&reg.url, "peer-url", "", "the peer gateway's ws:// or wss:// URL (required)")
			c.Flags().StringVar(&reg.agentID, "peer-agent-id", "", "agent id on the peer's gateway (required)")
			c.Flags().StringVar(&reg.token, "peer-token", "", "token to present to the peer")
			c.Flags().StringSliceVar(&reg.caps, "peer-capabilities", nil, "capabilities (repeat, or comma-separate)")
			c.Flags().StringVar(&reg.description, "peer-description", "", "what the peer specializes in")
			c.Flags().IntVar(&reg.timeoutMs, "peer-timeout-ms", 0, "request timeout override in milliseconds")
			c.Flags().StringVar(&reg.peerType, "peer-type", "", "gateway (default) or a2a: an A2A agent at an http(s):// --peer-url")
		},
		build: func([]string) (map[string]any, error) {
			a := map[string]any{"action": "register_peer", "peerId": reg.id, "peerName": reg.name, "peerUrl": reg.url, "peerAgentId": reg.agentID}
			setIf(a, "peerToken", reg.token)
			setIf(a, "peerDescription", reg.description)
			setIf(a, "peerType", reg.peerType)
			if len(reg.caps) > 0 {
				a["peerCapabilities"] = reg.caps
			}
			if reg.timeoutMs != 0 {
				a["peerTimeoutMs"] = reg.timeoutMs
			}
			return a, nil
		},
		show: showChange,
		params: map[string]string{"peerId": "--peer-id", "peerName": "--peer-name", "peerUrl": "--peer-url", "peerAgentId": "--peer-agent-id",
			"peerToken": "--peer-token", "peerCapabilities": "--peer-capabilities", "peerDescription": "--peer-description", "peerTimeoutMs": "--peer-timeout-ms", "peerType": "--peer-type"},
	}, {
		use: "unregister PEER_ID", short: "Remove a dynamic peer (unregister_peer)",
		args: argNames("PEER_ID"),
		build: func(args []string) (map[string]any, error) {
			return map[string]any{"action": "unregister_peer", "peerId": args[0]}, nil
		},
		show: showChange,
	}, {
		use: "sync PEER_ID --data JSON", short: "Share context data with a peer for a session (sync_context)",
		example: `  agentfed sync data-agent --data '{"projectId":"proj-123","phase":"analysis"}' --correlation-id proj-123`,
		args:    argNames("PEER_ID"),
		flags: func(c *cobra.Command) {
			sync.register(c, false)
			c.Flags().StringVar(&syncData, "data", "", "the syncData JSON object (required)")
			c.MarkFlagRequired("data")
		},
		build: func(args []string) (map[string]any, error) {
			var data map[string]any
			if err := json.Unmarshal([]byte(syncData), &data); err != nil || data == nil {
				return nil, usageErr("--data must be a JSON object: %.60q", syncData)
			}
			a := map[string]any{"action": "sync_context", "peerId": args[0], "syncData": data}
			return a, sync.apply(a)
		},
		show:   showSync,
		params: withParams(messageParams, "peerId", "PEER_ID", "syncData", "--data"),
	}, {
		use: "caps PEER_ID", short: "Ask a peer, live, what its agent can do (query_capabilities)",
		args: argNames("PEER_ID"),
		flags: func(c *cobra.Command) {
			c.Flags().IntVar(&capsTimeout, "timeout-ms", 0, "timeout override in milliseconds")
		},
		build: func(args []string) (map[string]any, error) {
			a := map[string]any{"action": "query_capabilities", "peerId": args[0]}
			if capsTimeout != 0 {
				a["timeoutMs"] = capsTimeout
			}
			return a, nil
		},
		show:   showCaps,
		params: map[string]string{"peerId": "PEER_ID", "timeoutMs": "--timeout-ms"},
	}}
	out := make([]*cobra.Command, len(cmds))
	for i, c := range cmds {
		out[i] = c.command(s)
	}
	return out
}

// withParams is base plus more parameter/name pairs.
func withParams(base map[string]string, pairs ...string) map[string]string {
	out := maps.Clone(base)
	for i := 0; i+1 < len(pairs); i += 2 {
		out[pairs[i]] = pairs[i+1]
	}
	return out
}
