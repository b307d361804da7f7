package federation

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/agentfed/agentfed/gateway"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path names the field, like federation.peers[1].url. It is empty when
	// the problem concerns the file as a whole.
	Path string
	// Message says what is wrong and what to do about it.
	Message string
	// Line is the 1-based line of the field in the configuration file, or 0
	// when the configuration did not come from a file.
	Line int
}

// String formats p as "line 7: federation.peers[0].url: message", leaving
// out the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	// File names the configuration file, if there is one.
	File     string
	Problems []Problem
}

// Error returns the problems one per line, each prefixed with the file name
// when it is known.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid configuration"
	}
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File != "" {
			b.WriteString(e.File)
			b.WriteString(": ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Defaults that ApplyDefaults sets, beside the exported ones.
const (
	defaultReplayWindowMs = 300000
	defaultHeartbeatMs    = 5000
	defaultIdleTimeoutMs  = 600000
	defaultAuditMaxSizeMB = 10
	defaultAuditMaxFiles  = 5
)

// minTickIntervalMs is the shortest gateway.tickIntervalMs: a tick is a
// frame to every connection.
const minTickIntervalMs = 100

// ApplyDefaults fills in every unset field that has a default. It is the
// one place defaults are applied; call it before Validate.
func (c *Config) ApplyDefaults() {
	if c.Gateway.Listen == "" {
		c.Gateway.Listen = DefaultListen
	}
	if c.Federation.DefaultTimeoutMs == 0 {
		c.Federation.DefaultTimeoutMs = DefaultTimeoutMs
	}
	if c.Storage.Dir == "" {
		c.Storage.Dir = DefaultStorage
	}
	f, g := &c.Federation, &c.Gateway
	setDefault(&f.MaxHops, DefaultMaxHops)
	setDefault(&f.Mesh.MaxHops, DefaultMeshMaxHops)
	setDefault(&f.MaxDynamicPeers, DefaultMaxDynamicPeers)
	setDefault(&f.Durable.MaxAttempts, defaultMaxAttempts)
	setDefault(&f.Durable.RetentionMs, int(processedKeep.Milliseconds()))
	setDefault(&f.Discovery.MDNS.IntervalMs, defaultDiscoveryIntervalMs)
	setDefault(&g.ReplayWindowMs, defaultReplayWindowMs)
	setDefault(&g.HeartbeatMs, defaultHeartbeatMs)
	setDefault(&g.IdleTimeoutMs, defaultIdleTimeoutMs)
	setDefault(&c.Audit.MaxSizeMB, defaultAuditMaxSizeMB)
	setDefault(&c.Audit.MaxFiles, defaultAuditMaxFiles)
	for i := range c.Agents {
		a := &c.Agents[i]
		if a.Name == "" {
			a.Name = a.ID
		}
		if a.Handler.Type == "" {
			a.Handler.Type = "echo"
		}
		setDefault(&a.MaxConcurrency, defaultAgentConcurrency)
		setDefault(&a.MaxQueue, defaultAgentQueue)
	}
}

// withDefaults returns a copy of c with ApplyDefaults applied, leaving c
// (and the agents it shares with the copy) as it was.
func (c *Config) withDefaults() *Config {
	d := *c
	d.Agents = slices.Clone(c.Agents)
	d.ApplyDefaults()
	return &d
}

// setDefault sets *v to def when it is 0, "use the default". Negative
// values, where a field allows them, keep their meaning.
func setDefault[T int | int64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate checks the whole configuration and reports every problem at
// once as a *ValidationError. Fields left empty count as "use the default",
// so Validate accepts a configuration whether or not ApplyDefaults ran.
// Each agent's handler settings belong to the package that implements the
// handler kinds, which checks them (agent.Check; the configuration loader
// runs both): a Node is given its Handlers ready made.
func (c *Config) Validate() error {
	var ch checker
	ch.federation(&c.Federation)
	ch.gateway(&c.Gateway)
	ch.agents(c.Agents)
	ch.nats(c)
	if len(ch.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: ch.problems}
}

// ValidatePeer checks one peer's own fields: id, name, url and agentId are
// required, the url must be ws:// or wss:// with a host, timeoutMs must not
// be negative and capabilities must not be empty strings. path prefixes
// each problem's Path, like "federation.peers[2]".
//
// It does not check what depends on the rest of the configuration: that the
// id is unique, and that the peer has a token when federation.requireAuth is
// true. Callers registering peers at runtime must check both themselves.
func ValidatePeer(p PeerConfig, path string) []Problem {
	var ch checker
	ch.peer(&p, path)
	return ch.problems
}

// checker accumulates problems while Validate walks a configuration.
type checker struct {
	problems []Problem
}

func (ch *checker) add(path, format string, args ...any) {
	ch.problems = append(ch.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ch *checker) federation(f *FederationConfig) {
	ch.ident("federation.serverId", f.ServerID, "a single word such as \"main-agent-server\"")
	ch.timeout("federation.defaultTimeoutMs", f.DefaultTimeoutMs)
	ch.count("federation.maxDynamicPeers", f.MaxDynamicPeers)
	ch.timeout("federation.durable.maxAgeMs", f.Durable.MaxAgeMs)
	ch.timeout("federation.durable.retentionMs", f.Durable.RetentionMs)
	if f.MaxHops < 0 || f.MaxHops > maxMaxHops {
		ch.add("federation.maxHops", "%d is not from 1 to %d; leave it out for %d", f.MaxHops, maxMaxHops, DefaultMaxHops)
	}
	if st := f.Delegation.Strategy; st != "" && !slices.Contains(Strategies, st) {
		ch.add("federation.delegation.strategy", "%q is not one of %s", st, strings.Join(Strategies, ", "))
	}
	ch.discovery(f)
	if f.Mesh.MaxHops < 0 || f.Mesh.MaxHops > maxMeshHops {
		ch.add("federation.mesh.maxHops", "%d is not from 1 to %d; leave it out for %d", f.Mesh.MaxHops, maxMeshHops, DefaultMeshMaxHops)
	}
	first := make(map[string]int) // peer id -> index of its first use
	for i := range f.Peers {
		p := &f.Peers[i]
		path := fmt.Sprintf("federation.peers[%d]", i)
		ch.peer(p, path)
		if p.ID != "" {
			if j, dup := first[p.ID]; dup {
				ch.add(path+".id", "duplicate id %q (also federation.peers[%d]); give each peer a unique id", p.ID, j)
			} else {
				first[p.ID] = i
			}
		}
		if f.RequireAuth && p.Token == "" {
			ch.add(path+".token", "required because federation.requireAuth is true")
		}
	}
}

func (ch *checker) peer(p *PeerConfig, path string) {
	if p.ID == "" {
		ch.add(path+".id", "required; give the peer a unique id such as \"research-agent\"")
	} else {
		ch.ident(path+".id", p.ID, "a unique id such as \"research-agent\"")
	}
	if p.Name == "" {
		ch.add(path+".name", "required; give the peer a human-readable name")
	} else {
		ch.text(path+".name", p.Name, maxPeerNameBytes)
	}
	switch {
	case p.URL == "":
		ch.add(path+".url", "required; set the peer gateway's WebSocket address, like ws://127.0.0.1:18789")
	case len(p.URL) > maxPeerURLBytes:
		ch.add(path+".url", "is %d bytes long; at most %d", len(p.URL), maxPeerURLBytes)
	case p.Type == PeerTypeA2A:
		ch.url(path+".url", p.URL, "http", "https")
		if hasUserinfo(p.URL) {
			ch.add(path+".url", "must not hold a user name or password (user:password@host): URLs are shown in list_peers, logs and the audit log; remove it and give the secret as the peer's token (peerToken in register_peer)")
		}
	default:
		ch.url(path+".url", p.URL, "ws", "wss")
		if hasUserinfo(p.URL) {
			ch.add(path+".url", "must not hold a user name or password (user:password@host): URLs are shown in list_peers, logs and the audit log; remove it and give the secret as the peer's token (peerToken in register_peer)")
		}
	}
	if p.Type != "" && p.Type != PeerTypeGateway && p.Type != PeerTypeA2A {
		ch.add(path+".type", "is %q; use %q (an agentfed gateway) or %q (an A2A agent)", p.Type[:min(len(p.Type), 32)], PeerTypeGateway, PeerTypeA2A)
	}
	if p.AgentID == "" {
		ch.add(path+".agentId", "required; name the agent on the peer's gateway that receives the messages")
	} else {
		ch.ident(path+".agentId", p.AgentID, "the id of the agent on the peer's gateway")
	}
	ch.capabilities(path+".capabilities", p.Capabilities)
	ch.text(path+".description", p.Description, maxDescriptionBytes)
	if len(p.Token) > maxPeerTokenBytes {
		ch.add(path+".token", "is %d bytes long; at most %d", len(p.Token), maxPeerTokenBytes)
	}
	ch.timeout(path+".timeoutMs", p.TimeoutMs)
	ch.ident(path+".serverId", p.ServerID, "the peer gateway's federation.serverId")
	ch.peerTLS(p, path)
	ch.peerKeys(p, path)
}

// url checks that raw parses as an absolute URL with one of two schemes and
// a host.
func (ch *checker) url(path, raw, scheme, secureScheme string) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		ch.add(path, "not a valid URL (%v); write it like %s://host:port", err, scheme)
		return
	}
	if u.Scheme == "" {
		ch.add(path, "has no scheme; write it like %s://host:port or %s://host:port", scheme, secureScheme)
		return
	}
	if u.Scheme != scheme && u.Scheme != secureScheme {
		ch.add(path, "scheme %q is not %s:// or %s://", u.Scheme, scheme, secureScheme)
		return
	}
	if u.Hostname() == "" {
		ch.add(path, "has no host; write it like %s://host:port", scheme)
	}
}

// hasUserinfo reports whether raw parses as a URL with a user name or
// password, which a peer URL may not carry.
func hasUserinfo(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

func (ch *checker) timeout(path string, ms int) {
	if ms < 0 {
		ch.add(path, "must not be negative (got %d); give milliseconds, or 0 for the default", ms)
	}
}

// capabilities checks a list of capabilities, each a name with an
// optional semantic version (see capversion.go).
func (ch *checker) capabilities(path string, caps []string) {
	if len(caps) > maxCapabilities {
		ch.add(path, "has %d entries; at most %d", len(caps), maxCapabilities)
		return
	}
	for i, c := range caps {
		switch {
		case strings.TrimSpace(c) == "":
			ch.add(fmt.Sprintf("%s[%d]", path, i), "empty capability; name it or remove the entry")
		case len(c) > maxCapabilityBytes:
			ch.add(fmt.Sprintf("%s[%d]", path, i), "is %d bytes long; at most %d", len(c), maxCapabilityBytes)
		default:
			if _, err := parseCapability(c); err != nil {
				ch.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
			}
		}
	}
}

// ident checks an identifier that may be left out (ident.go); what says
// what to write instead.
func (ch *checker) ident(path, v, what string) {
	if p := identProblem(v, false); p != "" {
		ch.add(path, "%s; use %s", p, what)
	}
}

// text checks free text: at most max bytes. (Control characters are
// allowed: the CLI neutralises them when it shows text.)
func (ch *checker) text(path, v string, max int) {
	if len(v) > max {
		ch.add(path, "is %d bytes long; at most %d", len(v), max)
	}
}

func (ch *checker) gateway(g *GatewayConfig) {
	if g.Listen != "" {
		ch.listen("gateway.listen", g.Listen)
	}
	if m := g.Metrics.Listen; m != "" {
		ch.listen("gateway.metrics.listen", m)
		if _, port, _ := net.SplitHostPort(m); m == g.Listen && port != "0" {
			ch.add("gateway.metrics.listen", "%q is gateway.listen too; give it an address of its own, or leave it out to serve /metrics on gateway.listen", m)
		}
	}
	first := make(map[string]int) // serverId -> index of its first use
	for i, cred := range g.Auth.Peers {
		path := fmt.Sprintf("gateway.auth.peers[%d]", i)
		folded := strings.ToLower(cred.ServerID)
		switch {
		case cred.ServerID == "":
			ch.add(path+".serverId", "required; give the federation.serverId of the peer gateway allowed to connect")
		case !validIdent(cred.ServerID):
			ch.ident(path+".serverId", cred.ServerID, "the peer gateway's federation.serverId")
		default:
			// Spellings that differ only in case name one gateway to a
			// human: refuse them, so that no two entries can be confused.
			if j, dup := first[folded]; dup && g.Auth.Peers[j].ServerID == cred.ServerID {
				ch.add(path+".serverId", "duplicate serverId %q (also gateway.auth.peers[%d]); merge the entries", cred.ServerID, j)
			} else if dup {
				ch.add(path+".serverId", "%q differs only in case from gateway.auth.peers[%d].serverId %q; server ids are compared exactly, so spell one gateway one way", cred.ServerID, j, g.Auth.Peers[j].ServerID)
			} else {
				first[folded] = i
			}
		}
		if cred.Token == "" {
			ch.add(path+".token", "required; set the token this peer presents when it connects")
		}
	}
	for i, cred := range g.Auth.Peers {
		path := fmt.Sprintf("gateway.auth.peers[%d]", i)
		for j, m := range cred.AllowMethods {
			if !slices.Contains(roleMethods[gateway.RolePeer], m) {
				ch.add(fmt.Sprintf("%s.allowMethods[%d]", path, j), "%q is not a peer method; use federation.relay, federation.capabilities, federation.health or federation.routes", m)
			}
		}
		ch.actions(path+".allowActions", cred.AllowActions)
		for j, c := range cred.AllowCapabilities {
			if _, err := parseRequirement(c); err != nil {
				ch.add(fmt.Sprintf("%s.allowCapabilities[%d]", path, j), "%v", err)
			}
		}
		ch.count(path+".maxMessageBytes", cred.MaxMessageBytes)
		if cred.RatePerSec < 0 {
			ch.add(path+".ratePerSec", "%g is negative; leave it out for gateway.limits.peerRatePerSec", cred.RatePerSec)
		}
		if cred.PreviousToken != "" && cred.PreviousToken == cred.Token {
			ch.add(path+".previousToken", "is the same as token; set it to the token being replaced, or remove it")
		}
	}
	var hosts hostAllowList
	for i, h := range g.DynamicPeerHosts {
		if err := hosts.add(h); err != nil {
			ch.add(fmt.Sprintf("gateway.dynamicPeerHosts[%d]", i), "%v", err)
		}
	}
	ch.timeout("gateway.replayWindowMs", g.ReplayWindowMs)
	ch.timeout("gateway.idleTimeoutMs", g.IdleTimeoutMs)
	if g.TickIntervalMs != 0 && g.TickIntervalMs < minTickIntervalMs {
		ch.add("gateway.tickIntervalMs", "is %d; give at least %d milliseconds, or 0 for the default (30000)", g.TickIntervalMs, minTickIntervalMs)
	}
	ch.serverTLS(&g.TLS)
	ch.signing(g)
	ch.timeout("gateway.heartbeatMs", g.HeartbeatMs)
	ch.timeout("gateway.breaker.openMs", g.Breaker.OpenMs)
	ch.count("gateway.breaker.failures", g.Breaker.Failures)
	ch.count("gateway.limits.peerBurst", g.Limits.PeerBurst)
	ch.count("gateway.limits.maxConnections", g.Limits.MaxConnections)
	ch.count("gateway.limits.maxHandshakes", g.Limits.MaxHandshakes)
	for i, o := range g.AllowedOrigins {
		if why := gateway.ValidOrigin(o); why != "" {
			ch.add(fmt.Sprintf("gateway.allowedOrigins[%d]", i), "%q %s", clip(o, 80), why)
		}
	}
	ch.a2aAuth(g.Auth.A2A)
	ch.sharedTokens(&g.Auth)
}

// sharedTokens reports a token that authenticates more than one identity:
// two gateway.auth.peers entries (either could then pose as the other), or
// a peer and the operator. Messages name the fields, never the token.
func (ch *checker) sharedTokens(a *AuthConfig) {
	owner := make(map[string]string) // token -> field path of its first use
	use := func(path, token string) {
		if token == "" {
			return
		}
		if first, dup := owner[token]; dup {
			ch.add(path, "is the same token as %s; give each peer and the operator a token of its own", first)
			return
		}
		owner[token] = path
	}
	use("gateway.auth.operatorToken", a.OperatorToken)
	for i, c := range a.Peers {
		path := fmt.Sprintf("gateway.auth.peers[%d]", i)
		use(path+".token", c.Token)
		if c.PreviousToken != c.Token { // reported on its own above
			use(path+".previousToken", c.PreviousToken)
		}
	}
	for i, c := range a.A2A {
		path := fmt.Sprintf("gateway.auth.a2a[%d]", i)
		use(path+".token", c.Token)
		if c.PreviousToken != c.Token {
			use(path+".previousToken", c.PreviousToken)
		}
	}
}

// count checks a count that may be left out (0) but not negative.
func (ch *checker) count(path string, n int) {
	if n < 0 {
		ch.add(path, "%d is negative; leave it out for the default", n)
	}
}

func (ch *checker) listen(path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		reason := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			reason = ae.Err
		}
		ch.add(path, "%q is not host:port (%s); write it like 127.0.0.1:18789", addr, reason)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ch.add(path, "port %q is not a number from 0 to 65535; write it like 127.0.0.1:18789", port)
	}
}

func (ch *checker) agents(agents []AgentConfig) {
	first := make(map[string]int) // agent id -> index of its first use
	for i := range agents {
		a := &agents[i]
		path := fmt.Sprintf("agents[%d]", i)
		if a.ID == "" {
			ch.add(path+".id", "required; give the agent a unique id such as \"agent-research-01\"")
		} else if !validIdent(a.ID) {
			ch.ident(path+".id", a.ID, "a unique id such as \"agent-research-01\"")
		} else if j, dup := first[a.ID]; dup {
			ch.add(path+".id", "duplicate id %q (also agents[%d]); give each agent a unique id", a.ID, j)
		} else {
			first[a.ID] = i
		}
		ch.capabilities(path+".capabilities", a.Capabilities)
		ch.count(path+".maxConcurrency", a.MaxConcurrency)
		ch.count(path+".maxQueue", a.MaxQueue)
	}
}

// actions checks an allow-list of tool actions.
func (ch *checker) actions(path string, names []string) {
	for i, a := range names {
		if !slices.Contains(Actions, a) {
			ch.add(fmt.Sprintf("%s[%d]", path, i), "%q is not an action; use %s", clip(a, 40), strings.Join(Actions, ", "))
		}
	}
}
