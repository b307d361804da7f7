package federation

import (
	"cmp"
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/wsconn"
)

// meshTarget splits a mesh destination "serverId/agentId", as list_peers
// names it; ok is false when id is not one.
func meshTarget(id string) (server, agent string, ok bool) {
	server, agent, ok = strings.Cut(id, "/")
	return server, agent, ok
}

// meshPeer returns the destination id ("serverId/agentId") as a peer that
// deliver carries across the mesh, or an error naming it.
func (n *Node) meshPeer(id string) (*peer, error) {
	server, agent, _ := meshTarget(id)
	if err := checkIdent("peerId's serverId (before /)", server, true); err != nil {
		return nil, err
	}
	if err := checkIdent("peerId's agentId (after /)", agent, true); err != nil {
		return nil, err
	}
	if !n.cfg.Federation.Mesh.Enabled {
		return nil, fmt.Errorf("%w: %q names an agent behind other gateways, and federation.mesh.enabled is false on gateway %q", ErrUnknownPeer, id, n.serverID)
	}
	routes := n.mesh.to(server, agent)
	if len(routes) == 0 {
		return nil, fmt.Errorf("%w: gateway %q has no mesh route to agent %q of gateway %q; list_peers shows the agents it can reach (source mesh)", ErrUnknownPeer, n.serverID, agent, server)
	}
	return meshPeerOf(&routes[0]), nil
}

// meshNotYet turns the UNKNOWN_PEER of a durable message's mesh
// destination (no route yet, or none while a link is down: routes come
// and go at each heartbeat) into PEER_UNAVAILABLE, which the outbox
// retries.
func (n *Node) meshNotYet(id string, err error) error {
	if _, _, ok := meshTarget(id); ok && n.cfg.Federation.Mesh.Enabled && gateway.CodeOf(err) == CodeUnknownPeer {
		return fmt.Errorf("%w: %v", ErrPeerUnavailable, err)
	}
	return err
}

func meshPeerOf(r *meshRoute) *peer {
	id := r.ServerID + "/" + r.AgentID
	return &peer{PeerConfig: PeerConfig{ID: id, Name: id, AgentID: r.AgentID, ServerID: r.ServerID,
		Capabilities: r.Capabilities, Description: r.Description}, source: SourceMesh, caps: r.caps}
}

// meshCapable returns a peer for the best route of each mesh agent that
// meets every requirement and is not a direct peer's agent, fewest hops
// first; routes to gateways whose keys this gateway would refuse (unknown
// under requireKnownKeys, or not the ones first seen) are left out.
func (n *Node) meshCapable(reqs []requirement) []*peer {
	if !n.cfg.Federation.Mesh.Enabled {
		return nil
	}
	var out []*peer
	for _, r := range n.mesh.best() {
		if r.hops() == 1 {
			if via := n.peers.get(r.via); via != nil && via.AgentID == r.AgentID {
				continue // the direct peer itself
			}
		}
		if !meetsAll(r.caps, reqs) {
			continue
		}
		if _, _, enc, err := n.meshKeys(&r); err != nil || enc == "" {
			continue
		}
		out = append(out, meshPeerOf(&r))
	}
	return out
}

// deliverMesh carries msg to the mesh destination p along its best route,
// then along the others while a failure is one another path may avoid.
func (n *Node) deliverMesh(ctx context.Context, p *peer, msg *Message, callTimeoutMs int, durable bool) *Result {
	start := time.Now()
	res := &Result{PeerID: p.ID, MessageID: msg.MessageID}
	timeout := n.timeout(callTimeoutMs, nil)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	routes := n.meshRoutesTo(p.ServerID, p.AgentID)
	err := fmt.Errorf("%w: gateway %q has no mesh route to agent %q of gateway %q any more", ErrPeerUnavailable, n.serverID, p.AgentID, p.ServerID)
	via := "" // the first hop last tried: the peer label of the relay metrics
	for i := range routes {
		var reply *Message
		via = routes[i].via
		if reply, err = n.sendMesh(ctx, &routes[i], msg, durable); err == nil {
			res.Response, res.Route = reply, reply.Route
			break
		}
		if !meshRetryable(err) || ctx.Err() != nil {
			break
		}
	}
	res.LatencyMs = millis(time.Since(start))
	switch {
	case err == nil:
		res.Status = StatusOK
	case errors.Is(err, context.DeadlineExceeded) || gateway.CodeOf(err) == gateway.CodeTimeout:
		res.Status = StatusTimeout
		res.Error = gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("agent %q of gateway %q did not answer across the mesh within %v", p.AgentID, p.ServerID, timeout))
	default:
		res.Status, res.Error = StatusError, gateway.ToError(err)
	}
	outcome := "ok"
	if res.Error != nil {
		outcome = res.Error.Code
	}
	if via != "" {
		n.metrics.relayOut(via, msg.ToAgent, res, time.Since(start))
	}
	n.audit.write(auditEvent{Dir: "out", Kind: "deliver", Peer: p.ID, Agent: msg.ToAgent, MessageID: msg.MessageID,
		CorrelationID: msg.CorrelationID, Type: string(msg.Type), Outcome: outcome, LatencyMs: res.LatencyMs, Content: msg.Content})
	return res
}

// meshRoutesTo returns the routes to agent on server in the order to try
// them: fewest hops first and, among equals, those whose next hop does not
// look down (health) first, then by next hop.
func (n *Node) meshRoutesTo(server, agent string) []meshRoute {
	routes := n.mesh.to(server, agent)
	slices.SortStableFunc(routes, func(a, b meshRoute) int {
		return cmp.Or(cmp.Compare(a.hops(), b.hops()),
			boolInt(n.peerHealth(a.via).State == HealthDown)-boolInt(n.peerHealth(b.via).State == HealthDown))
	})
	return routes
}

// meshRetryable reports whether another path might succeed where err
// failed: a hop, or the way to it, was unavailable, stopping or had its circuit open. Other
// failures (the destination overloaded, a grant, the agent) would meet
// the same destination, which would also see the messageId again.
func meshRetryable(err error) bool {
	switch gateway.CodeOf(err) {
	case gateway.CodePeerUnavailable, gateway.CodeShuttingDown, CodeCircuitOpen:
		return true
	}
	return false
}

// sendMesh sends msg, signed by this gateway and sealed to the
// destination, to the next hop of route r, and checks and opens the reply.
func (n *Node) sendMesh(ctx context.Context, r *meshRoute, msg *Message, durable bool) (*Message, error) {
	signKey, src, encKey, err := n.meshKeys(r)
	if err != nil {
		return nil, fmt.Errorf("mesh destination gateway %q: %w", r.ServerID, err)
	}
	if encKey == "" { // the hops in between would read it, and another gateway could take it
		return nil, fmt.Errorf("%w: no encryptionKey with a valid keyProof is known for mesh destination gateway %q, and a message is never sent across the mesh in the clear; pin its encryptionKey (federation.peers) if it advertises none",
			ErrBadSignature, r.ServerID)
	}
	m := *msg
	to, err := ParseEncryptionKey(encKey)
	if err != nil {
		return nil, fmt.Errorf("%w: the encryptionKey of gateway %q %v", ErrInvalidParams, r.ServerID, err)
	}
	eph, err := m.Seal(to)
	if err != nil {
		return nil, err
	}
	if err := n.identity.Sign(&m); err != nil {
		return nil, err
	}
	params := &RelayParams{TargetAgent: r.AgentID, TargetServer: r.ServerID, Route: []string{n.serverID},
		OriginKey: n.identity.Public().SigningKey, Message: &m, Durable: durable}
	reply, err := n.forwardTo(ctx, r.via, params)
	if err != nil {
		return nil, err
	}
	key, err := ParseSigningKey(signKey)
	if err == nil {
		err = verifySig(reply, key, msg.MessageID)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the reply of gateway %q to message %q across the mesh %v against its signing key", ErrBadSignature, r.ServerID, msg.MessageID, err)
	}
	if len(reply.Route) < 2 || reply.Route[0] != n.serverID || reply.Route[len(reply.Route)-1] != r.ServerID || len(reply.Route) > maxMeshHops+1 {
		return nil, fmt.Errorf("%w: the reply of gateway %q to message %q has route %s, which does not lead from %q to it", ErrBadSignature, r.ServerID, msg.MessageID, showPath(reply.Route), n.serverID)
	}
	if src == keyNew {
		if err := n.remember(r.ServerID, signKey); err != nil {
			return nil, err
		}
	}
	if reply.Sealed == nil {
		return nil, fmt.Errorf("%w: gateway %q answered sealed message %q in the clear", ErrBadSignature, r.ServerID, msg.MessageID)
	}
	if err := reply.Open(eph); err != nil {
		return nil, fmt.Errorf("reply of gateway %q: %w", r.ServerID, err)
	}
	return reply, nil
}

// forwardTo relays params to the peer via, and withdraws via's routes when
// it cannot be reached.
func (n *Node) forwardTo(ctx context.Context, via string, params *RelayParams) (*Message, error) {
	next := n.peers.get(via)
	if next == nil || !next.IsEnabled() {
		n.mesh.withdraw(via)
		return nil, fmt.Errorf("%w: hop %q: its next hop, peer %q, is gone or disabled", ErrPeerUnavailable, n.serverID, via)
	}
	if dl, ok := ctx.Deadline(); ok {
		params.TimeoutMs = max(time.Until(dl).Milliseconds(), 1)
	}
	// The next hop's breaker and health see mesh traffic too: an answer,
	// even a refusal from beyond, is the hop answering; a lost or refused
	// connection is its failure; a timeout is not counted.
	h := n.tracker.get(via)
	done, err := h.allow(via, n.tracker.settings.Open)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := n.conn(ctx, next)
	if err == nil {
		var reply Message
		if err = c.Call(ctx, MethodRelay, params, &reply); err == nil {
			done(nil, time.Since(start))
			return &reply, nil
		}
		if gateway.CodeOf(err) != gateway.CodePeerUnavailable || !gateway.Unsent(err) && c.Err() == nil {
			if gateway.CodeOf(err) == gateway.CodeTimeout || errors.Is(err, context.DeadlineExceeded) {
				// Any gateway on the path, or the agent, may be the slow
				// one: a timeout says nothing about this hop.
				done(gateway.NewError(gateway.CodeCancelled, "mesh relay timed out"), 0)
			} else {
				done(nil, 0)
			}
			return nil, err // an answer from beyond: it names where it failed
		}
		err = h.connectionLost(c, err)
	}
	done(err, 0)
	n.mesh.withdraw(via)
	return nil, fmt.Errorf("%w: agent %q of gateway %q is unreachable: hop %q cannot reach its next hop %q: %v",
		ErrPeerUnavailable, params.TargetAgent, params.TargetServer, n.serverID, via, err)
}

// meshKeys returns the signing key this gateway trusts for r's
// destination (meshtrust.go), where it came from, and the key to seal to:
// the encryptionKey pinned for that serverId, else the route's when its
// keyProof is by the trusted signing key, else none.
func (n *Node) meshKeys(r *meshRoute) (sign string, src keySource, enc string, err error) {
	if sign, src, err = n.meshKey(r.ServerID, r.SigningKey); err != nil {
		return "", 0, "", err
	}
	for _, p := range n.peers.list() {
		if p.ServerID == r.ServerID && p.EncryptionKey != "" {
			return sign, src, p.EncryptionKey, nil
		}
	}
	if r.EncryptionKey != "" && r.SigningKey == sign && checkKeyProof(r.ServerID, sign, r.EncryptionKey, r.KeyProof) {
		enc = r.EncryptionKey
	}
	return sign, src, enc, nil
}

// credentialOf returns the gateway.auth.peers entry of serverId, or nil.
func (n *Node) credentialOf(serverID string) *PeerCredential {
	for i, c := range n.auth().Peers {
		if c.ServerID == serverID {
			return &n.auth().Peers[i]
		}
	}
	return nil
}

// meshRelayIn handles a relayed message that crosses the mesh: it checks
// the route and the grants of the previous hop and of the origin, then
// delivers it here or passes it on.
func (n *Node) meshRelayIn(ctx context.Context, id *gateway.Identity, p *RelayParams) (*Message, error) {
	msg := p.Message
	if !n.cfg.Federation.Mesh.Enabled {
		return nil, n.deny(id, MethodRelay, p.TargetAgent, fmt.Sprintf("gateway %q does not relay across the mesh (federation.mesh.enabled is false)", n.serverID))
	}
	if err := checkIdent("targetServer", p.TargetServer, true); err != nil {
		return nil, err
	}
	if p.TargetAgent != msg.ToAgent { // the grants below judge targetAgent: it must be what the origin signed
		return nil, fmt.Errorf("%w: targetAgent %q differs from the toAgent %q of mesh message %q", ErrInvalidParams, p.TargetAgent, msg.ToAgent, msg.MessageID)
	}
	if err := n.checkRoute(id, p); err != nil {
		return nil, err
	}
	if err := n.checkHops(msg); err != nil {
		return nil, err
	}
	local := p.TargetServer == n.serverID
	var caps []string
	var routes []meshRoute
	if local {
		a := n.agents[p.TargetAgent]
		if a == nil {
			return nil, fmt.Errorf("%w: gateway %q hosts no agent %q", ErrUnknownAgent, n.serverID, p.TargetAgent)
		}
		caps = a.cfg.Capabilities
	} else {
		for _, r := range n.meshRoutesTo(p.TargetServer, p.TargetAgent) {
			if !slices.ContainsFunc(r.Path, func(s string) bool { return slices.Contains(p.Route, s) }) {
				routes = append(routes, r)
			}
		}
		if len(routes) == 0 {
			return nil, fmt.Errorf("%w: agent %q of gateway %q is unreachable: hop %q has no route to it (route so far %s)",
				ErrPeerUnavailable, p.TargetAgent, p.TargetServer, n.serverID, showPath(p.Route))
		}
		caps = routes[0].Capabilities
	}
	if rule := grantRefusal(n.credential(id), p.TargetAgent, caps); rule != "" {
		return nil, n.deny(id, MethodRelay, p.TargetAgent, fmt.Sprintf("mesh hop %q refuses the previous hop %q: %s", n.serverID, id.PeerID, rule))
	}
	origin := p.Route[0]
	cred := n.credentialOf(origin)
	if origin != id.PeerID && cred == nil && n.cfg.Federation.RequireAuth { // before its key is looked at, let alone kept
		return nil, n.deny(id, MethodRelay, p.TargetAgent, fmt.Sprintf("mesh hop %q refuses origin gateway %q: it has no gateway.auth.peers entry here and federation.requireAuth is true", n.serverID, origin))
	}
	// The origin's grants apply only to a message its origin signed, with
	// the key this hop trusts for it: a hop cannot pass its own requests
	// off as another gateway's.
	known, err := n.verifyOrigin(origin, p.OriginKey, msg)
	if err != nil {
		return nil, err
	}
	if origin != id.PeerID {
		if rule := grantRefusal(cred, p.TargetAgent, caps); rule != "" {
			return nil, n.deny(id, MethodRelay, p.TargetAgent, fmt.Sprintf("mesh hop %q refuses origin gateway %q: %s", n.serverID, origin, rule))
		}
	}
	ctx = wsconn.Detach(ctx)
	if p.TimeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(p.TimeoutMs)*time.Millisecond)
		defer cancel()
	}
	if local {
		return n.meshDeliverLocal(ctx, p, known)
	}
	next := *p
	next.Route = append(slices.Clip(p.Route), n.serverID)
	for _, r := range routes {
		var reply *Message
		if reply, err = n.forwardTo(ctx, r.via, &next); err == nil {
			return reply, nil // signed and sealed by the destination: passed on as it is
		}
		if !meshRetryable(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// checkRoute refuses a mesh route that is malformed, loops, is past
// federation.mesh.maxHops, or does not start at the message's origin and
// end at the connection's gateway.
func (n *Node) checkRoute(id *gateway.Identity, p *RelayParams) error {
	route := p.Route
	if len(route) == 0 || len(route) > n.meshMaxHops() {
		return fmt.Errorf("%w: mesh route %s has %d relays; federation.mesh.maxHops of gateway %q is %d",
			ErrHopLimit, showPath(append(slices.Clip(route), n.serverID)), len(route), n.serverID, n.meshMaxHops())
	}
	seen := make(map[string]bool, len(route))
	for i, s := range route {
		if err := checkIdent(fmt.Sprintf("route[%d]", i), s, true); err != nil {
			return err
		}
		if s == n.serverID || seen[s] {
			return fmt.Errorf("%w: mesh route %s comes back to gateway %q (a loop)", ErrHopLimit, showPath(append(slices.Clip(route), n.serverID)), s)
		}
		seen[s] = true
	}
	switch {
	case route[len(route)-1] != id.PeerID:
		return gateway.NewError(gateway.CodeForbidden, fmt.Sprintf("mesh route must end with the sending gateway %q, not %q", id.PeerID, clip(route[len(route)-1], 64)))
	case route[0] != p.Message.FromServer:
		return gateway.NewError(gateway.CodeForbidden, fmt.Sprintf("mesh route must start with the message's fromServer %q, not %q", clip(p.Message.FromServer, 64), clip(route[0], 64)))
	}
	return nil
}

// meshDeliverLocal opens the message (its origin's signature is verified
// already; known says with a key known by config or a direct peer) and
// hands it to the local agent; the reply carries the route, and is signed
// by this gateway and sealed to the origin when the request was sealed.
func (n *Node) meshDeliverLocal(ctx context.Context, p *RelayParams, known bool) (*Message, error) {
	msg := p.Message
	origin := p.Route[0]
	var err error
	var replyTo *ecdh.PublicKey
	if msg.Sealed != nil {
		if msg.Content != "" || msg.Context != nil {
			return nil, fmt.Errorf("%w: sealed message %q also carries content or context in the clear", ErrInvalidParams, msg.MessageID)
		}
		if replyTo, err = ParseEncryptionKey(msg.Sealed.ReplyKey); err != nil {
			return nil, fmt.Errorf("%w: sealed message %q: sealed.replyKey %v", ErrInvalidParams, msg.MessageID, err)
		}
		if err := n.identity.Open(msg); err != nil {
			return nil, fmt.Errorf("from %q: %w", origin, err)
		}
	}
	// The replay memory is the origin's, whichever path the message took:
	// a copy passed along another path (through a hop authenticated here
	// or not) is a repeat all the same.
	if err := n.replay.seenElsewhere(msg, known); err != nil {
		return nil, err
	}
	if err := n.replay.check(msg, p.Durable, known); err != nil {
		return nil, err
	}
	var reply *Message
	switch {
	case msg.Type == TypeSync:
		reply, err = n.acceptSync(ctx, msg)
	case p.Durable: // once, however often it comes (durable.go), keyed by the origin
		reply, err = n.deliverOnce(ctx, n.agents[p.TargetAgent], msg)
	default:
		reply, err = n.deliverLocal(ctx, n.agents[p.TargetAgent], msg, false)
	}
	if err != nil {
		return nil, err
	}
	r := *reply
	r.Route = append(slices.Clone(p.Route), n.serverID)
	if replyTo != nil {
		if err := r.seal(replyTo, ""); err != nil {
			return nil, err
		}
	}
	if err := n.identity.signFor(&r, msg.MessageID); err != nil {
		return nil, err
	}
	return &r, nil
}

// meshPeerInfos lists, for list_peers, the best route to each agent the
// mesh reaches, ordered by id.
func (n *Node) meshPeerInfos() []PeerInfo {
	var out []PeerInfo
	for _, r := range n.mesh.best() {
		p := meshPeerOf(&r)
		out = append(out, PeerInfo{ID: p.ID, Name: p.Name, AgentID: r.AgentID, Capabilities: nonNil(r.Capabilities),
			Description: r.Description, Enabled: true, Source: SourceMesh, Connected: n.pool.Connected(r.via),
			Health: n.peerHealth(r.via), Via: r.via, Hops: r.hops(), Route: append([]string{n.serverID}, r.Path...)})
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// maxMeshBroadcast bounds the gateways a broadcast of scope mesh reaches
// across the mesh: however many routes peers advertise, one broadcast
// sends at most this many relays.
const maxMeshBroadcast = 128

// meshBroadcastTargets returns, for a broadcast of scope mesh, one mesh
// destination for each gateway the mesh reaches that is not the gateway
// of a direct target: its agent first by id. Each gateway is reached once;
// the nearest maxMeshBroadcast are, and the others are left out with an
// OVERLOADED result each.
func (n *Node) meshBroadcastTargets(direct []*peer) ([]*peer, []Result) {
	if !n.cfg.Federation.Mesh.Enabled {
		return nil, nil
	}
	reached := map[string]bool{n.serverID: true}
	for _, p := range direct {
		reached[p.ServerID] = true
		if c := n.pool.Peek(p.ID); c != nil {
			reached[c.Hello().Server.ServerID] = true
		}
	}
	best := n.mesh.best()
	slices.SortStableFunc(best, func(a, b meshRoute) int {
		return cmp.Or(strings.Compare(a.ServerID, b.ServerID), strings.Compare(a.AgentID, b.AgentID))
	})
	var out []*peer
	for _, r := range best {
		if !reached[r.ServerID] {
			reached[r.ServerID] = true
			out = append(out, meshPeerOf(&r))
		}
	}
	if len(out) <= maxMeshBroadcast {
		return out, nil
	}
	hops := make(map[string]int, len(best))
	for _, r := range best {
		if h, ok := hops[r.ServerID]; !ok || r.hops() < h {
			hops[r.ServerID] = r.hops()
		}
	}
	slices.SortStableFunc(out, func(a, b *peer) int { return cmp.Compare(hops[a.ServerID], hops[b.ServerID]) })
	var left []Result
	for _, p := range out[maxMeshBroadcast:] {
		left = append(left, Result{PeerID: p.ID, Status: StatusError, Error: gateway.NewError(CodeOverloaded,
			fmt.Sprintf("a broadcast of scope mesh reaches at most %d gateways across the mesh, nearest first; gateway %q was left out", maxMeshBroadcast, p.ServerID))})
	}
	out = slices.Clip(out[:maxMeshBroadcast])
	slices.SortStableFunc(out, func(a, b *peer) int { return strings.Compare(a.ServerID, b.ServerID) })
	return out, left
}

// meshCapabilities reports what the mesh advertises for the destination
// p, with the route it takes.
func (n *Node) meshCapabilities(p *peer) (*CapabilityReport, error) {
	routes := n.mesh.to(p.ServerID, p.AgentID)
	if len(routes) == 0 {
		return nil, fmt.Errorf("%w: gateway %q has no mesh route to agent %q of gateway %q any more", ErrUnknownPeer, n.serverID, p.AgentID, p.ServerID)
	}
	r := routes[0]
	return &CapabilityReport{PeerID: p.ID, PeerName: p.Name, Capabilities: nonNil(r.Capabilities), Description: r.Description,
		Via: r.via, Hops: r.hops(), Route: append([]string{n.serverID}, r.Path...)}, nil
}
