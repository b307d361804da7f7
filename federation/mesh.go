package federation

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// The mesh lets a gateway reach the agents of its peers' peers. Each
// gateway with federation.mesh.enabled asks each of its peers, at every
// heartbeat, for the routes that peer advertises to it (federation.routes):
// the peer's own agents and those it learned, each with the path of
// gateways that leads to it (a path vector). A route whose path holds the
// asking gateway is never advertised to it nor accepted by it, so routes
// are loop-free; one longer than federation.mesh.maxHops is dropped. A
// peer that does not answer has its routes withdrawn at once, and the
// gateways behind it drop them at their next heartbeat.
//
// A message to a mesh destination travels in federation.relay with
// targetServer and route (the gateways crossed so far); each hop checks its
// grants for the previous hop and for the origin, and passes it on
// unchanged: signed by the origin and sealed to the destination.

// SourceMesh marks, in list_peers, an agent reached through other gateways.
const SourceMesh = "mesh"

// MethodRoutes is the gateway method a peer calls to learn the routes this
// gateway advertises to it.
const MethodRoutes = "federation.routes"

// Mesh bounds.
const (
	DefaultMeshMaxHops = 3
	maxMeshHops        = 16   // the most federation.mesh.maxHops may be
	maxRoutesPerPeer   = 1024 // routes kept from one peer; the rest are refused
	maxRoutesTotal     = 8192 // routes kept from all peers together
	// minRoutesTimeout is the least time a peer gets to answer
	// federation.routes, however short the heartbeat.
	minRoutesTimeout = time.Second
)

// MeshConfig is federation.mesh.
type MeshConfig struct {
	// Enabled makes this gateway learn routes from its peers, relay
	// messages across the mesh and advertise routes. Default false: it
	// changes who can reach whom.
	Enabled bool `yaml:"enabled" json:"enabled,omitempty"`
	// MaxHops is the most relays a mesh route may take, origin to
	// destination. Default 3, at most 16.
	MaxHops int `yaml:"maxHops" json:"maxHops,omitempty"`
	// Advertise says whether this gateway tells its peers what it can
	// reach (always filtered by each peer's grants). Default true; false
	// makes it a mesh leaf that uses routes but offers none.
	Advertise *bool `yaml:"advertise" json:"advertise,omitempty"`
	// RequireKnownKeys refuses mesh gateways (origins of relayed messages,
	// destinations of sent ones) whose signing key is not known by config
	// or a direct peer, instead of trusting the key first seen for them.
	// Default false.
	RequireKnownKeys bool `yaml:"requireKnownKeys" json:"requireKnownKeys,omitempty"`
}

// Advertises reports the effective advertise flag.
func (m *MeshConfig) Advertises() bool { return m.Enabled && (m.Advertise == nil || *m.Advertise) }

// Route is one agent a gateway can reach, as federation.routes reports it.
type Route struct {
	AgentID      string   `json:"agentId"`
	ServerID     string   `json:"serverId"` // the gateway hosting the agent
	Capabilities []string `json:"capabilities"`
	Description  string   `json:"description,omitempty"`
	// Path is the gateways from the advertiser to ServerID, both included.
	Path []string `json:"path"`
	// SigningKey and EncryptionKey are ServerID's identity keys, for the
	// origin to seal to and verify its replies (a key pinned in the config
	// for that serverId wins over them).
	SigningKey    string `json:"signingKey,omitempty"`
	EncryptionKey string `json:"encryptionKey,omitempty"`
	// KeyProof is ServerID's signature, by SigningKey, of EncryptionKey
	// (meshtrust.go): a hop cannot swap in a key of its own.
	KeyProof string `json:"keyProof,omitempty"`
}

// RouteTable is the payload of federation.routes.
type RouteTable struct {
	ServerID string  `json:"serverId"`
	Routes   []Route `json:"routes"`
}

// meshRoute is a route learned from the peer via.
type meshRoute struct {
	Route
	via  string // the peer (federation.peers id) it was learned from: the next hop
	caps []capability
}

// hops is how many relays the route takes from this gateway.
func (r *meshRoute) hops() int { return len(r.Path) }

// meshTable holds the routes learned from each peer.
type meshTable struct {
	mu     sync.RWMutex
	byPeer map[string][]meshRoute
	total  int
}

// set replaces the routes learned from peer; it returns how many were kept.
func (t *meshTable) set(peer string, routes []meshRoute) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byPeer == nil {
		t.byPeer = make(map[string][]meshRoute)
	}
	t.total -= len(t.byPeer[peer])
	if room := maxRoutesTotal - t.total; len(routes) > room {
		routes = routes[:max(room, 0)]
	}
	if len(routes) == 0 {
		delete(t.byPeer, peer)
		return 0
	}
	t.byPeer[peer] = routes
	t.total += len(routes)
	return len(routes)
}

// from returns the routes learned from peer.
func (t *meshTable) from(peer string) []meshRoute {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byPeer[peer]
}

// withdraw drops every route learned from peer.
func (t *meshTable) withdraw(peer string) { t.set(peer, nil) }

// keepOnly drops the routes learned from peers not in ids (unregistered,
// or gone from the config).
func (t *meshTable) keepOnly(ids map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, rs := range t.byPeer {
		if !ids[id] {
			t.total -= len(rs)
			delete(t.byPeer, id)
		}
	}
}

// all returns every learned route, best first: fewest hops, then by
// destination and next hop.
func (t *meshTable) all() []meshRoute {
	t.mu.RLock()
	var out []meshRoute
	for _, rs := range t.byPeer {
		out = append(out, rs...)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b meshRoute) int {
		return cmp.Or(cmp.Compare(a.hops(), b.hops()), strings.Compare(a.ServerID, b.ServerID),
			strings.Compare(a.AgentID, b.AgentID), strings.Compare(a.via, b.via))
	})
	return out
}

// to returns the routes to agent on server, best first.
func (t *meshTable) to(server, agent string) []meshRoute {
	var out []meshRoute
	for _, r := range t.all() {
		if r.ServerID == server && r.AgentID == agent {
			out = append(out, r)
		}
	}
	return out
}

// best returns one route per destination agent, the best, in the order of
// all.
func (t *meshTable) best() []meshRoute {
	seen := make(map[[2]string]bool)
	var out []meshRoute
	for _, r := range t.all() {
		k := [2]string{r.ServerID, r.AgentID}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// meshMaxHops is federation.mesh.maxHops.
func (n *Node) meshMaxHops() int { return n.cfg.Federation.Mesh.MaxHops }

// serveRoutes answers federation.routes: the routes this gateway offers the
// calling peer, within that peer's grants, none through the peer itself.
func (n *Node) serveRoutes(id *gateway.Identity) *RouteTable {
	out := &RouteTable{ServerID: n.serverID, Routes: []Route{}}
	if !n.cfg.Federation.Enabled || !n.cfg.Federation.Mesh.Advertises() {
		return out
	}
	cred := n.credential(id)
	pub, proof := n.identity.Public(), n.keyProof()
	for _, aid := range sortedKeys(n.agents) {
		a := n.agents[aid].cfg
		if grantRefusal(cred, a.ID, a.Capabilities) != "" {
			continue
		}
		out.Routes = append(out.Routes, Route{AgentID: a.ID, ServerID: n.serverID, Capabilities: nonNil(a.Capabilities),
			Description: a.Description, Path: []string{n.serverID}, SigningKey: pub.SigningKey, EncryptionKey: pub.EncryptionKey, KeyProof: proof})
	}
	offered := make(map[[2]string]bool)
	for _, r := range n.mesh.all() { // best first: the first route to each agent the caller may have
		k := [2]string{r.ServerID, r.AgentID}
		if len(out.Routes) >= maxRoutesPerPeer {
			break
		}
		if offered[k] || slices.Contains(r.Path, id.PeerID) || r.hops()+1 > n.meshMaxHops() || grantRefusal(cred, r.AgentID, r.Capabilities) != "" {
			continue
		}
		offered[k] = true
		adv := r.Route
		adv.Path = append([]string{n.serverID}, r.Path...)
		out.Routes = append(out.Routes, adv)
	}
	return out
}

// grantRefusal says which rule of cred refuses reaching agent (with caps),
// or "" when cred allows it (a nil cred allows everything).
func grantRefusal(cred *PeerCredential, agent string, caps []string) string {
	switch {
	case cred == nil:
		return ""
	case len(cred.AllowAgents) > 0 && !slices.Contains(cred.AllowAgents, agent):
		return fmt.Sprintf("agent %q is not in the allowAgents of gateway.auth.peers entry %q", agent, cred.ServerID)
	case len(cred.AllowCapabilities) > 0 && !grantAllows(cred.AllowCapabilities, caps):
		return fmt.Sprintf("agent %q has none of the allowCapabilities %q of gateway.auth.peers entry %q", agent, cred.AllowCapabilities, cred.ServerID)
	}
	return ""
}

// meshLoop learns the routes of every enabled gateway peer now and then at
// every interval, until bg ends.
func (n *Node) meshLoop(bg context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(bg, max(interval, minRoutesTimeout))
		var wg sync.WaitGroup
		current := make(map[string]bool)
		for _, p := range n.peers.list() {
			if p.Type == PeerTypeA2A {
				continue
			}
			current[p.ID] = true
			if !p.IsEnabled() {
				n.mesh.withdraw(p.ID)
				continue
			}
			wg.Go(func() { n.learnRoutes(ctx, p) })
		}
		wg.Wait()
		cancel()
		n.mesh.keepOnly(current)
		select {
		case <-bg.Done():
			return
		case <-t.C:
		}
	}
}

// learnRoutes asks p for its routes and keeps the valid ones; when p does
// not answer, its routes are withdrawn.
func (n *Node) learnRoutes(ctx context.Context, p *peer) {
	var table RouteTable
	c, err := n.pool.Get(ctx, p.ID, n.dialer(p))
	if err == nil {
		err = c.Call(ctx, MethodRoutes, nil, &table)
	}
	if err != nil {
		n.mesh.withdraw(p.ID)
		return
	}
	routes, refused := n.acceptRoutes(p, c.Hello().Server.ServerID, &table)
	kept := n.mesh.set(p.ID, routes)
	if refused+len(routes)-kept > 0 {
		if ok, suppressed := n.remoteLog.Allow(); ok {
			n.log.Info("mesh routes refused", "peer", p.ID, "refused", refused+len(routes)-kept, "kept", kept, "suppressed", suppressed)
		}
	}
}

// acceptRoutes checks the routes peer p (whose gateway said it is server)
// advertised: well-formed ids, a path from p's gateway without this
// gateway, repeats or more than federation.mesh.maxHops relays, bounded
// fields, at most maxRoutesPerPeer. It returns the routes kept and how
// many it refused.
func (n *Node) acceptRoutes(p *peer, server string, t *RouteTable) ([]meshRoute, int) {
	if p.ServerID != "" {
		server = p.ServerID
	}
	refused := 0
	var out []meshRoute
	for i := range t.Routes {
		r := &t.Routes[i]
		if len(out) >= maxRoutesPerPeer {
			refused += len(t.Routes) - i
			break
		}
		if routeProblem(r, server, n.serverID, n.meshMaxHops()) != "" {
			refused++
			continue
		}
		caps, ok := parseCapabilities(r.Capabilities)
		if !ok {
			refused++
			continue
		}
		out = append(out, meshRoute{Route: Route{AgentID: r.AgentID, ServerID: r.ServerID, Capabilities: slices.Clone(r.Capabilities),
			Description: clip(r.Description, maxDescriptionBytes), Path: slices.Clone(r.Path), SigningKey: r.SigningKey,
			EncryptionKey: r.EncryptionKey, KeyProof: r.KeyProof}, via: p.ID, caps: caps})
	}
	return out, refused
}

// routeProblem says what is wrong with route r advertised by gateway from
// to gateway self, or "" when nothing is.
func routeProblem(r *Route, from, self string, maxHops int) string {
	switch {
	case !validIdent(r.AgentID) || !validIdent(r.ServerID):
		return "agentId or serverId is not a well-formed identifier"
	case len(r.Path) == 0 || len(r.Path) > maxHops:
		return fmt.Sprintf("its path has %d gateways; 1 to federation.mesh.maxHops (%d) may be", len(r.Path), maxHops)
	case r.Path[0] != from:
		return "its path does not start at the gateway that advertised it"
	case r.Path[len(r.Path)-1] != r.ServerID:
		return "its path does not end at its serverId"
	case len(r.Capabilities) > maxCapabilities:
		return "too many capabilities"
	case len(r.SigningKey) > maxEnvelopeBytes || len(r.EncryptionKey) > maxEnvelopeBytes || len(r.KeyProof) > maxEnvelopeBytes:
		return "a key is too long"
	case r.EncryptionKey != "" && !checkKeyProof(r.ServerID, r.SigningKey, r.EncryptionKey, r.KeyProof):
		return "its encryptionKey has no keyProof by its signingKey"
	}
	seen := make(map[string]bool, len(r.Path))
	for _, id := range r.Path {
		switch {
		case !validIdent(id):
			return "its path holds a malformed serverId"
		case id == self:
			return "its path holds this gateway (a loop)"
		case seen[id]:
			return "its path repeats a gateway (a loop)"
		}
		seen[id] = true
	}
	for _, c := range r.Capabilities {
		if len(c) > maxCapabilityBytes {
			return "a capability is too long"
		}
	}
	return ""
}
