package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/config"
	"github.com/spf13/cobra"
)

func newDemoCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Start three gateways on free loopback ports, run every action once, and exit",
		Long: `Start an example federation in one process: main-agent-server with
two peers, a research gateway (web-search, summarization, fact-checking) and a
data gateway (data-analysis, visualization, statistics), each with an echo
agent. Run all eight actions from main through a real operator connection,
print what happened, shut everything down and exit 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), s)
		},
	}
}

type demoGateway struct {
	node *federation.Node
	ln   net.Listener
}

func runDemo(ctx context.Context, s *streams) error {
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
	listeners := make([]net.Listener, 3)
	for i := range listeners {
		if listeners[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	url := func(i int) string { return "ws://" + listeners[i].Addr().String() }
	var secret [16]byte
	rand.Read(secret[:])
	opToken := hex.EncodeToString(secret[:]) // as serve would generate
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
	fmt.Fprintf(s.out, "\nall eight actions worked across three gateways; shutting down\n")
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
