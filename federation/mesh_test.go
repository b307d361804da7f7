package federation_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// meshHeartbeatMs is the heartbeat of the mesh tests' gateways: routes are
// learned and withdrawn at this pace.
const meshHeartbeatMs = 100

// mesh builds gateways named by ids, each with an echo agent "<id>-agent"
// (capability "<id>-skill") and the mesh on, and links them: links[a]
// lists the gateways a has as peers. tune, when set, edits a config
// before its gateway starts.
type meshNet struct {
	t   *testing.T
	lns map[string]net.Listener
	gws map[string]*gw
}

func newMesh(t *testing.T, links map[string][]string, tune func(id string, cfg *federation.Config), ids ...string) *meshNet {
	t.Helper()
	m := &meshNet{t: t, lns: map[string]net.Listener{}, gws: map[string]*gw{}}
	for _, id := range ids {
		m.lns[id] = listen(t)
	}
	for _, id := range ids {
		cfg := newConfig(t, id, id+"-agent", id+"-skill")
		cfg.Federation.Mesh.Enabled = true
		cfg.Gateway.HeartbeatMs = meshHeartbeatMs
		for _, to := range links[id] {
			pc := peerConf(to, to+"-agent", m.lns[to], to+"-skill")
			pc.ServerID = to
			cfg.Federation.Peers = append(cfg.Federation.Peers, pc)
		}
		if tune != nil {
			tune(id, cfg)
		}
		m.gws[id] = start(t, cfg, m.lns[id], nil)
	}
	return m
}

// waitRoute waits until gateway from has a route to the agent of gateway to.
func (m *meshNet) waitRoute(from, to string) {
	m.t.Helper()
	id := to + "/" + to + "-agent"
	tstest.WaitFor(m.t, 10*time.Second, func() error {
		for _, p := range m.gws[from].ListPeers().Peers {
			if p.ID == id {
				return nil
			}
		}
		return fmt.Errorf("%s has no route to %s", from, id)
	})
}

func (m *meshNet) send(from, to, content string) *federation.Result {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := m.gws[from].Send(ctx, federation.SendRequest{PeerID: to + "/" + to + "-agent", Message: content})
	if err != nil {
		m.t.Fatalf("send from %s to %s: %v", from, to, err)
	}
	return res
}

func TestMeshLineSendCarriesRoute(t *testing.T) {
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"C"}, "C": {"D"}}, nil, "A", "B", "C", "D")
	m.waitRoute("A", "D")
	res := m.send("A", "D", "hello D")
	if res.Status != federation.StatusOK {
		t.Fatalf("send A → D: %s %v", res.Status, res.Error)
	}
	if want := []string{"A", "B", "C", "D"}; !slices.Equal(res.Route, want) {
		t.Errorf("route %v, want %v", res.Route, want)
	}
	if !strings.Contains(res.Response.Content, "hello D") || res.Response.FromServer != "D" {
		t.Errorf("response %+v is not D's echo", res.Response)
	}
}
