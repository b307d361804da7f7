package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/agentfed/agentfed/agent"
	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gw is one real gateway on a loopback port.
type gw struct {
	*federation.Node
	cfg *federation.Config
	ln  net.Listener
}

// listen reserves a loopback port, so that peers can name a gateway's URL
// before it starts.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func url(ln net.Listener) string { return "ws://" + ln.Addr().String() }

// newConfig returns an enabled config with an echo agent named agentID
// (none when agentID is empty), storing under a temp dir.
func newConfig(t testing.TB, serverID, agentID string, caps ...string) *federation.Config {
	cfg := &federation.Config{}
	cfg.Federation.Enabled = true
	cfg.Federation.ServerID = serverID
	cfg.Storage.Dir = t.TempDir()
	if agentID != "" {
		cfg.Agents = []federation.AgentConfig{{ID: agentID, Capabilities: caps, Description: "echoes " + agentID, Handler: federation.HandlerConfig{Type: "echo"}}}
	}
	return cfg
}

func peerConf(id, agentID string, ln net.Listener, caps ...string) federation.PeerConfig {
	return federation.PeerConfig{ID: id, Name: id + " gateway", URL: url(ln), AgentID: agentID, Capabilities: caps}
}

// start builds handlers for cfg's agents (overridden by extra) and serves
// the node on ln until the test ends.
func start(t testing.TB, cfg *federation.Config, ln net.Listener, extra map[string]federation.Handler) *gw {
	t.Helper()
	return startWith(t, cfg, ln, extra, nil)
}

// startWith is start with the node logging to log (nil: discard).
func startWith(t testing.TB, cfg *federation.Config, ln net.Listener, extra map[string]federation.Handler, log *slog.Logger) *gw {
	t.Helper()
	cfg.ApplyDefaults()
	handlers := map[string]federation.Handler{}
	for _, a := range cfg.Agents {
		h, err := agent.New(a)
		if err != nil {
			t.Fatal(err)
		}
		handlers[a.ID] = h
	}
	for id, h := range extra {
		handlers[id] = h
	}
	n, err := federation.New(cfg, federation.Options{Handlers: handlers, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Serve(ln); err != nil {
		t.Fatal(err)
	}
	g := &gw{Node: n, cfg: cfg, ln: ln}
	t.Cleanup(func() { g.stop(t) })
	return g
}

func (g *gw) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Errorf("shutdown %s: %v", g.ServerID(), err)
	}
}

// operator connects to g as the local CLI does.
func operator(t *testing.T, g *gw, token string) *gateway.Client {
	t.Helper()
	c, err := gateway.Dial(context.Background(), g.URL(), &gateway.DialOptions{Token: token, Client: gateway.ClientInfo{ID: gateway.ClientIDCLI, Mode: gateway.ClientModeCLI}})
	if err != nil {
		t.Fatalf("operator dial %s: %v", g.URL(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tool runs one action object through federation.tool and decodes the
// result into a generic value.
func tool(t *testing.T, c *gateway.Client, action string) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out any
	err := c.Call(ctx, federation.MethodTool, json.RawMessage(action), &out)
	return out, err
}

func mustTool(t *testing.T, c *gateway.Client, action string) map[string]any {
	t.Helper()
	out, err := tool(t, c, action)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	m, ok := out.(map[string]any)
	if !ok {
		t.Fatalf("%s: result %T is not an object: %v", action, out, out)
	}
	return m
}

func code(err error) string { return gateway.CodeOf(err) }

// at walks a decoded JSON value by object keys and array indexes.
var at = tstest.At

func errorsAs(err error, target **gateway.Error) bool { return errors.As(err, target) }

func detailsOf(err error) any {
	var e *gateway.Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}
