package federation_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	waitPeer(m.t, m.gws[from], to+"/"+to+"-agent")
}

// waitPeer waits until g lists a peer with id (a mesh agent: serverId/agentId).
func waitPeer(t *testing.T, g *gw, id string) {
	t.Helper()
	tstest.WaitFor(t, 10*time.Second, func() error {
		for _, p := range g.ListPeers().Peers {
			if p.ID == id {
				return nil
			}
		}
		return fmt.Errorf("%s does not list %s", g.ServerID(), id)
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
	// list_peers and query_capabilities show D's agent as reached across
	// the mesh, through B, in three relays.
	op := operator(t, m.gws["A"], "")
	var listed any
	for _, p := range mustTool(t, op, `{"action":"list_peers"}`)["peers"].([]any) {
		if at(p, "id") == "D/D-agent" {
			listed = p
		}
	}
	if at(listed, "source") != "mesh" || at(listed, "via") != "B" || at(listed, "hops") != 3.0 || fmt.Sprint(at(listed, "route")) != "[A B C D]" {
		t.Errorf("list_peers entry of D/D-agent: %v", listed)
	}
	caps := mustTool(t, op, `{"action":"query_capabilities","peerId":"D/D-agent"}`)
	if fmt.Sprint(caps["capabilities"]) != "[D-skill]" || caps["via"] != "B" || caps["hops"] != 3.0 {
		t.Errorf("query_capabilities of D/D-agent: %v", caps)
	}
}

func TestMeshDelegateByCapabilityAcrossLine(t *testing.T) {
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"C"}, "C": {"D"}}, nil, "A", "B", "C", "D")
	m.waitRoute("A", "D")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := m.gws["A"].Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"D-skill"}, Task: "task for D"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != federation.StatusOK || res.PeerID != "D/D-agent" {
		t.Fatalf("delegate: %s by %q %v", res.Status, res.PeerID, res.Error)
	}
	if want := []string{"A", "B", "C", "D"}; !slices.Equal(res.Route, want) {
		t.Errorf("route %v, want %v", res.Route, want)
	}
}

func TestMeshCutGivesClearErrorAndWithdraws(t *testing.T) {
	const heartbeat = 400 * time.Millisecond // room for a loaded machine
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"C"}, "C": {"D"}}, func(id string, cfg *federation.Config) {
		cfg.Gateway.HeartbeatMs = int(heartbeat.Milliseconds())
	}, "A", "B", "C", "D")
	m.waitRoute("A", "D")
	if res := m.send("A", "D", "before the cut"); res.Status != federation.StatusOK {
		t.Fatalf("before the cut: %v", res.Error)
	}
	m.gws["C"].stop(t)
	cut := time.Now()
	// Unless the withdrawal reached A already, the hop where it broke
	// answers.
	res, err := m.gws["A"].Send(context.Background(), federation.SendRequest{PeerID: "D/D-agent", Message: "after the cut"})
	switch {
	case err != nil:
		if code(err) != "UNKNOWN_PEER" || !strings.Contains(err.Error(), `no mesh route to agent "D-agent"`) {
			t.Fatalf("after the cut: %v", err)
		}
	case res.Status != federation.StatusError || res.Error.Code != "PEER_UNAVAILABLE" ||
		!strings.Contains(res.Error.Message, `"D-agent"`) || !strings.Contains(res.Error.Message, `hop "B"`):
		t.Fatalf("after the cut: %s %v; want PEER_UNAVAILABLE naming D-agent and hop B", res.Status, res.Error)
	}
	if took := time.Since(cut); took > heartbeat {
		t.Errorf("the error took %v, more than the heartbeat interval", took)
	}
	// The withdrawal reaches A: D is no longer listed, and send says so.
	tstest.WaitFor(t, 10*time.Second, func() error {
		for _, p := range m.gws["A"].ListPeers().Peers {
			if p.ID == "D/D-agent" || p.ID == "C/C-agent" {
				return fmt.Errorf("A still lists %s", p.ID)
			}
		}
		return nil
	})
	_, err = m.gws["A"].Send(context.Background(), federation.SendRequest{PeerID: "D/D-agent", Message: "x"})
	if code(err) != "UNKNOWN_PEER" || !strings.Contains(err.Error(), "no mesh route") {
		t.Errorf("send after withdrawal: %v", err)
	}
}

func TestMeshTakesSecondPathAfterCut(t *testing.T) {
	// A-B-C-D and A-E-F-D: both three relays; B's path is first by peer id.
	m := newMesh(t, map[string][]string{"A": {"B", "E"}, "B": {"C"}, "C": {"D"}, "E": {"F"}, "F": {"D"}}, nil,
		"A", "B", "C", "D", "E", "F")
	tstest.WaitFor(t, 10*time.Second, func() error {
		if vias := m.gws["A"].MeshVias("D", "D-agent"); !slices.Equal(vias, []string{"B", "E"}) {
			return fmt.Errorf("A's routes to D go through %v", vias)
		}
		return nil
	})
	if res := m.send("A", "D", "first"); !slices.Equal(res.Route, []string{"A", "B", "C", "D"}) {
		t.Fatalf("before the cut: %s %v route %v", res.Status, res.Error, res.Route)
	}
	m.gws["C"].stop(t)
	res := m.send("A", "D", "second")
	if res.Status != federation.StatusOK || !slices.Equal(res.Route, []string{"A", "E", "F", "D"}) {
		t.Fatalf("after the cut: %s %v route %v; want the path through E and F", res.Status, res.Error, res.Route)
	}
}

func TestMeshRingFormsNoLoop(t *testing.T) {
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"C"}, "C": {"A"}}, nil, "A", "B", "C")
	for _, from := range []string{"A", "B", "C"} {
		for _, to := range []string{"A", "B", "C"} {
			if from != to {
				m.waitRoute(from, to)
			}
		}
	}
	// Several more rounds of advertisements: still one route per other
	// gateway, none through the gateway itself.
	rounds := 0
	tstest.WaitFor(t, 10*time.Second, func() error {
		for _, id := range []string{"A", "B", "C"} {
			var mesh []federation.PeerInfo
			for _, p := range m.gws[id].ListPeers().Peers {
				if p.Source == federation.SourceMesh {
					mesh = append(mesh, p)
				}
			}
			if len(mesh) != 2 {
				t.Fatalf("%s lists %d mesh agents, want 2: %+v", id, len(mesh), mesh)
			}
			for _, p := range mesh {
				if slices.Contains(p.Route[1:], id) || len(p.Route) > 3 {
					t.Fatalf("%s has a looped or long route %v", id, p.Route)
				}
			}
		}
		if rounds++; rounds < 10 {
			return fmt.Errorf("round %d", rounds)
		}
		return nil
	})
	if res := m.send("A", "C", "around"); res.Status != federation.StatusOK || !slices.Equal(res.Route, []string{"A", "B", "C"}) {
		t.Fatalf("A → C: %s %v route %v", res.Status, res.Error, res.Route)
	}
	// A broadcast of scope mesh reaches B (a peer) and C (across B) once
	// each; the default scope only B.
	for scope, want := range map[string][]string{"": {"B"}, "mesh": {"B", "C/C-agent"}} {
		out, err := tool(t, operator(t, m.gws["A"], ""), fmt.Sprintf(`{"action":"broadcast","message":"to all","scope":%q}`, scope))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out.([]any) {
			if at(r, "status") != "ok" {
				t.Errorf("scope %q: %v", scope, r)
			}
			got = append(got, at(r, "peerId").(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("broadcast scope %q reached %v, want %v", scope, got, want)
		}
	}
}

func TestMeshHopChecksGrantsOfOrigin(t *testing.T) {
	// C lets B reach anything, but origin A only C's own agent.
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"C"}, "C": {"D"}}, func(id string, cfg *federation.Config) {
		if id == "C" {
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "A", Token: "token-of-a", AllowAgents: []string{"C-agent"}}}
		}
	}, "A", "B", "C", "D")
	m.waitRoute("A", "D")
	res := m.send("A", "D", "laundered?")
	if res.Status != federation.StatusError || res.Error.Code != "FORBIDDEN" ||
		!strings.Contains(res.Error.Message, `mesh hop "C" refuses origin gateway "A"`) {
		t.Fatalf("A → D through C: %s %v; want FORBIDDEN from hop C for origin A", res.Status, res.Error)
	}
	if res := m.send("B", "D", "B may"); res.Status != federation.StatusOK {
		t.Fatalf("B → D: %s %v", res.Status, res.Error)
	}
}

func TestMeshSealedContentUnreadableToHop(t *testing.T) {
	const secret = "the-secret-only-D-may-read"
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"D"}}, func(id string, cfg *federation.Config) {
		cfg.Audit.IncludeContent = true
	}, "A", "B", "D")
	m.waitRoute("A", "D")
	res := m.send("A", "D", secret)
	if res.Status != federation.StatusOK || !strings.Contains(res.Response.Content, secret) {
		t.Fatalf("A → D: %s %v %+v", res.Status, res.Error, res.Response)
	}
	read := func(id string) string {
		b, err := os.ReadFile(filepath.Join(m.gws[id].cfg.Storage.Dir, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tstest.WaitFor(t, 5*time.Second, func() error {
		if !strings.Contains(read("D"), secret) || !strings.Contains(read("B"), res.MessageID) {
			return fmt.Errorf("D's and B's audit logs have not logged the message yet")
		}
		return nil
	})
	if b := read("B"); strings.Contains(b, secret) {
		t.Fatalf("B's audit (content included) should log message %s without its content:\n%s", res.MessageID, b)
	}
}

func TestMeshPinnedKeyWinsOverCarriedKey(t *testing.T) {
	other := start(t, newConfig(t, "X", ""), listen(t), nil) // a key that is not A's
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"D"}}, func(id string, cfg *federation.Config) {
		if id == "D" {
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "A", Token: "token-of-a", PublicKey: other.Identity().SigningKey}}
		}
	}, "A", "B", "D")
	m.waitRoute("A", "D")
	res := m.send("A", "D", "signed by A")
	if res.Status != federation.StatusError || res.Error.Code != "BAD_SIGNATURE" || !strings.Contains(res.Error.Message, "pinned") {
		t.Fatalf("A → D with another key pinned for A at D: %s %v; want BAD_SIGNATURE", res.Status, res.Error)
	}
}

// hostileRoutes serves, as gateway serverID, federation.routes with the
// routes routes returns, and refuses everything else.
func hostileRoutes(t *testing.T, serverID string, routes func() []map[string]any) string {
	return hostileGateway(t, serverID, routes, nil)
}

func TestMeshBoundsHostileAdvertisements(t *testing.T) {
	floodRoutes := make([]map[string]any, 100_000)
	for i := range floodRoutes {
		floodRoutes[i] = map[string]any{"agentId": fmt.Sprint("a", i), "serverId": "H1", "path": []string{"H1"}}
	}
	flood := hostileRoutes(t, "H1", func() []map[string]any { return floodRoutes })
	many := hostileRoutes(t, "H2", func() []map[string]any {
		out := []map[string]any{
			{"agentId": "looped", "serverId": "Z", "path": []string{"H2", "A", "Z"}},
			{"agentId": "repeats", "serverId": "Z", "path": []string{"H2", "Y", "H2", "Z"}},
			{"agentId": "far", "serverId": "Z", "path": []string{"H2", "W", "X", "Y", "Z"}},
			{"agentId": "bad name", "serverId": "Z", "path": []string{"H2", "Z"}},
			{"agentId": "badcap", "serverId": "Z", "capabilities": []string{"x@not-semver"}, "path": []string{"H2", "Z"}},
			{"agentId": "ok", "serverId": "Z", "path": []string{"H2", "Z"}},
		}
		for i := range 5000 {
			out = append(out, map[string]any{"agentId": fmt.Sprint("b", i), "serverId": "H2", "path": []string{"H2"}})
		}
		return out
	})
	cfg := newConfig(t, "A", "A-agent")
	cfg.Federation.Mesh.Enabled = true
	cfg.Gateway.HeartbeatMs = 500 // the flood costs the test's CPU at every round
	cfg.Federation.Peers = []federation.PeerConfig{
		{ID: "h1", Name: "flood", URL: flood, AgentID: "a0"},
		{ID: "h2", Name: "many", URL: many, AgentID: "b0"},
	}
	a := start(t, cfg, listen(t), nil)
	var byVia map[string][]federation.PeerInfo
	tstest.WaitFor(t, 10*time.Second, func() error {
		byVia = map[string][]federation.PeerInfo{}
		for _, p := range a.ListPeers().Peers {
			if p.Source == federation.SourceMesh {
				byVia[p.Via] = append(byVia[p.Via], p)
			}
		}
		if !slices.ContainsFunc(byVia["h2"], func(p federation.PeerInfo) bool { return p.ID == "Z/ok" }) {
			return fmt.Errorf("A has not learned Z/ok from h2")
		}
		return nil
	})
	for via, ps := range byVia {
		if len(ps) > 1024 {
			t.Errorf("A keeps %d routes from %s; at most 1024 may be", len(ps), via)
		}
		for _, p := range ps {
			if p.AgentID == "looped" || p.AgentID == "repeats" || p.AgentID == "far" || p.AgentID == "badcap" || strings.Contains(p.ID, " ") {
				t.Errorf("A kept the route %s %v", p.ID, p.Route)
			}
		}
	}
	// A still answers.
	if res := a.ListPeers(); res.ServerID != "A" {
		t.Fatal(res)
	}
}

func TestMeshRelayRefusesBadRoutes(t *testing.T) {
	m := newMesh(t, nil, func(id string, cfg *federation.Config) {
		cfg.Federation.Mesh.Enabled = id == "B"
	}, "B", "Off")
	relayWith := func(g *gw, p federation.RelayParams) error {
		c, err := dialPeer(t, g, "A", "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var reply federation.Message
		return c.Call(ctx, federation.MethodRelay, &p, &reply)
	}
	msg := func(from string) *federation.Message {
		return federation.NewMessage(federation.TypeRequest, from, "operator", "B-agent", "hi")
	}
	tests := []struct {
		name      string
		g         *gw
		p         federation.RelayParams
		code, has string
	}{
		{"mesh off at the hop", m.gws["Off"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "Z", Route: []string{"A"}, Message: msg("A")},
			"FORBIDDEN", `does not relay across the mesh`},
		{"route through the hop itself", m.gws["B"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "B", Route: []string{"B", "A"}, Message: msg("B")},
			"HOP_LIMIT", "a loop"},
		{"route repeats a gateway", m.gws["B"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "B", Route: []string{"A", "X", "A"}, Message: msg("A")},
			"HOP_LIMIT", "a loop"},
		{"route past maxHops", m.gws["B"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "B", Route: []string{"W", "X", "Y", "A"}, Message: msg("W")},
			"HOP_LIMIT", "federation.mesh.maxHops"},
		{"route not ending at the sender", m.gws["B"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "B", Route: []string{"Z"}, Message: msg("Z")},
			"FORBIDDEN", `must end with the sending gateway "A"`},
		{"route not starting at the origin", m.gws["B"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "B", Route: []string{"X", "A"}, Message: msg("Y")},
			"FORBIDDEN", "must start with the message's fromServer"},
		{"no route to the target", m.gws["B"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "Z", Route: []string{"A"}, Message: msg("A")},
			"PEER_UNAVAILABLE", `hop "B" has no route to it`},
		{"unsigned at the destination", m.gws["B"], federation.RelayParams{TargetAgent: "B-agent", TargetServer: "B", Route: []string{"A"}, Message: msg("A")},
			"BAD_SIGNATURE", "none is offered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := relayWith(tt.g, tt.p)
			if code(err) != tt.code || !strings.Contains(fmt.Sprint(err), tt.has) {
				t.Errorf("got %v; want %s mentioning %q", err, tt.code, tt.has)
			}
		})
	}
}

func TestMeshRoutesFollowGrantsAndAdvertise(t *testing.T) {
	m := newMesh(t, map[string][]string{"B": {"C"}}, func(id string, cfg *federation.Config) {
		switch id {
		case "B":
			cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "B-private", Capabilities: []string{"ledger"}, Handler: federation.HandlerConfig{Type: "echo"}})
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "A", Token: "token-of-a", AllowAgents: []string{"B-agent", "C-agent"}}}
		case "Quiet":
			no := false
			cfg.Federation.Mesh.Advertise = &no
		}
	}, "B", "C", "Quiet")
	m.waitRoute("B", "C")
	routes := func(g *gw, as, token string) []string {
		t.Helper()
		c, err := dialPeer(t, g, as, token)
		if err != nil {
			t.Fatal(err)
		}
		var table federation.RouteTable
		if err := c.Call(context.Background(), federation.MethodRoutes, nil, &table); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range table.Routes {
			out = append(out, r.ServerID+"/"+r.AgentID+" "+strings.Join(r.Path, ","))
		}
		return out
	}
	if got, want := routes(m.gws["B"], "A", "token-of-a"), []string{"B/B-agent B", "C/C-agent B,C"}; !slices.Equal(got, want) {
		t.Errorf("B offers A (allowAgents B-agent, C-agent) %v, want %v", got, want)
	}
	if got, want := routes(m.gws["B"], "X", ""), []string{"B/B-agent B", "B/B-private B", "C/C-agent B,C"}; !slices.Equal(got, want) {
		t.Errorf("B offers X (no grants) %v, want %v", got, want)
	}
	if got, want := routes(m.gws["B"], "C", ""), []string{"B/B-agent B", "B/B-private B"}; !slices.Equal(got, want) {
		t.Errorf("B offers C %v, want %v: never a route through C itself", got, want)
	}
	if got := routes(m.gws["Quiet"], "X", ""); len(got) != 0 {
		t.Errorf("a gateway with mesh.advertise false offers %v", got)
	}
}

func TestMeshRequireAuthRefusesUnlistedOrigin(t *testing.T) {
	// D requires authentication and knows only C; A's messages cross C.
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"C"}, "C": {"D"}}, func(id string, cfg *federation.Config) {
		switch id {
		case "C":
			cfg.Federation.Peers[0].Token = "token-of-c"
		case "D":
			cfg.Federation.RequireAuth = true
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "C", Token: "token-of-c"}}
		}
	}, "A", "B", "C", "D")
	m.waitRoute("A", "D")
	res := m.send("A", "D", "from an origin D does not know")
	if res.Status != federation.StatusError || res.Error.Code != "FORBIDDEN" ||
		!strings.Contains(res.Error.Message, `mesh hop "D" refuses origin gateway "A": it has no gateway.auth.peers entry here and federation.requireAuth is true`) {
		t.Fatalf("A → D: %s %v", res.Status, res.Error)
	}
	if res := m.send("C", "D", "from C"); res.Status != federation.StatusOK {
		t.Fatalf("C → D: %s %v", res.Status, res.Error)
	}
}
