package federation_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/agentfed/agentfed/federation"
)

// Two gateways in one process: "team" hosts an agent written in Go, and
// "main" sends it a message through the federation.
func Example() {
	dir, _ := os.MkdirTemp("", "agentfed-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// The team gateway hosts one agent: any federation.Handler.
	shout := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		return &federation.Answer{Content: strings.ToUpper(m.Content)}, nil
	})
	team := &federation.Config{}
	team.Federation.Enabled = true
	team.Federation.ServerID = "team-server"
	team.Agents = []federation.AgentConfig{{ID: "shouter", Capabilities: []string{"shouting"}}}
	team.Storage.Dir = dir + "/team"
	team.ApplyDefaults()
	teamNode, err := federation.New(team, federation.Options{Handlers: map[string]federation.Handler{"shouter": shout}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	teamNode.Serve(ln)
	defer teamNode.Shutdown(ctx)

	// The main gateway knows the team gateway as a peer.
	main := &federation.Config{}
	main.Federation.Enabled = true
	main.Federation.ServerID = "main-server"
	main.Federation.Peers = []federation.PeerConfig{{
		ID: "team", Name: "Team gateway", URL: teamNode.URL(), AgentID: "shouter", Capabilities: []string{"shouting"},
	}}
	main.Storage.Dir = dir + "/main"
	main.ApplyDefaults()
	mainNode, err := federation.New(main, federation.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	mainNode.Serve(must(net.Listen("tcp", "127.0.0.1:0")))
	defer mainNode.Shutdown(ctx)

	res, err := mainNode.Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"shouting"}, Task: "hello, federation"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status, res.PeerID, res.Response.FromServer, res.Response.Content)

	// The same action as the agent_federation tool takes it.
	out, _ := mainNode.Tool().CallJSON(ctx, []byte(`{"action":"query_capabilities","peerId":"team"}`))
	fmt.Println(string(out))
	// Output:
	// ok team team-server HELLO, FEDERATION
	// {"peerId":"team","peerName":"Team gateway","capabilities":["shouting"],"description":""}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
