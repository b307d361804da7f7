package federation

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// PeerInfo is one entry of list_peers: the seed's fields plus source and
// live connection state. The token is never shown.
type PeerInfo struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	URL          string         `json:"url"`
	AgentID      string         `json:"agentId"`
	Capabilities []string       `json:"capabilities"`
	Description  string         `json:"description,omitempty"`
	Enabled      bool           `json:"enabled"`
	Source       string         `json:"source"` // static, dynamic or discovered
	TimeoutMs    int            `json:"timeoutMs,omitempty"`
	Connected    bool           `json:"connected"`
	Health       PeerHealthInfo `json:"health"`
	// Discovered says how a peer of source discovered was found, and
	// whether it is used.
	Discovered *DiscoveredInfo `json:"discovered,omitempty"`
	// Via, Hops and Route describe an agent of source mesh (id
	// "serverId/agentId"): the peer its best route starts at, how many
	// relays it takes, and the gateways it crosses, this one first.
	Via   string   `json:"via,omitempty"`
	Hops  int      `json:"hops,omitempty"`
	Route []string `json:"route,omitempty"`
}

// PeerList is the result of list_peers.
type PeerList struct {
	ServerID   string     `json:"serverId"`
	TotalPeers int        `json:"totalPeers"`
	Peers      []PeerInfo `json:"peers"`
}

// ListPeers returns every static, dynamic and discovered peer (the
// discovered ones whether or not a rule accepts them), ordered by id.
func (n *Node) ListPeers() *PeerList {
	out := &PeerList{ServerID: n.serverID, Peers: []PeerInfo{}}
	for _, p := range n.natsPeers(context.Background(), n.peers.list()) {
		info := PeerInfo{
			ID: p.ID, Name: p.Name, URL: p.URL, AgentID: p.AgentID, Capabilities: nonNil(p.Capabilities),
			Description: p.Description, Enabled: p.IsEnabled(), Source: p.source, TimeoutMs: p.TimeoutMs,
			Connected: n.pool.Connected(p.ID) || n.natsUp(p), Health: n.peerHealth(p.ID),
		}
		if p.source == SourceDiscovered {
			info.Discovered = n.discoveredInfo(p.ID)
		}
		out.Peers = append(out.Peers, info)
	}
	if found := n.unaccepted(); len(found) > 0 {
		for _, p := range found {
			info := p.info
			out.Peers = append(out.Peers, PeerInfo{ID: p.ID, Name: p.Name, URL: p.URL, AgentID: p.AgentID,
				Capabilities: nonNil(p.Capabilities), Description: p.Description, Source: SourceDiscovered,
				Health: PeerHealthInfo{State: HealthUnknown}, Discovered: &info})
		}
		slices.SortStableFunc(out.Peers, func(a, b PeerInfo) int { return strings.Compare(a.ID, b.ID) })
	}
	out.Peers = append(out.Peers, n.meshPeerInfos()...) // after the direct peers; meshrelay.go
	out.TotalPeers = len(out.Peers)
	return out
}

// RegisterRequest is the register_peer action.
type RegisterRequest struct {
	PeerID           string   `json:"peerId"`
	PeerName         string   `json:"peerName"`
	PeerURL          string   `json:"peerUrl"`
	PeerAgentID      string   `json:"peerAgentId"`
	PeerToken        string   `json:"peerToken,omitempty"`
	PeerCapabilities []string `json:"peerCapabilities,omitempty"`
	PeerDescription  string   `json:"peerDescription,omitempty"`
	PeerTimeoutMs    int      `json:"peerTimeoutMs,omitempty"`
	// PeerType is "gateway" (the default: an agentfed gateway at a ws://
	// or wss:// URL) or "a2a" (an A2A agent at an http(s):// base URL).
	PeerType string `json:"peerType,omitempty"`
}

// PeerChange is the result of register_peer and unregister_peer.
type PeerChange struct {
	Success bool      `json:"success"`
	PeerID  string    `json:"peerId"`
	Message string    `json:"message"`
	Peer    *PeerInfo `json:"peer,omitempty"`
}

// RegisterPeer adds a dynamic peer, kept across restarts. It needs
// allowDynamicPeers, an unused id, and the same checks a config peer gets.
func (n *Node) RegisterPeer(req RegisterRequest) (*PeerChange, error) {
	if err := n.checkDynamic(); err != nil {
		return nil, err
	}
	pc := PeerConfig{
		ID: req.PeerID, Name: req.PeerName, URL: req.PeerURL, Token: req.PeerToken, AgentID: req.PeerAgentID,
		Capabilities: slices.Clone(req.PeerCapabilities), Description: req.PeerDescription, TimeoutMs: req.PeerTimeoutMs,
		Type: req.PeerType,
	}
	problems := ValidatePeer(pc, "")
	if n.cfg.Federation.RequireAuth && pc.Token == "" {
		problems = append(problems, Problem{Path: ".token", Message: "required because this gateway has federation.requireAuth=true"})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidParams, registerProblems(problems))
	}
	if err := n.checkDynamicHost(pc.URL); err != nil {
		return nil, err
	}
	if err := n.peers.register(pc, n.cfg.Federation.MaxDynamicPeers); err != nil {
		return nil, err
	}
	n.log.Info("peer registered", "id", pc.ID, "url", pc.URL, "agentId", pc.AgentID)
	n.audit.write(auditEvent{Dir: "op", Kind: "peer", Action: "register_peer", Peer: pc.ID, Outcome: "ok", Detail: pc.URL})
	info := n.peerInfo(pc.ID)
	return &PeerChange{Success: true, PeerID: pc.ID, Message: fmt.Sprintf("peer %q registered", pc.ID), Peer: info}, nil
}

// UnregisterPeer removes a dynamic peer and closes its connection.
func (n *Node) UnregisterPeer(id string) (*PeerChange, error) {
	if err := n.checkDynamic(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("%w: peerId is required", ErrInvalidParams)
	}
	if len(id) > MaxIDBytes && n.peers.get(id) == nil { // a longer one may date from before the limit
		return nil, fmt.Errorf("%w: peerId is %d bytes long; peer ids are at most %d", ErrUnknownPeer, len(id), MaxIDBytes)
	}
	if err := n.peers.unregister(id); err != nil {
		return nil, err
	}
	n.pool.Drop(id)
	n.a2aPeers.drop(id)
	n.tracker.forget(id)
	n.log.Info("peer unregistered", "id", id)
	n.audit.write(auditEvent{Dir: "op", Kind: "peer", Action: "unregister_peer", Peer: id, Outcome: "ok"})
	return &PeerChange{Success: true, PeerID: id, Message: fmt.Sprintf("peer %q unregistered", id)}, nil
}

func (n *Node) checkDynamic() error {
	if !n.cfg.Federation.DynamicPeersAllowed() {
		return fmt.Errorf("%w: this gateway has federation.allowDynamicPeers=false; add the peer to federation.peers instead", ErrDynamicPeersDisabled)
	}
	return nil
}

func (n *Node) peerInfo(id string) *PeerInfo {
	for _, p := range n.ListPeers().Peers {
		if p.ID == id {
			return &p
		}
	}
	return nil
}

// registerProblems renames config paths to the register_peer parameters a
// caller actually wrote.
func registerProblems(problems []Problem) string {
	names := map[string]string{"id": "peerId", "name": "peerName", "url": "peerUrl", "agentId": "peerAgentId",
		"token": "peerToken", "capabilities": "peerCapabilities", "timeoutMs": "peerTimeoutMs", "description": "peerDescription",
		"type": "peerType"}
	s := ""
	for i, p := range problems {
		path := strings.TrimPrefix(p.Path, ".")
		for k, v := range names {
			if path == k || len(path) > len(k) && path[:len(k)] == k && (path[len(k)] == '[' || path[len(k)] == '.') {
				path = v + path[len(k):]
			}
		}
		if i > 0 {
			s += "; "
		}
		s += path + ": " + p.Message
	}
	return s
}

// CapabilityReport is the result of query_capabilities, the seed's shape.
type CapabilityReport struct {
	PeerID       string   `json:"peerId"`
	PeerName     string   `json:"peerName"`
	Capabilities []string `json:"capabilities"`
	Description  string   `json:"description"`
	// Via, Hops and Route are set for an agent behind other gateways
	// (federation.mesh), whose report is what the mesh advertised.
	Via   string   `json:"via,omitempty"`
	Hops  int      `json:"hops,omitempty"`
	Route []string `json:"route,omitempty"`
}

// QueryCapabilities asks the peer's gateway, live, what its agent can do.
func (n *Node) QueryCapabilities(ctx context.Context, peerID string, timeoutMs int) (*CapabilityReport, error) {
	p, err := n.usablePeer(peerID)
	if err != nil {
		return nil, err
	}
	if timeoutMs < 0 {
		return nil, fmt.Errorf("%w: timeoutMs %d is negative", ErrInvalidParams, timeoutMs)
	}
	timeout := n.timeout(timeoutMs, p)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.Type == PeerTypeA2A {
		return n.queryA2ACapabilities(ctx, p, timeout) // a2apeer.go
	}
	if p.source == SourceNATS {
		return n.natsCapabilities(ctx, p)
	}
	if p.source == SourceMesh {
		return n.meshCapabilities(p) // meshrelay.go
	}
	c, err := n.conn(ctx, p)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: peer %q did not answer within %v", ErrTimeout, p.ID, timeout)
	}
	if err != nil {
		return nil, err
	}
	var caps Capabilities
	if err := c.Call(ctx, MethodCapabilities, nil, &caps); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: peer %q did not answer within %v", ErrTimeout, p.ID, timeout)
		}
		return nil, fmt.Errorf("query capabilities of peer %q: %w", p.ID, err)
	}
	for _, a := range caps.Agents {
		if a.ID == p.AgentID {
			return &CapabilityReport{PeerID: p.ID, PeerName: p.Name, Capabilities: nonNil(a.Capabilities), Description: a.Description}, nil
		}
	}
	return nil, fmt.Errorf("%w: peer %q (gateway %q) hosts no agent %q", ErrUnknownAgent, p.ID, caps.ServerID, p.AgentID)
}
