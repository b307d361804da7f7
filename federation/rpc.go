package federation

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/queue"
	"github.com/agentfed/agentfed/internal/wsconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Gateway methods served by a Node. Their params and payloads are described
// in docs/PROTOCOL.md.
const (
	MethodRelay        = "federation.relay"        // peer
	MethodCapabilities = "federation.capabilities" // peer, operator
	MethodHealth       = "federation.health"       // peer, operator
	MethodTool         = "federation.tool"         // operator
	MethodOutbox       = "federation.outbox"       // operator
	// OpenClaw's own methods, in OpenClaw's shapes, for its clients.
	MethodOpenClawHealth = "health" // operator
	MethodStatus         = "status" // operator
)

var roleMethods = map[string][]string{
	gateway.RolePeer:     {MethodRelay, MethodCapabilities, MethodHealth, MethodRoutes},
	gateway.RoleOperator: {MethodTool, MethodOutbox, MethodCapabilities, MethodHealth, MethodOpenClawHealth, MethodStatus},
}

func methodsFor(role string) []string { return roleMethods[role] }

// RelayParams are the params of federation.relay.
type RelayParams struct {
	TargetAgent string   `json:"targetAgent"`
	Message     *Message `json:"message"`
	// TimeoutMs is how long the caller will wait; the receiving gateway
	// stops the agent's work when it passes. agentfed's addition.
	TimeoutMs int64 `json:"timeoutMs,omitempty"`
	// Durable asks the receiver to handle this messageId at most once per
	// sender and to keep the reply, so that redelivery returns the same
	// answer. agentfed's addition.
	Durable bool `json:"durable,omitempty"`
	// Traceparent is the W3C trace context of the sender's span, when it
	// traces (OpenTelemetry), so that the receiver's spans join its trace.
	// agentfed's addition.
	Traceparent string `json:"traceparent,omitempty"`
	// TargetServer, Route and OriginKey carry a message across the mesh
	// (mesh.go): the gateway hosting TargetAgent, the gateways crossed so
	// far (the origin first, the sender last), and the origin's signing
	// key. agentfed's additions.
	TargetServer string   `json:"targetServer,omitempty"`
	Route        []string `json:"route,omitempty"`
	OriginKey    string   `json:"originKey,omitempty"`
}

// Capabilities is the payload of federation.capabilities.
type Capabilities struct {
	ServerID string      `json:"serverId"`
	Agents   []AgentInfo `json:"agents"`
	// SigningKey and EncryptionKey are the gateway's identity keys, so
	// that an operator can learn them; trust comes only from keys pinned
	// in the config. agentfed's addition.
	SigningKey    string `json:"signingKey,omitempty"`
	EncryptionKey string `json:"encryptionKey,omitempty"`
}

// AgentInfo describes one local agent.
type AgentInfo struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
	Description  string   `json:"description,omitempty"`
}

// Health is the payload of federation.health.
type Health struct {
	ServerID string        `json:"serverId"`
	Status   string        `json:"status"`
	UptimeMs int64         `json:"uptimeMs"`
	Peers    []PeerHealth  `json:"peers,omitempty"`
	Agents   []AgentHealth `json:"agents,omitempty"`
}

// AgentHealth is one local agent's load.
type AgentHealth struct {
	ID      string `json:"id"`
	Busy    int    `json:"busy"`    // messages being handled
	Waiting int    `json:"waiting"` // messages queued by priority
}

// PeerHealth is one peer's connection state, as seen from this gateway.
type PeerHealth struct {
	ID        string `json:"id"`
	Enabled   bool   `json:"enabled"`
	Connected bool   `json:"connected"`
	PeerHealthInfo
}

func (n *Node) authenticate(r *http.Request, p *gateway.ConnectParams) (*gateway.Identity, error) {
	id, err := n.authenticateRole(r, p)
	if err != nil {
		detail := ""
		var e *gateway.Error
		if errors.As(err, &e) {
			if d, ok := e.Details.(map[string]string); ok {
				detail = d["code"]
			}
		}
		n.metrics.refused("auth")
		n.audit.refuse(auditEvent{Dir: "in", Kind: "auth", Remote: r.RemoteAddr, Peer: p.Client.InstanceID, Method: p.Role,
			Outcome: gateway.CodeOf(err), Detail: detail}, time.Now())
	}
	return id, err
}

func (n *Node) authenticateRole(r *http.Request, p *gateway.ConnectParams) (*gateway.Identity, error) {
	token := ""
	if p.Auth != nil {
		token = p.Auth.Token
	}
	switch p.Role {
	case gateway.RoleOperator:
		return n.authenticateOperator(r, token)
	case gateway.RolePeer:
		return n.authenticatePeer(r, p, token)
	}
	return nil, gateway.NewError(gateway.CodeInvalidRequest, fmt.Sprintf("invalid role %q: agentfed serves operator and peer", p.Role))
}

func (n *Node) authenticateOperator(r *http.Request, token string) (*gateway.Identity, error) {
	return n.limitGuesses(r, func() (*gateway.Identity, error) { return n.operatorIdentity(r, token) })
}

// limitGuesses runs auth unless r's source has presented too many wrong
// tokens lately (see guessLimit), and counts a wrong one.
func (n *Node) limitGuesses(r *http.Request, auth func() (*gateway.Identity, error)) (*gateway.Identity, error) {
	if err := n.guesses.check(r); err != nil {
		return nil, err
	}
	id, err := auth()
	if wrongToken(err) {
		n.guesses.failed(r)
	}
	return id, err
}

func (n *Node) operatorIdentity(r *http.Request, token string) (*gateway.Identity, error) {
	want := n.auth().OperatorToken
	switch {
	case want != "" && tokenEqual(token, want):
		return &gateway.Identity{Role: gateway.RoleOperator, Authenticated: true, Credential: tokenFingerprint(token)}, nil
	case want != "" && token == "":
		return nil, unauthorized("AUTH_TOKEN_MISSING", "this gateway requires an operator token: pass --token, set AGENTFED_TOKEN, or let the CLI read the token agentfed serve keeps in its storage.dir (run it with the gateway's --config, or where ./agentfed-data is)")
	case want != "":
		return nil, unauthorized("AUTH_TOKEN_MISMATCH", "operator token is wrong: pass --token or set AGENTFED_TOKEN to gateway.auth.operatorToken")
	case n.guard.Local(r):
		return &gateway.Identity{Role: gateway.RoleOperator}, nil
	case isLoopback(r.RemoteAddr):
		return nil, unauthorized("AUTH_HOST_NOT_LOCAL", fmt.Sprintf("operator access without a token needs a Host naming this machine (a loopback IP, localhost or %s), not %q; a web page under a rebound DNS name is refused", n.cfg.Gateway.Listen, clip(r.Host, 80)))
	}
	return nil, unauthorized("AUTH_TOKEN_NOT_CONFIGURED", "operator access without gateway.auth.operatorToken is allowed only from loopback; set an operator token to allow remote operators")
}

func (n *Node) authenticatePeer(r *http.Request, p *gateway.ConnectParams, token string) (*gateway.Identity, error) {
	return n.limitGuesses(r, func() (*gateway.Identity, error) { return n.peerIdentity(r, p, token) })
}

func (n *Node) peerIdentity(r *http.Request, p *gateway.ConnectParams, token string) (*gateway.Identity, error) {
	// Compare against every credential, matched or not, so the time taken
	// does not tell which one a guess came close to.
	auth := n.auth()
	matched := ""
	for _, c := range auth.Peers {
		ok := tokenEqual(token, c.Token)
		ok = tokenEqual(token, c.PreviousToken) || ok // both compared, always
		if ok && matched == "" {
			matched = c.ServerID
		}
	}
	// A client certificate verified against gateway.tls.clientCaFile that
	// names a serverId authenticates as it, like that serverId's token.
	certID := certPeerID(r, auth.Peers)
	claimed := cmpOr(matched, certID, p.Client.InstanceID)
	for _, peer := range n.peers.list() {
		if peer.ServerID != "" && peer.ServerID == claimed && !peer.IsEnabled() {
			return nil, gateway.NewError(gateway.CodeForbidden, fmt.Sprintf(
				"peer %q (serverId %q) is disabled here (federation.peers enabled: false)", peer.ID, claimed))
		}
	}
	switch {
	case matched != "" && certID != "" && matched != certID:
		return nil, unauthorized("AUTH_IDENTITY_CONFLICT", fmt.Sprintf("the client certificate names %q but the token belongs to another gateway.auth.peers entry; present one identity", certID))
	case matched != "":
		return &gateway.Identity{Role: gateway.RolePeer, PeerID: matched, Authenticated: true, Credential: tokenFingerprint(token)}, nil
	case certID != "":
		return &gateway.Identity{Role: gateway.RolePeer, PeerID: certID, Authenticated: true, Credential: certCredential}, nil
	case token != "" && len(auth.Peers) > 0:
		return nil, unauthorized("AUTH_TOKEN_MISMATCH", "peer token matches no gateway.auth.peers entry")
	case n.cfg.Federation.RequireAuth:
		return nil, unauthorized("AUTH_TOKEN_MISSING", "this gateway requires authentication (federation.requireAuth): present a token listed in its gateway.auth.peers")
	case p.Client.InstanceID == "":
		return nil, gateway.NewError(gateway.CodeInvalidRequest, "a peer connection must name its serverId in client.instanceId")
	}
	if err := checkUnauthenticatedName(p.Client.InstanceID, auth.Peers); err != nil {
		return nil, err
	}
	return &gateway.Identity{Role: gateway.RolePeer, PeerID: p.Client.InstanceID}, nil
}

// admitPeer applies a peer's credential to one call of method: still
// configured, method allowed, within its rate.
func (n *Node) admitPeer(id *gateway.Identity, method string) error {
	cred := n.credential(id)
	if id.Authenticated && cred == nil { // its credential was removed by a reload: fail closed
		return unauthorized("AUTH_CREDENTIAL_REMOVED", fmt.Sprintf("the credential of %q is no longer configured; reconnect", id.PeerID))
	}
	if cred != nil && len(cred.AllowMethods) > 0 && !slices.Contains(cred.AllowMethods, method) {
		return n.deny(id, method, "", fmt.Sprintf("method %s is not in gateway.auth.peers[%s].allowMethods", method, id.PeerID))
	}
	rate := 0.0
	if cred != nil {
		rate = cred.RatePerSec
	}
	if err := n.limits.allow(id.PeerID, id.Authenticated, rate); err != nil {
		n.metrics.refused("rate_limited")
		n.audit.refuse(auditEvent{Dir: "in", Kind: "limit", Peer: id.PeerID, Method: method, Outcome: CodeRateLimited}, time.Now())
		return err
	}
	return nil
}

func unauthorized(detail, msg string) error {
	e := gateway.NewError(gateway.CodeUnauthorized, msg)
	e.Details = map[string]string{"code": detail}
	return e
}

// tokenEqual compares in constant time. An empty token never matches.
func tokenEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (n *Node) serveRPC(ctx context.Context, id *gateway.Identity, method string, params json.RawMessage) (any, error) {
	allowed := false
	for _, m := range roleMethods[id.Role] {
		allowed = allowed || m == method
	}
	if !allowed {
		for _, ms := range roleMethods {
			for _, m := range ms {
				if m == method {
					return nil, gateway.NewError(gateway.CodeForbidden, fmt.Sprintf("method %s is not available to %s connections", method, id.Role))
				}
			}
		}
		return nil, unknownMethod(method)
	}
	if id.Role == gateway.RolePeer {
		if err := n.admitPeer(id, method); err != nil {
			return nil, err
		}
	}
	if method != MethodRelay && method != MethodCapabilities && method != MethodHealth && method != MethodOpenClawHealth && method != MethodStatus && method != MethodRoutes {
		ctx = wsconn.Detach(ctx) // tool actions call peers; the outbox is on disk
	}
	switch method {
	case MethodRelay:
		return n.serveRelay(ctx, id, params)
	case MethodCapabilities:
		return n.capabilities(), nil
	case MethodHealth:
		return n.health(), nil
	case MethodRoutes:
		return n.serveRoutes(id), nil
	case MethodTool:
		return n.operatorTool(ctx, id.RemoteAddr, params)
	case MethodOutbox:
		return n.serveOutbox(params)
	case MethodOpenClawHealth:
		return gateway.NewHealth(), nil
	case MethodStatus:
		return n.status(), nil
	}
	return nil, unknownMethod(method)
}

// operatorTool runs an operator's action object, from any front door
// (federation.tool, MCP), and audits it.
func (n *Node) operatorTool(ctx context.Context, remote string, params json.RawMessage) (any, error) {
	action, out, err := n.Tool().call(ctx, params)
	n.audit.write(auditEvent{Dir: "op", Kind: "tool", Action: action, Remote: remote, Outcome: outcomeOf(err)})
	return out, err
}

func (n *Node) capabilities() *Capabilities {
	pub := n.identity.Public()
	c := &Capabilities{ServerID: n.serverID, Agents: []AgentInfo{}, SigningKey: pub.SigningKey, EncryptionKey: pub.EncryptionKey}
	for _, id := range sortedKeys(n.agents) {
		a := n.agents[id].cfg
		c.Agents = append(c.Agents, AgentInfo{ID: a.ID, Name: a.Name, Capabilities: nonNil(a.Capabilities), Description: a.Description})
	}
	return c
}

// Health reports this gateway's state: uptime, peers and agent load.
func (n *Node) Health() *Health { return n.health() }

func (n *Node) health() *Health {
	h := &Health{ServerID: n.serverID, Status: "ok", UptimeMs: time.Since(n.started).Milliseconds()}
	for _, id := range sortedKeys(n.agents) {
		busy, waiting := n.agents[id].queue.Stats()
		h.Agents = append(h.Agents, AgentHealth{ID: id, Busy: busy, Waiting: waiting})
	}
	for _, p := range n.peers.list() {
		h.Peers = append(h.Peers, PeerHealth{ID: p.ID, Enabled: p.IsEnabled(), Connected: n.pool.Connected(p.ID),
			PeerHealthInfo: n.peerHealth(p.ID)})
	}
	return h
}

func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return gateway.CodeOf(err)
}

// serveRelay handles a message from a peer gateway for one of our agents,
// and audits the outcome.
func (n *Node) serveRelay(ctx context.Context, id *gateway.Identity, raw json.RawMessage) (reply *Message, err error) {
	var p RelayParams
	start := time.Now()
	defer func() {
		e := auditEvent{Dir: "in", Kind: "relay", Peer: id.PeerID, Agent: p.TargetAgent, Outcome: outcomeOf(err), LatencyMs: millis(time.Since(start))}
		if m := p.Message; m != nil {
			e.MessageID, e.CorrelationID, e.Type, e.Content = m.MessageID, m.CorrelationID, string(m.Type), m.Content
		}
		if refusedRelay(e.Outcome) {
			n.audit.refuse(e, start) // a peer may send these at will: folded per window
		} else {
			n.audit.write(e)
		}
		n.metrics.relayIn(id, p.TargetAgent, err, time.Since(start))
	}()
	return n.relayIn(ctx, id, raw, &p)
}

// refusedRelay reports the outcomes of a relay refused before it reached
// an agent, which the sending peer can provoke as often as it likes.
func refusedRelay(outcome string) bool {
	switch outcome {
	case gateway.CodeForbidden, CodeRateLimited, gateway.CodeUnauthorized, gateway.CodeTooLarge,
		gateway.CodeInvalidParams, gateway.CodeInvalidRequest, CodeUnknownAgent, CodeStale, CodeReplayed,
		CodeBadSignature, CodeHopLimit, CodeFederationDisabled, CodeOverloaded:
		return true
	}
	return false
}

func (n *Node) relayIn(ctx context.Context, id *gateway.Identity, raw json.RawMessage, pp *RelayParams) (_ *Message, err error) {
	if !n.cfg.Federation.Enabled {
		return nil, fmt.Errorf("%w: gateway %q has federation.enabled=false", ErrFederationDisabled, n.serverID)
	}
	if err := n.checkSize(id, raw); err != nil {
		return nil, err
	}
	// The gateway's frame scanner has validated raw: decode it directly,
	// without json.Unmarshal's second validating pass.
	if err := pp.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%w: federation.relay params: %v", ErrInvalidParams, err)
	}
	if n.tracer != nil {
		var span trace.Span
		ctx, span = n.startRelayIn(ctx, id, pp)
		defer func() { endSpan(span, err) }()
	}
	p := pp
	msg := p.Message
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	if err := checkIdent("targetAgent", p.TargetAgent, false); err != nil {
		return nil, err
	}
	if p.TargetServer != "" || len(p.Route) > 0 {
		return n.meshRelayIn(ctx, id, p) // meshrelay.go
	}
	// Verified and opened before anything reads content (maxMessageBytes).
	replyTo, err := n.openInbound(id, p)
	if err != nil {
		return nil, err
	}
	// Identity first: nothing below may record anything under a sender
	// name the connection does not own.
	if msg.FromServer != id.PeerID {
		how := "identified itself"
		if id.Authenticated {
			how = "authenticated"
		}
		return nil, gateway.NewError(gateway.CodeForbidden,
			fmt.Sprintf("message claims fromServer %q but the connection %s as %q", msg.FromServer, how, id.PeerID))
	}
	if err := n.checkHops(msg); err != nil {
		return nil, err
	}
	if err := n.checkGrant(id, p); err != nil {
		return nil, err
	}
	if err := n.replay.seenElsewhere(msg, id.Authenticated); err != nil { // came across the mesh (replaycross.go)
		return nil, err
	}
	if err := n.replay.check(msg, p.Durable, id.Authenticated); err != nil {
		return nil, err
	}
	if p.TargetAgent == "" {
		p.TargetAgent = msg.ToAgent
	}
	agent := n.agents[p.TargetAgent]
	if agent == nil {
		return nil, fmt.Errorf("%w: gateway %q hosts no agent %q (it hosts %v)", ErrUnknownAgent, n.serverID, p.TargetAgent, sortedKeys(n.agents))
	}
	msg.ToAgent = p.TargetAgent
	if !agent.immediate && msg.Type != TypeSync {
		ctx = n.withInvocation(ctx, id, agent.cfg.ID, msg) // for its tool calls (ToolFor)
	}
	// An immediate agent with a free slot answers on the connection's
	// reader goroutine (rpcHandler, wsconn.Inliner); anything that may block
	// detaches first, and only then needs a deadline.
	held := agent.immediate && msg.Type != TypeSync && !p.Durable && agent.queue.TryAcquire()
	if !held {
		ctx = wsconn.Detach(ctx)
		if p.TimeoutMs > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(p.TimeoutMs)*time.Millisecond)
			defer cancel()
		}
	}
	var reply *Message
	switch {
	case msg.Type == TypeSync:
		reply, err = n.acceptSync(ctx, msg)
	case p.Durable:
		reply, err = n.deliverOnce(ctx, agent, msg)
	default:
		reply, err = n.deliverLocal(ctx, agent, msg, held)
	}
	if err != nil {
		return nil, err
	}
	return n.protectReply(msg, reply, replyTo)
}

func (n *Node) acceptSync(ctx context.Context, msg *Message) (*Message, error) {
	version, err := n.mergeSynced(ctx, msg.FromServer, msg.CorrelationID, msg.Context)
	if err != nil {
		return nil, fmt.Errorf("store synced context: %w", err)
	}
	n.log.Debug("context synced", "from", msg.FromServer, "correlationId", msg.CorrelationID, "version", version)
	return msg.Reply(n.serverID, "context synced", map[string]any{"version": version}), nil
}

// deliverLocal hands msg, its context merged with the session's synced
// context, to a local agent and builds the response message. held says
// that the caller already holds a slot of the agent's queue, which
// deliverLocal releases.
func (n *Node) deliverLocal(ctx context.Context, agent *localAgent, msg *Message, held bool) (*Message, error) {
	if held {
		defer agent.queue.Release() // whatever happens next, a panic included
	}
	synced, _, err := n.syncedContext(ctx, msg.FromServer, msg.CorrelationID)
	if err != nil {
		return nil, err
	}
	if len(synced) > 0 {
		maps.Copy(synced, msg.Context)
		msg.Context = synced
	}
	if !held {
		err = agent.queue.AcquireFrom(ctx, msg.FromServer, msg.Priority.Rank())
		switch {
		case errors.Is(err, queue.ErrFull):
			return nil, fmt.Errorf("%w: agent %q has %d messages waiting; retry later", ErrOverloaded, agent.cfg.ID, agent.cfg.MaxQueue)
		case err != nil:
			return nil, fmt.Errorf("%w: agent %q was busy until the caller's deadline", ErrTimeout, agent.cfg.ID)
		}
		defer agent.queue.Release()
	}
	debug := n.log.Enabled(ctx, slog.LevelDebug)
	var start time.Time
	if debug {
		start = time.Now()
	}
	var span trace.Span
	if n.tracer != nil {
		ctx, span = n.tracer.Start(ctx, spanAgent, trace.WithAttributes(attribute.String("agentfed.agent", agent.cfg.ID)))
	}
	ans, err := agent.handler.Handle(ctx, msg)
	endSpan(span, err)
	if err == nil && ans == nil {
		err = &AgentError{Public: "returned no answer", Err: fmt.Errorf("%w: agent %q returned no answer", ErrAgentFailed, agent.cfg.ID)}
	}
	if err != nil {
		return nil, n.agentFailed(ctx, agent, msg, err)
	}
	if debug {
		n.log.Debug("agent answered", "agent", agent.cfg.ID, "messageId", msg.MessageID, "latency", time.Since(start))
	}
	return msg.Reply(n.serverID, ans.Content, ans.Context), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
