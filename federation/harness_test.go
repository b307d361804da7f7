package federation_test

import (
	"errors"
	"log/slog"
	"net"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/agentfed/agentfed/internal/tstest/fedtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gw is one real gateway on a loopback port.
type gw struct {
	*federation.Node
	cfg *federation.Config
	ln  net.Listener
}

// The in-process gateways of these tests are fedtest's; short names for
// its helpers.
var (
	listen    = fedtest.Listen   // reserves a loopback port
	url       = fedtest.URL      // the ws:// URL of a listener
	newConfig = fedtest.Config   // an enabled config with an echo agent
	peerConf  = fedtest.Peer     // a peer served on a listener
	tool      = fedtest.Tool     // one action through federation.tool
	mustTool  = fedtest.MustTool // one action that must succeed with an object
)

// start builds handlers for cfg's agents (overridden by extra) and serves
// the node on ln until the test ends.
func start(t testing.TB, cfg *federation.Config, ln net.Listener, extra map[string]federation.Handler) *gw {
	t.Helper()
	return startWith(t, cfg, ln, extra, nil)
}

// startWith is start with the node logging to log (nil: discard).
func startWith(t testing.TB, cfg *federation.Config, ln net.Listener, extra map[string]federation.Handler, log *slog.Logger) *gw {
	t.Helper()
	return &gw{Node: fedtest.Start(t, cfg, ln, federation.Options{Handlers: extra, Logger: log}), cfg: cfg, ln: ln}
}

// stop shuts g down before the test ends.
func (g *gw) stop(t testing.TB) {
	if err := fedtest.Shutdown(g.Node); err != nil {
		t.Error(err)
	}
}

// operator connects to g as the local CLI does.
func operator(t *testing.T, g *gw, token string) *gateway.Client {
	t.Helper()
	return fedtest.Operator(t, g.URL(), token)
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
