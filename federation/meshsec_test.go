package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// Hostile gateways in and around the mesh: a hop that forges its origin,
// replays across paths or swaps keys, and a peer advertising routes.

// meshRelay sends p to g over a peer connection that says it is gateway as
// (with token, if any), as a hop of the mesh would.
func meshRelay(t *testing.T, g *gw, as, token string, p *federation.RelayParams) (*federation.Message, error) {
	t.Helper()
	c, err := dialPeer(t, g, as, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var reply federation.Message
	return &reply, c.Call(ctx, federation.MethodRelay, p, &reply)
}

// signedAs returns a request from gateway from to agent, signed by key.
func signedAs(t *testing.T, key *federation.Identity, from, agent, content string) *federation.Message {
	t.Helper()
	msg := federation.NewMessage(federation.TypeRequest, from, "operator", agent, content)
	if err := key.Sign(msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

func newKey(t *testing.T) *federation.Identity {
	t.Helper()
	id, err := federation.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// hostileGateway serves, as gateway serverID, federation.routes with the
// routes routes returns, and refuses relays after passing their params to
// onRelay (if set). It returns its URL.
func hostileGateway(t *testing.T, serverID string, routes func() []map[string]any, onRelay func(json.RawMessage)) string {
	t.Helper()
	s := &gateway.Server{ServerID: serverID, Handler: gateway.HandlerFunc(
		func(ctx context.Context, _ *gateway.Identity, method string, params json.RawMessage) (any, error) {
			switch method {
			case federation.MethodRoutes:
				return map[string]any{"serverId": serverID, "routes": routes()}, nil
			case federation.MethodRelay:
				if onRelay != nil {
					onRelay(params)
				}
			}
			return nil, gateway.NewError(gateway.CodeInvalidRequest, "not here")
		})}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

func TestMeshHopCannotForgeItsOrigin(t *testing.T) {
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"C"}, "C": {"D"}}, nil, "A", "B", "C", "D")
	m.waitRoute("A", "D")
	if res := m.send("A", "D", "genuine"); res.Status != federation.StatusOK {
		t.Fatalf("A → D: %s %v", res.Status, res.Error)
	}
	// B now passes off a request of its own as A's: signed with its key,
	// which it offers as A's.
	evil := newKey(t)
	forged := func() *federation.RelayParams {
		return &federation.RelayParams{TargetAgent: "D-agent", TargetServer: "D", Route: []string{"A", "B"},
			OriginKey: evil.Public().SigningKey, Message: signedAs(t, evil, "A", "D-agent", "forged")}
	}
	_, err := meshRelay(t, m.gws["C"], "B", "", forged())
	if code(err) != "BAD_SIGNATURE" || !strings.Contains(fmt.Sprint(err), `gateway "A"`) || !strings.Contains(fmt.Sprint(err), "first seen") {
		t.Errorf("hop C took a request B signed as origin A: %v; want BAD_SIGNATURE naming A", err)
	}
	// Nor can C's neighbour hand it straight to the destination.
	p := forged()
	p.Route = []string{"A", "C"}
	_, err = meshRelay(t, m.gws["D"], "C", "", p)
	if code(err) != "BAD_SIGNATURE" || !strings.Contains(fmt.Sprint(err), `gateway "A"`) {
		t.Errorf("destination D took a request signed as origin A by another key: %v; want BAD_SIGNATURE naming A", err)
	}
	// Without an originKey, the key first seen for A is the one checked.
	p = forged()
	p.OriginKey = ""
	if _, err = meshRelay(t, m.gws["C"], "B", "", p); code(err) != "BAD_SIGNATURE" || !strings.Contains(fmt.Sprint(err), "does not verify") {
		t.Errorf("hop C, forged message without originKey: %v; want BAD_SIGNATURE", err)
	}
	// A itself still gets through, and the first-seen keys outlive a
	// restart of D (the store keeps them).
	if res := m.send("A", "D", "still A"); res.Status != federation.StatusOK {
		t.Fatalf("A → D after the forgeries: %s %v", res.Status, res.Error)
	}
	d := m.gws["D"]
	d.stop(t)
	m.gws["D"] = start(t, d.cfg, listen(t), nil)
	p = forged()
	p.Route = []string{"A", "C"}
	if _, err = meshRelay(t, m.gws["D"], "C", "", p); code(err) != "BAD_SIGNATURE" || !strings.Contains(fmt.Sprint(err), "first seen") {
		t.Errorf("D after a restart took a request signed as A by another key: %v; want BAD_SIGNATURE", err)
	}
}

func TestMeshRequireKnownKeys(t *testing.T) {
	// D knows only A's key (pinned); E's is learned through the mesh only.
	var aKey string
	m := newMesh(t, map[string][]string{"A": {"B"}, "E": {"B"}, "F": {"B"}, "B": {"D"}}, func(id string, cfg *federation.Config) {
		switch id {
		case "A":
			ident, err := federation.LoadIdentity(cfg.Storage.Dir)
			if err != nil {
				t.Fatal(err)
			}
			aKey = ident.Public().SigningKey
		case "D":
			cfg.Federation.Mesh.RequireKnownKeys = true
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "A", Token: "token-of-a", PublicKey: aKey}}
		case "F":
			cfg.Federation.Mesh.RequireKnownKeys = true
		}
	}, "A", "E", "F", "B", "D")
	m.waitRoute("A", "D")
	m.waitRoute("E", "D")
	m.waitRoute("F", "D")
	if res := m.send("A", "D", "pinned origin"); res.Status != federation.StatusOK {
		t.Fatalf("A → D (A's key pinned at D): %s %v", res.Status, res.Error)
	}
	res := m.send("E", "D", "origin known only by the mesh")
	if res.Status != federation.StatusError || res.Error.Code != "BAD_SIGNATURE" ||
		!strings.Contains(res.Error.Message, `no signing key is known here for gateway "E"`) || !strings.Contains(res.Error.Message, "requireKnownKeys") {
		t.Errorf("E → D under requireKnownKeys at D: %s %v", res.Status, res.Error)
	}
	// The sender's side: F does not send to a gateway whose key only the
	// mesh vouches for.
	res = m.send("F", "D", "destination known only by the mesh")
	if res.Status != federation.StatusError || res.Error.Code != "BAD_SIGNATURE" || !strings.Contains(res.Error.Message, `gateway "D"`) {
		t.Errorf("F → D under requireKnownKeys at F: %s %v", res.Status, res.Error)
	}
}

func TestMeshReplayAcrossPathsIsRefused(t *testing.T) {
	// D knows C by token, E not at all: the same message from origin X
	// arrives by both.
	m := newMesh(t, nil, func(id string, cfg *federation.Config) {
		cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "C", Token: "token-of-c"}}
	}, "D")
	x := newKey(t)
	msg := signedAs(t, x, "X", "D-agent", "once")
	via := func(hop, token string) error {
		_, err := meshRelay(t, m.gws["D"], hop, token, &federation.RelayParams{TargetAgent: "D-agent", TargetServer: "D",
			Route: []string{"X", hop}, OriginKey: x.Public().SigningKey, Message: msg})
		return err
	}
	if err := via("C", "token-of-c"); err != nil {
		t.Fatalf("first copy through C: %v", err)
	}
	if err := via("E", ""); code(err) != "REPLAYED" {
		t.Errorf("second copy through E: %v; want REPLAYED", err)
	}
	if err := via("C", "token-of-c"); code(err) != "REPLAYED" {
		t.Errorf("third copy through C: %v; want REPLAYED", err)
	}
}

func TestMeshRefusesSwappedEncryptionKey(t *testing.T) {
	d := start(t, newConfig(t, "D", "D-agent"), listen(t), nil)
	evil := newKey(t)
	// H relays D's route but puts its own encryption key in it, keeping
	// D's signing key (and proof), or dropping the proof.
	h := hostileRoutes(t, "H", func() []map[string]any {
		return []map[string]any{
			{"agentId": "swapped", "serverId": "D", "path": []string{"H", "D"}, "signingKey": d.Identity().SigningKey, "encryptionKey": evil.Public().EncryptionKey},
			{"agentId": "ok", "serverId": "D", "path": []string{"H", "D"}, "signingKey": evil.Public().SigningKey},
		}
	})
	cfg := newConfig(t, "A", "A-agent")
	cfg.Federation.Mesh.Enabled = true
	cfg.Gateway.HeartbeatMs = meshHeartbeatMs
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "h", Name: "hostile", URL: h, AgentID: "ok", ServerID: "H"}}
	a := start(t, cfg, listen(t), nil)
	waitPeer(t, a, "D/ok")
	for _, p := range a.ListPeers().Peers {
		if p.ID == "D/swapped" {
			t.Errorf("A kept a route whose encryptionKey is not D's (no keyProof by D's signing key): %+v", p)
		}
	}
}

func TestMeshDeliveriesCountForTheFirstHop(t *testing.T) {
	m := newMesh(t, map[string][]string{"A": {"B"}, "B": {"D"}}, func(id string, cfg *federation.Config) {
		cfg.Gateway.Auth.OperatorToken = "op-token"
	}, "A", "B", "D")
	m.waitRoute("A", "D")
	for range 2 {
		if res := m.send("A", "D", "counted"); res.Status != federation.StatusOK {
			t.Fatalf("A → D: %s %v", res.Status, res.Error)
		}
	}
	status, scrape := httpGet(t, m.gws["A"], federation.PathMetrics, "op-token")
	if status != http.StatusOK {
		t.Fatalf("scrape A: %d %s", status, scrape)
	}
	if got := metricLine(scrape, `agentfed_relay_out_duration_seconds_count{peer="B"}`); got != "2" {
		t.Errorf("A's relay_out_duration_seconds_count of first hop B = %q; want 2 (mesh deliveries count for their first hop)", got)
	}
	var lines []string
	for _, l := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(l, "agentfed_relays_out_total{") && strings.Contains(l, `peer="B"`) && strings.Contains(l, `outcome="ok"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " 2") {
		t.Errorf("A's relays_out_total of first hop B: %v; want one series, 2", lines)
	}
	if slices.ContainsFunc(strings.Split(scrape, "\n"), func(l string) bool { return strings.Contains(l, `peer="D/`) }) {
		t.Errorf("A labels metrics with mesh destinations (a label a remote chooses)")
	}
}

func TestMeshBroadcastIsBounded(t *testing.T) {
	// H advertises 300 gateways behind it and counts the relays it gets.
	evil := newKey(t)
	var relays atomic.Int64
	h := hostileGateway(t, "H", func() []map[string]any {
		routes := []map[string]any{{"agentId": "h-agent", "serverId": "H", "path": []string{"H"}}}
		for i := range 300 {
			g := fmt.Sprintf("G%03d", i)
			routes = append(routes, map[string]any{"agentId": "agent", "serverId": g, "path": []string{"H", g},
				"signingKey": evil.Public().SigningKey, "encryptionKey": evil.Public().EncryptionKey, "keyProof": evil.KeyProof(g)})
		}
		return routes
	}, func(json.RawMessage) { relays.Add(1) })
	cfg := newConfig(t, "A", "A-agent")
	cfg.Federation.Mesh.Enabled = true
	cfg.Gateway.HeartbeatMs = meshHeartbeatMs
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "h", Name: "hostile", URL: h, AgentID: "h-agent", ServerID: "H"}}
	a := start(t, cfg, listen(t), nil)
	tstest.WaitFor(t, 10*time.Second, func() error {
		if n := len(a.ListPeers().Peers); n < 301 {
			return fmt.Errorf("A lists %d peers; want 301", n)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	results, err := a.Broadcast(ctx, federation.BroadcastRequest{Message: "to all", Scope: "mesh"})
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, r := range results {
		if r.Error != nil && r.Error.Code == "OVERLOADED" && strings.Contains(r.Error.Message, "at most 128 gateways") {
			left++
		}
	}
	if len(results) != 301 || left != 300-128 {
		t.Errorf("broadcast scope mesh: %d results, %d left out; want 301, 172", len(results), left)
	}
	if got := relays.Load(); got > 129 {
		t.Errorf("H got %d relays from one broadcast; at most 129 (its agent and 128 gateways) may be", got)
	}
}

func TestMeshNeverSendsInTheClear(t *testing.T) {
	// H advertises gateway Z with a signing key but no encryption key: a
	// message to Z would cross H readable.
	evil := newKey(t)
	var seen atomic.Value
	h := hostileGateway(t, "H", func() []map[string]any {
		return []map[string]any{
			{"agentId": "h-agent", "serverId": "H", "path": []string{"H"}},
			{"agentId": "z-agent", "serverId": "Z", "path": []string{"H", "Z"}, "signingKey": evil.Public().SigningKey},
		}
	}, func(p json.RawMessage) { seen.Store(string(p)) })
	cfg := newConfig(t, "A", "A-agent")
	cfg.Federation.Mesh.Enabled = true
	cfg.Gateway.HeartbeatMs = meshHeartbeatMs
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "h", Name: "hostile", URL: h, AgentID: "h-agent", ServerID: "H"}}
	a := start(t, cfg, listen(t), nil)
	waitPeer(t, a, "Z/z-agent")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := a.Send(ctx, federation.SendRequest{PeerID: "Z/z-agent", Message: "secret for Z"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != federation.StatusError || res.Error.Code != "BAD_SIGNATURE" || !strings.Contains(res.Error.Message, `gateway "Z"`) || !strings.Contains(res.Error.Message, "in the clear") {
		t.Errorf("send to Z with no encryption key known: %s %v; want BAD_SIGNATURE naming Z", res.Status, res.Error)
	}
	if got, _ := seen.Load().(string); strings.Contains(got, "secret for Z") {
		t.Errorf("hop H read the message: %s", got)
	}
}

func TestMeshRequireAuthKeepsNoKeyOfUnlistedOrigin(t *testing.T) {
	// D requires auth and knows C; origin X has no entry: X is refused
	// before its key is looked at, so nothing of X is kept.
	m := newMesh(t, nil, func(id string, cfg *federation.Config) {
		cfg.Federation.RequireAuth = true
		cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "C", Token: "token-of-c"}}
	}, "D")
	from := func(key *federation.Identity) error {
		_, err := meshRelay(t, m.gws["D"], "C", "token-of-c", &federation.RelayParams{TargetAgent: "D-agent", TargetServer: "D",
			Route: []string{"X", "C"}, OriginKey: key.Public().SigningKey, Message: signedAs(t, key, "X", "D-agent", "hi")})
		return err
	}
	if err := from(newKey(t)); code(err) != "FORBIDDEN" {
		t.Fatalf("origin X without an entry: %v; want FORBIDDEN", err)
	}
	// Once X is listed (grants, no key), X's real key is the first seen.
	d := m.gws["D"]
	d.stop(t)
	d.cfg.Gateway.Auth.Peers = append(d.cfg.Gateway.Auth.Peers, federation.PeerCredential{ServerID: "X", Token: "token-of-x"})
	m.gws["D"] = start(t, d.cfg, listen(t), nil)
	if err := from(newKey(t)); err != nil {
		t.Fatalf("origin X listed at D: %v; a key of the refused attempt was kept", err)
	}
}

func TestMeshDelegateSkipsGatewaysOfUnknownKey(t *testing.T) {
	// H invents gateway C0 with an agent of capability "shared", nearer in
	// the order than D's real one; F trusts only keys it knows (D's pinned).
	evil := newKey(t)
	h := hostileGateway(t, "H", func() []map[string]any {
		return []map[string]any{
			{"agentId": "h-agent", "serverId": "H", "path": []string{"H"}},
			{"agentId": "c0-agent", "serverId": "C0", "capabilities": []string{"shared"}, "path": []string{"H", "C0"},
				"signingKey": evil.Public().SigningKey, "encryptionKey": evil.Public().EncryptionKey, "keyProof": evil.KeyProof("C0")},
		}
	}, nil)
	var dKey string
	m := newMesh(t, map[string][]string{"F": {"B"}, "B": {"D"}}, func(id string, cfg *federation.Config) {
		switch id {
		case "D":
			cfg.Agents[0].Capabilities = append(cfg.Agents[0].Capabilities, "shared")
			ident, err := federation.LoadIdentity(cfg.Storage.Dir)
			if err != nil {
				t.Fatal(err)
			}
			dKey = ident.Public().SigningKey
		case "F":
			cfg.Federation.Mesh.RequireKnownKeys = true
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "D", Token: "token-of-d", PublicKey: dKey}}
			cfg.Federation.Peers = append(cfg.Federation.Peers, federation.PeerConfig{ID: "h", Name: "hostile", URL: h, AgentID: "h-agent", ServerID: "H"})
		}
	}, "D", "B", "F")
	m.waitRoute("F", "D")
	waitPeer(t, m.gws["F"], "C0/c0-agent")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := m.gws["F"].Delegate(ctx, federation.DelegateRequest{RequiredCapabilities: []string{"shared"}, Task: "for a gateway F knows"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != federation.StatusOK || res.PeerID != "D/D-agent" {
		t.Fatalf("delegate shared: %s by %q %v; want D/D-agent (C0's key is known only through the mesh)", res.Status, res.PeerID, res.Error)
	}
}

func TestMeshReplayBetweenMeshAndDirectIsRefused(t *testing.T) {
	// D pins X's key as a peer's (so mesh messages from X count as
	// authenticated, while anyone may say it is X) and knows Y by token
	// only (so they do not).
	x, y := newKey(t), newKey(t)
	gone := listen(t)
	gone.Close()
	m := newMesh(t, nil, func(id string, cfg *federation.Config) {
		pc := peerConf("x", "x-agent", gone)
		pc.ServerID, pc.PublicKey = "X", x.Public().SigningKey
		cfg.Federation.Peers = append(cfg.Federation.Peers, pc)
		cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "Y", Token: "token-of-y"}}
	}, "D")
	d := m.gws["D"]
	viaMesh := func(key *federation.Identity, origin string, msg *federation.Message) error {
		_, err := meshRelay(t, d, "C", "", &federation.RelayParams{TargetAgent: "D-agent", TargetServer: "D",
			Route: []string{origin, "C"}, OriginKey: key.Public().SigningKey, Message: msg})
		return err
	}
	direct := func(as, token string, msg *federation.Message) error {
		_, err := meshRelay(t, d, as, token, &federation.RelayParams{TargetAgent: "D-agent", Message: msg})
		return err
	}
	// Across the mesh first, then passed on directly by someone without
	// X's token.
	msg := signedAs(t, x, "X", "D-agent", "mesh first")
	if err := viaMesh(x, "X", msg); err != nil {
		t.Fatalf("X's message across the mesh: %v", err)
	}
	if err := direct("X", "", msg); code(err) != "REPLAYED" {
		t.Errorf("the same message directly, unauthenticated: %v; want REPLAYED", err)
	}
	// Directly first (authenticated), then across the mesh.
	msg = signedAs(t, y, "Y", "D-agent", "direct first")
	if err := direct("Y", "token-of-y", msg); err != nil {
		t.Fatalf("Y's message directly: %v", err)
	}
	if err := viaMesh(y, "Y", msg); code(err) != "REPLAYED" {
		t.Errorf("the same message across the mesh: %v; want REPLAYED", err)
	}
}

func TestMeshFirstSeenKeysAreBounded(t *testing.T) {
	m := newMesh(t, nil, nil, "D")
	d := m.gws["D"]
	federation.SetMeshKeyLimit(d.Node, 3)
	keys := map[string]*federation.Identity{}
	from := func(origin string) error {
		if keys[origin] == nil {
			keys[origin] = newKey(t)
		}
		key := keys[origin]
		_, err := meshRelay(t, d, "C", "", &federation.RelayParams{TargetAgent: "D-agent", TargetServer: "D",
			Route: []string{origin, "C"}, OriginKey: key.Public().SigningKey, Message: signedAs(t, key, origin, "D-agent", "hi")})
		return err
	}
	for _, o := range []string{"O1", "O2", "O3"} {
		if err := from(o); err != nil {
			t.Fatalf("origin %s: %v", o, err)
		}
	}
	if err := from("O4"); code(err) != "OVERLOADED" || !strings.Contains(fmt.Sprint(err), `gateway "O4"`) {
		t.Errorf("a fourth new origin with room for 3 keys: %v; want OVERLOADED naming O4", err)
	}
	if err := from("O1"); err != nil {
		t.Errorf("origin O1, whose key is kept: %v", err)
	}
}

func TestMeshDurableSendIsDeliveredOnce(t *testing.T) {
	// D's agent is slower than each attempt's timeout: A's outbox retries
	// across the mesh, and D runs the agent once and answers the retry
	// with that run's reply.
	c := newCounter()
	c.delay = 400 * time.Millisecond
	lnA, lnB, lnD := listen(t), listen(t), listen(t)
	mk := func(id string, peers ...string) *federation.Config {
		cfg := newConfig(t, id, id+"-agent", id+"-skill")
		cfg.Federation.Mesh.Enabled = true
		cfg.Gateway.HeartbeatMs = meshHeartbeatMs
		for _, to := range peers {
			ln := map[string]net.Listener{"B": lnB, "D": lnD}[to]
			pc := peerConf(to, to+"-agent", ln, to+"-skill")
			pc.ServerID = to
			cfg.Federation.Peers = append(cfg.Federation.Peers, pc)
		}
		return cfg
	}
	start(t, mk("D"), lnD, map[string]federation.Handler{"D-agent": c})
	start(t, mk("B", "D"), lnB, nil)
	m := &meshNet{t: t, gws: map[string]*gw{"A": start(t, mk("A", "B"), lnA, nil)}}
	m.waitRoute("A", "D")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := m.gws["A"].Send(ctx, federation.SendRequest{PeerID: "D/D-agent", Message: "hello",
		MessageOptions: federation.MessageOptions{Durable: true, TimeoutMs: 150}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != federation.StatusQueued {
		t.Fatalf("durable send to D/D-agent: %s %v", res.Status, res.Error)
	}
	e := waitState(t, m.gws["A"], res.MessageID, federation.StateDelivered)
	if e.Attempts < 2 {
		t.Errorf("delivered at attempt %d; the agent's delay should have made the first time out", e.Attempts)
	}
	if e.Result == nil || e.Result.Response == nil || e.Result.Response.Content != "done: hello" || !slices.Equal(e.Result.Route, []string{"A", "B", "D"}) {
		t.Fatalf("delivered entry %+v", e.Result)
	}
	if n := c.count("hello"); n != 1 {
		t.Errorf("D's agent ran %d times; want once", n)
	}
}
