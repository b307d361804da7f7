package federation

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/agentfed/agentfed/discovery"
)

// SourceDiscovered marks peers found by mDNS (federation.discovery).
const SourceDiscovered = "discovered"

// DiscoveryConfig is federation.discovery: finding gateways on the local
// network, and which of them to use. An agentfed addition to the seed's
// section.
type DiscoveryConfig struct {
	MDNS MDNSConfig `yaml:"mdns" json:"mdns"`
	// Accept lists the discovered gateways this one uses. A discovered
	// gateway that no rule accepts shows in list_peers and is never
	// dialled, sent to or delegated to.
	Accept []AcceptRule `yaml:"accept" json:"accept,omitempty"`
}

// MDNSConfig turns on mDNS (DNS-SD) advertising and browsing; see package
// discovery.
type MDNSConfig struct {
	// Enabled advertises this gateway and browses for others. Default
	// false. Needs federation.enabled.
	Enabled bool `yaml:"enabled" json:"enabled,omitempty"`
	// Service is the DNS-SD service type. Default "_agentfed._tcp".
	Service string `yaml:"service" json:"service,omitempty"`
	// Interface is the one network interface to advertise and browse on,
	// like "lo" or "eth0". Required when enabled: there is no default, so
	// that no gateway announces itself on a network nobody chose.
	Interface string `yaml:"interface" json:"interface,omitempty"`
	// IntervalMs is how often to browse. Default 10000. A gateway silent
	// for three intervals has left.
	IntervalMs int `yaml:"intervalMs" json:"intervalMs,omitempty"`
}

// AcceptRule accepts the discovered gateways that match every field it
// sets; it must set serverId, fingerprint or both.
type AcceptRule struct {
	// ServerID is the serverId the gateway advertises. Alone, it accepts
	// any gateway on the network that claims that name.
	ServerID string `yaml:"serverId" json:"serverId,omitempty"`
	// Fingerprint is the fingerprint of the gateway's signing key, as its
	// `agentfed identity` prints it. A gateway accepted by fingerprint has
	// its advertised key pinned: its replies must be signed by it.
	Fingerprint string `yaml:"fingerprint" json:"fingerprint,omitempty"`
	// Token is presented when dialling an accepted gateway; it may be
	// written ${VAR}.
	Token string `yaml:"token" json:"token,omitempty"`
}

// DiscoveredInfo is how a discovered gateway shows in list_peers.
type DiscoveredInfo struct {
	ServerID    string `json:"serverId"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Accepted: a federation.discovery.accept rule accepts it, so it is
	// used like a dynamic peer. Otherwise Reason says why not.
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
	LastSeen int64  `json:"lastSeen"` // Unix milliseconds
}

// Defaults of federation.discovery.mdns.
const defaultDiscoveryIntervalMs = 10000

// discovered is what mDNS found, as the node last heard it.
type discovered struct {
	mu    sync.Mutex // guards peers
	peers []discoveredPeer
}

// discoveredPeer is one (gateway, agent) found by mDNS.
type discoveredPeer struct {
	PeerConfig
	info DiscoveredInfo
}

// startDiscovery advertises this gateway on federation.discovery.mdns's
// interface and browses for others; url is where it listens.
func (n *Node) startDiscovery(url string) (*discovery.MDNS, error) {
	c := n.cfg.Federation.Discovery.MDNS
	pub := n.identity.Public()
	self := discovery.Gateway{ServerID: n.serverID, URL: url, SigningKey: pub.SigningKey, Fingerprint: pub.Fingerprint}
	for _, id := range n.agentIDs() {
		a := n.agents[id].cfg
		self.Agents = append(self.Agents, discovery.Agent{ID: a.ID, Capabilities: a.Capabilities})
	}
	m, dropped, err := discovery.Start(discovery.Config{
		Service: c.Service, Interface: c.Interface, Interval: time.Duration(c.IntervalMs) * time.Millisecond,
		Logger: n.log, OnChange: n.onDiscovered,
	}, self)
	if err != nil {
		return nil, fmt.Errorf("federation.discovery.mdns: %w", err)
	}
	if dropped > 0 {
		n.log.Warn("mdns: agents or capabilities left out of the announcement (too long or too many; see docs/PROTOCOL.md)", "dropped", dropped)
	}
	n.log.Info("mdns discovery", "interface", c.Interface, "service", cmpOr(c.Service, discovery.DefaultService), "url", url)
	return m, nil
}

// agentIDs returns the local agents' ids, sorted.
func (n *Node) agentIDs() []string {
	ids := make([]string, 0, len(n.agents))
	for id := range n.agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// onDiscovered takes the gateways mDNS sees now: every one is listed, and
// the ones an accept rule accepts become peers of source discovered.
func (n *Node) onDiscovered(gws []discovery.Gateway) {
	var all []discoveredPeer
	for _, g := range gws {
		all = append(all, n.discoveredPeers(g, gws)...)
	}
	all = capAccepted(all, n.cfg.Federation.MaxDynamicPeers)
	var accepted []PeerConfig
	for _, p := range all {
		if p.info.Accepted {
			accepted = append(accepted, p.PeerConfig)
		}
	}
	n.found.mu.Lock()
	n.found.peers = all
	n.found.mu.Unlock()
	for _, id := range n.peers.replaceDiscovered(accepted) {
		n.pool.Drop(id)
		n.tracker.forget(id)
	}
	n.log.Debug("mdns: gateways seen", "gateways", len(gws), "acceptedPeers", len(accepted))
}

// capAccepted keeps at most limit of the peers accepted (in order; the
// limit is federation.maxDynamicPeers, counted apart from registered
// peers) and lists the rest as not accepted, saying why.
func capAccepted(all []discoveredPeer, limit int) []discoveredPeer {
	n := 0
	for i := range all {
		if !all[i].info.Accepted {
			continue
		}
		if n++; n > limit {
			all[i].info.Accepted = false
			all[i].info.Reason = fmt.Sprintf("over federation.maxDynamicPeers: %d discovered peers are accepted already", limit)
			all[i].Enabled = new(bool)
		}
	}
	return all
}

// discoveredPeers turns one announcement into peers, one per agent (named
// <agentId>@<serverId>), accepted or with the reason they are not.
func (n *Node) discoveredPeers(g discovery.Gateway, all []discovery.Gateway) []discoveredPeer {
	info := DiscoveredInfo{ServerID: g.ServerID, Fingerprint: g.Fingerprint, LastSeen: g.LastSeen.UnixMilli()}
	rule, reason := n.acceptRule(g, all)
	base := PeerConfig{URL: g.URL, ServerID: g.ServerID, Description: "discovered by mDNS"}
	if rule != nil {
		base.Token = rule.Token
		if rule.Fingerprint != "" {
			base.PublicKey = g.SigningKey // checked against the fingerprint in acceptRule
		}
		info.Accepted = true
	} else {
		info.Reason = reason
		base.Enabled = new(bool)
	}
	agents := g.Agents
	if len(agents) == 0 {
		agents = []discovery.Agent{{}} // listed, with nothing to reach
	}
	var out []discoveredPeer
	for _, a := range agents {
		p := base
		p.ID, p.Name, p.AgentID = g.ServerID, g.ServerID, a.ID
		if a.ID != "" {
			p.ID = a.ID + "@" + g.ServerID
		}
		p.Capabilities = validCapabilities(a.Capabilities)
		d := discoveredPeer{PeerConfig: p, info: info}
		if problems := ValidatePeer(p, "peer"); d.info.Accepted && len(problems) > 0 {
			d.info.Accepted, d.info.Reason = false, "unusable announcement: "+problems[0].String()
			d.Enabled = new(bool)
		}
		out = append(out, d)
	}
	return out
}

// acceptRule returns the federation.discovery.accept rule that accepts g,
// or nil and why none does. A rule with a fingerprint needs the advertised
// key to have it, and refuses a key announced with two URLs at once (a
// copied announcement: the rule's token would go to the copier); a rule
// with a serverId alone refuses a name announced twice.
func (n *Node) acceptRule(g discovery.Gateway, all []discovery.Gateway) (*AcceptRule, string) {
	keyOK := false
	if k, err := ParseSigningKey(g.SigningKey); err == nil && Fingerprint(k) == g.Fingerprint {
		keyOK = true
	}
	claims, sameKey := 0, 0 // announcements of this serverId, and of it with this key
	for _, o := range all {
		if o.ServerID == g.ServerID {
			claims++
			if o.Fingerprint == g.Fingerprint {
				sameKey++
			}
		}
	}
	rules := n.cfg.Federation.Discovery.Accept
	for i := range rules {
		r := &rules[i]
		if r.ServerID != "" && r.ServerID != g.ServerID {
			continue
		}
		if r.Fingerprint != "" {
			if !keyOK || !strings.EqualFold(r.Fingerprint, g.Fingerprint) {
				continue
			}
			if sameKey > 1 { // a copy of its announcement elsewhere: which URL is the gateway's?
				return nil, fmt.Sprintf("%d announcements of serverId %q with this key give different URLs; not used until one remains", sameKey, g.ServerID)
			}
			return r, ""
		}
		if claims > 1 {
			return nil, fmt.Sprintf("%d gateways claim serverId %q; accept it by fingerprint (federation.discovery.accept[%d])", claims, g.ServerID, i)
		}
		return r, ""
	}
	if !keyOK {
		return nil, "no federation.discovery.accept rule matches (and its key does not match its fingerprint)"
	}
	return nil, "no federation.discovery.accept rule matches its serverId or fingerprint"
}

// replaceDiscovered makes the peers of source discovered exactly accepted
// (an id a static or dynamic peer has stays theirs), and returns the ids
// that went or changed.
func (r *registry) replaceDiscovered(accepted []PeerConfig) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]PeerConfig, len(accepted))
	for _, p := range accepted {
		next[p.ID] = p
	}
	var changed []string
	for id, old := range r.byID {
		if old.source != SourceDiscovered {
			continue
		}
		if p, ok := next[id]; !ok || !samePeer(old.PeerConfig, p) {
			r.removeLocked(old)
			changed = append(changed, id)
		}
	}
	for _, p := range accepted {
		if _, taken := r.byID[p.ID]; !taken {
			r.addLocked(newPeer(p, SourceDiscovered))
		}
	}
	return changed
}

// validCapabilities keeps the advertised capabilities that parse.
func validCapabilities(caps []string) []string {
	out := []string{}
	for _, c := range caps {
		if _, err := parseCapability(c); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// unaccepted returns the discovered peers no rule accepts (or whose id an
// other peer has), for list_peers.
func (n *Node) unaccepted() []discoveredPeer {
	n.found.mu.Lock()
	defer n.found.mu.Unlock()
	var out []discoveredPeer
	for _, p := range n.found.peers {
		q := n.peers.get(p.ID)
		switch {
		case !p.info.Accepted:
			out = append(out, p)
		case q != nil && q.source != SourceDiscovered:
			p.info.Accepted, p.info.Reason = false, fmt.Sprintf("a %s peer has the id %q", q.source, p.ID)
			p.Enabled = new(bool)
			out = append(out, p)
		}
	}
	return out
}

// discoveredInfo returns how a peer of source discovered was found.
func (n *Node) discoveredInfo(id string) *DiscoveredInfo {
	n.found.mu.Lock()
	defer n.found.mu.Unlock()
	for _, p := range n.found.peers {
		if p.ID == id {
			info := p.info
			return &info
		}
	}
	return nil
}

// notAccepted explains an id that names a discovered gateway nobody
// accepted, or returns nil.
func (n *Node) notAccepted(id string) error {
	if info := n.discoveredInfo(id); info != nil && !info.Accepted {
		return fmt.Errorf("%w: peer %q was discovered by mDNS but is not used: %s; add a federation.discovery.accept rule with its serverId %q or fingerprint %q",
			ErrForbidden, id, info.Reason, info.ServerID, info.Fingerprint)
	}
	return nil
}

// discovery checks federation.discovery.
func (ch *checker) discovery(f *FederationConfig) {
	d := &f.Discovery
	m := d.MDNS
	if m.Enabled && !f.Enabled {
		ch.add("federation.discovery.mdns.enabled", "needs federation.enabled: true; a gateway with federation off neither advertises nor browses")
	}
	if m.Enabled && m.Interface == "" {
		ch.add("federation.discovery.mdns.interface", "required when mdns is enabled: name the one network interface to advertise and browse on, like lo or eth0 (there is no default)")
	}
	if strings.IndexFunc(m.Interface, unicode.IsSpace) >= 0 {
		ch.add("federation.discovery.mdns.interface", "%q is not an interface name", clip(m.Interface, 40))
	}
	if s := m.Service; s != "" && !validService(s) {
		ch.add("federation.discovery.mdns.service", "%q is not a DNS-SD service type; write it like _agentfed._tcp (an underscore, up to 15 letters, digits or hyphens, then ._tcp)", clip(s, 40))
	}
	ch.timeout("federation.discovery.mdns.intervalMs", m.IntervalMs)
	for i, r := range d.Accept {
		path := fmt.Sprintf("federation.discovery.accept[%d]", i)
		if r.ServerID == "" && r.Fingerprint == "" {
			ch.add(path, "set serverId, fingerprint or both: a rule without them would accept every gateway on the network")
		}
		if r.Fingerprint != "" && !validFingerprint(r.Fingerprint) {
			ch.add(path+".fingerprint", "%q is not a key fingerprint; copy the fingerprint line of the gateway's `agentfed identity` (16 hex bytes separated by colons)", clip(r.Fingerprint, 60))
		}
		if f.RequireAuth && r.Token == "" {
			ch.add(path+".token", "required because federation.requireAuth is true")
		}
	}
}

// validService accepts _name._tcp or _name._udp with a 1-15 character
// name of letters, digits and hyphens.
func validService(s string) bool {
	name, proto, ok := strings.Cut(s, ".")
	if !ok || (proto != "_tcp" && proto != "_udp") || len(name) < 2 || len(name) > 16 || name[0] != '_' {
		return false
	}
	for _, r := range name[1:] {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// validFingerprint accepts 16 colon-separated hex bytes, as Fingerprint
// writes them.
func validFingerprint(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 16 {
		return false
	}
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(p, "0123456789abcdefABCDEF") != "" {
			return false
		}
	}
	return true
}
