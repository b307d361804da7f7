package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/config"
	"github.com/spf13/cobra"
)

func newDemoCmd(s *streams) *cobra.Command {
	var llm demoLLM
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start three gateways on free loopback ports, run every action once, and exit",
		Long: `Start an example federation in one process: main-agent-server with
two peers, a research gateway (web-search, summarization, fact-checking) and a
data gateway (data-analysis, visualization, statistics), each with an echo
agent. Run all eight actions from main through a real operator connection,
print what happened, shut everything down and exit 0.

With --llm URL (an OpenAI-compatible API base such as https://api.openai.com/v1
or http://127.0.0.1:11434/v1) a fourth gateway hosts an llm agent, peer
llm-agent of main, which may list peers, query capabilities and delegate on
main's behalf; the demo ends by asking it to delegate a task. The API key is
read from the variable --llm-key-env names.`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if llm.url != "" {
				if err := checkLLMURL(llm.url); err != nil {
					return err
				}
			}
			return runDemo(cmd.Context(), s, llm)
		},
	}
	cmd.Flags().StringVar(&llm.url, "llm", "", "add an llm agent using this OpenAI-compatible API base URL")
	cmd.Flags().StringVar(&llm.model, "llm-model", "gpt-4o-mini", "the model the llm agent uses")
	cmd.Flags().StringVar(&llm.keyEnv, "llm-key-env", "OPENAI_API_KEY", "the environment variable holding the API key (none needed for a local server)")
	return cmd
}

// demoLLM is the llm agent demo --llm adds.
type demoLLM struct{ url, model, keyEnv string }

func checkLLMURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr("--llm %q is not an http:// or https:// URL; give the API base, like http://127.0.0.1:11434/v1", clipFlag(raw))
	}
	return nil
}

func clipFlag(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

type demoGateway struct {
	node *federation.Node
	ln   net.Listener
}

func runDemo(ctx context.Context, s *streams, llm demoLLM) error {
	dir, err := os.MkdirTemp("", "agentfed-demo-")
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	defer os.RemoveAll(dir)

	var gws []*demoGateway
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, g := range gws {
			g.node.Shutdown(sctx)
		}
	}()
	listeners := make([]net.Listener, 3, 4)
	if llm.url != "" {
		listeners = listeners[:4]
	}
	for i := range listeners {
		if listeners[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	url := func(i int) string { return "ws://" + listeners[i].Addr().String() }
	var secret [16]byte
	rand.Read(secret[:])
	opToken := hex.EncodeToString(secret[:]) // as serve would generate
	rand.Read(secret[:])
	peerToken := hex.EncodeToString(secret[:]) // main-agent-server's, at llm-server
	specs := []struct {
		serverID, agentID string
		caps              []string
		peers             []federation.PeerConfig
	}{
		{"main-agent-server", "", nil, []federation.PeerConfig{
			{ID: "research-agent", Name: "Research Specialist", URL: url(1), AgentID: "agent-research-01",
				Capabilities: []string{"web-search", "summarization", "fact-checking"}, Description: "Specialized in research and information gathering", TimeoutMs: 45000},
			{ID: "data-agent", Name: "Data Analysis Agent", URL: url(2), AgentID: "agent-data-01",
				Capabilities: []string{"data-analysis", "visualization", "statistics"}, Description: "Specialized in data processing and analysis", TimeoutMs: 60000},
		}},
		{"research-server", "agent-research-01", []string{"web-search", "summarization", "fact-checking"}, nil},
		{"data-server", "agent-data-01", []string{"data-analysis", "visualization", "statistics"}, nil},
	}
	if llm.url != "" {
		specs[0].peers = append(specs[0].peers, federation.PeerConfig{ID: "llm-agent", Name: "LLM Agent", URL: url(3),
			AgentID: "agent-llm-01", Token: peerToken, Capabilities: []string{"planning"}, Description: "An LLM that plans and delegates", TimeoutMs: 120000})
		specs = append(specs, struct {
			serverID, agentID string
			caps              []string
			peers             []federation.PeerConfig
		}{"llm-server", "agent-llm-01", []string{"planning"}, specs[0].peers[:2]})
	}
	for i, sp := range specs {
		cfg := config.Default()
		cfg.Federation.ServerID = sp.serverID
		cfg.Federation.Peers = sp.peers
		cfg.Storage.Dir = fmt.Sprintf("%s/%s", dir, sp.serverID)
		cfg.Gateway.Auth.OperatorToken = opToken
		cfg.Agents[0].ID, cfg.Agents[0].Name, cfg.Agents[0].Capabilities = "echo-"+sp.serverID, "Echo agent", []string{"echo"}
		if sp.agentID != "" {
			cfg.Agents[0].ID, cfg.Agents[0].Capabilities = sp.agentID, sp.caps
		}
		if sp.serverID == "llm-server" {
			llm.configure(cfg, peerToken)
		}
		node, err := newNode(cfg, nil)
		if err != nil {
			return err
		}
		if err := node.Serve(listeners[i]); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
		gws = append(gws, &demoGateway{node: node, ln: listeners[i]})
		fmt.Fprintf(s.out, "started %-18s on %s\n", sp.serverID, url(i))
	}

	f := clientFlags{gateway: url(0), token: opToken}
	p := &printer{w: s.out}
	steps := []struct {
		title  string
		action string
		show   func(*printer, json.RawMessage) error
	}{
		{"list_peers", `{"action":"list_peers"}`, showPeers},
		{"send to research-agent", `{"action":"send","peerId":"research-agent","message":"Please research the latest developments in quantum computing","priority":"high","correlationId":"research-task-001"}`, showResult},
		{"delegate to whoever has web-search and summarization", `{"action":"delegate","requiredCapabilities":["web-search","summarization"],"task":"Find and summarize recent papers on AI safety"}`, showDelegate},
		{"broadcast", `{"action":"broadcast","message":"System maintenance scheduled in 1 hour","priority":"urgent"}`, showBroadcast},
		{"sync_context with data-agent", `{"action":"sync_context","peerId":"data-agent","correlationId":"healthcare-ai-2024","syncData":{"projectId":"healthcare-ai-2024","dataSource":"medical-records.csv"}}`, showSync},
		{"send in the synced session (the echo agent shows the merged context)", `{"action":"send","peerId":"data-agent","message":"Perform predictive analysis on synced data","correlationId":"healthcare-ai-2024"}`, showContextEcho},
		{"query_capabilities of research-agent", `{"action":"query_capabilities","peerId":"research-agent"}`, showCaps},
		{"register_peer temp-translator (the data gateway again)", fmt.Sprintf(`{"action":"register_peer","peerId":"temp-translator","peerName":"Translation Agent","peerUrl":%q,"peerAgentId":"agent-data-01","peerCapabilities":["translation"]}`, url(2)), showChange},
		{"send to temp-translator", `{"action":"send","peerId":"temp-translator","message":"Translate: Hello, world!"}`, showResult},
		{"unregister_peer temp-translator", `{"action":"unregister_peer","peerId":"temp-translator"}`, showChange},
	}
	if llm.url != "" {
		steps = append(steps, struct {
			title  string
			action string
			show   func(*printer, json.RawMessage) error
		}{"send to llm-agent: it finds a peer with statistics and delegates to it", `{"action":"send","peerId":"llm-agent","message":"Find a peer with the statistics capability and delegate this task to it: compute the mean of 3, 5 and 10. Then report its answer.","timeoutMs":120000}`, showResult})
	}
	for i, st := range steps {
		fmt.Fprintf(s.out, "\n[%d/%d] %s\n$ agentfed tool '%s'\n", i+1, len(steps), st.title, st.action)
		var action map[string]any
		json.Unmarshal([]byte(st.action), &action)
		out, err := f.call(ctx, action)
		if err != nil {
			return err
		}
		if err := st.show(p, out); err != nil {
			return err
		}
		if err := failedDeliveries(out); err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("demo step %q failed: %w", st.title, err)}
		}
	}
	fmt.Fprintf(s.out, "\nall eight actions worked across %d gateways; shutting down\n", len(gws))
	return nil
}

// showContextEcho prints a send result and the context the agent received.
func showContextEcho(p *printer, raw json.RawMessage) error {
	if err := showResult(p, raw); err != nil {
		return err
	}
	r, err := decode[federation.Result](raw)
	if err != nil || r.Response == nil {
		return err
	}
	ctx := map[string]any{}
	for k, v := range r.Response.Context {
		if k != "received" {
			ctx[k] = v
		}
	}
	b, _ := json.Marshal(ctx)
	p.f("context seen by the agent: %s\n", b)
	return nil
}

// configure makes cfg's agent the llm agent, and lets main-agent-server
// (authenticated by token) have it act on main's behalf.
func (l demoLLM) configure(cfg *federation.Config, token string) {
	a := &cfg.Agents[0]
	a.Name, a.Description = "LLM Agent", "An LLM that plans and delegates"
	a.Handler = federation.HandlerConfig{Type: "llm", BaseURL: l.url, Model: l.model, APIKey: os.Getenv(l.keyEnv), TimeoutMs: 110000,
		System: "You are a planning agent in an agent federation. Use the agent_federation tool to find peers and delegate work; answer briefly.",
		Tools:  federation.LLMToolsConfig{AllowActions: []string{"list_peers", "query_capabilities", "delegate"}}}
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-agent-server", Token: token,
		AllowActions: []string{"list_peers", "query_capabilities", "delegate"}}}
}
