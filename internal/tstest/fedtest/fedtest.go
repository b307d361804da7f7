// Package fedtest starts real gateways in process: federation.Nodes served
// on loopback listeners, with the agents of their configuration, for the
// tests of every package and for the benchmark harness. Serve and Shutdown
// return errors (the benchmark is not a test); Start, Operator and Tool
// fail the test instead and clean up when it ends.
//
// It imports federation and agent, so their own package-internal tests
// cannot use it; their external tests (package federation_test) can. Its
// functions are safe for concurrent use.
package fedtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/agentfed/agentfed/agent"
	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// Serve applies cfg's defaults, builds its node with opts and serves it on
// ln. opts.Handlers are used as given; cfg's other agents get the
// handlers package agent builds for them. On failure ln is closed.
func Serve(cfg *federation.Config, ln net.Listener, opts federation.Options) (*federation.Node, error) {
	cfg.ApplyDefaults()
	handlers := map[string]federation.Handler{}
	for _, a := range cfg.Agents {
		if opts.Handlers[a.ID] != nil {
			continue
		}
		h, err := agent.New(a)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("gateway %s: %w", cfg.Federation.ServerID, err)
		}
		handlers[a.ID] = h
	}
	for id, h := range opts.Handlers {
		handlers[id] = h
	}
	opts.Handlers = handlers
	n, err := federation.New(cfg, opts)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("gateway %s: %w", cfg.Federation.ServerID, err)
	}
	if err := n.Serve(ln); err != nil {
		ln.Close()
		return nil, fmt.Errorf("gateway %s: %w", cfg.Federation.ServerID, errors.Join(err, Shutdown(n)))
	}
	return n, nil
}

// Shutdown shuts n down, giving it 10 seconds to drain.
func Shutdown(n *federation.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown %s: %w", n.ServerID(), err)
	}
	return nil
}

// Start is Serve for a test: it fails the test if the gateway does not
// start, and shuts it down when the test ends (an error then fails the
// test too).
func Start(t testing.TB, cfg *federation.Config, ln net.Listener, opts federation.Options) *federation.Node {
	t.Helper()
	n, err := Serve(cfg, ln, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Shutdown(n); err != nil {
			t.Error(err)
		}
	})
	return n
}

// Listen reserves a loopback port, so that peers can name a gateway's URL
// before it starts.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// URL is the ws:// URL of a gateway served on ln.
func URL(ln net.Listener) string { return "ws://" + ln.Addr().String() }

// Config returns an enabled configuration of the gateway serverID with an
// echo agent named agentID (none when agentID is empty) that has caps,
// storing under a directory of the test's.
func Config(t testing.TB, serverID, agentID string, caps ...string) *federation.Config {
	cfg := &federation.Config{}
	cfg.Federation.Enabled = true
	cfg.Federation.ServerID = serverID
	cfg.Storage.Dir = t.TempDir()
	if agentID != "" {
		cfg.Agents = []federation.AgentConfig{{ID: agentID, Capabilities: caps, Description: "echoes " + agentID, Handler: federation.HandlerConfig{Type: "echo"}}}
	}
	return cfg
}

// Peer is the configuration of the peer id whose gateway is served on ln,
// addressing its agent agentID.
func Peer(id, agentID string, ln net.Listener, caps ...string) federation.PeerConfig {
	return federation.PeerConfig{ID: id, Name: id + " gateway", URL: URL(ln), AgentID: agentID, Capabilities: caps}
}

// Operator connects to the gateway at url as the local CLI does, until the
// test ends.
func Operator(t testing.TB, url, token string) *gateway.Client {
	t.Helper()
	c, err := gateway.Dial(context.Background(), url, &gateway.DialOptions{Token: token, Client: gateway.ClientInfo{ID: gateway.ClientIDCLI, Mode: gateway.ClientModeCLI}})
	if err != nil {
		t.Fatalf("operator dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Tool runs one action object through federation.tool on c and decodes
// the result into a generic value.
func Tool(t testing.TB, c *gateway.Client, action string) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out any
	err := c.Call(ctx, federation.MethodTool, json.RawMessage(action), &out)
	return out, err
}

// MustTool is Tool for an action that must succeed with an object.
func MustTool(t testing.TB, c *gateway.Client, action string) map[string]any {
	t.Helper()
	out, err := Tool(t, c, action)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	m, ok := out.(map[string]any)
	if !ok {
		t.Fatalf("%s: result %T is not an object: %v", action, out, out)
	}
	return m
}
