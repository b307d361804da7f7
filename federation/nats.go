package federation

// federation.transport nats: gateways meet on one NATS system instead of
// dialling each other. Each local agent answers requests on its own
// subject in a queue group named after its gateway, so several gateways
// of one site (same serverId) serve the same agents; each gateway puts its
// agents and their capabilities in the JetStream KV bucket AF_REGISTRY
// (nats_registry.go), which is how gateways find each other without
// federation.peers entries. A remote agent is a peer with id
// "<agentId>@<serverId>" and source "nats".
//
// The bytes on the wire are the same RelayParams JSON as
// federation.relay's, so signing and sealing stay end to end.

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/natsbus"
)

// SourceNATS is list_peers' source of a peer found on the NATS system.
const SourceNATS = "nats"

const (
	natsMaxGateway   = 4096             // directory entries kept: sites, and agents of all sites
	natsDrainTimeout = 10 * time.Second // for the requests already received at stop
)

func natsAgentSubject(serverID, agentID string) string { return "af.agent." + serverID + "." + agentID }
func natsQueue(serverID string) string                 { return "af.gw." + serverID }
func natsPeerID(serverID, agentID string) string       { return agentID + "@" + serverID }

// natsLink is a node's connection to the NATS system and what it serves
// there.
type natsLink struct {
	bus      *natsbus.Bus
	registry *natsRegistry // the directory (nats_registry.go)
	subs     []*nats.Subscription
	ctx      context.Context // ends at stop: handlers in flight give up
	cancel   context.CancelFunc
	handlers sync.WaitGroup // requests being answered
	busy     atomic.Int64   // handlers running (handle)
	limit    atomic.Int64   // at most this many (natsHandlerLimit)
	server   string         // this gateway's serverId, for the refusals
	durable  *natsDurable   // nil without JetStream
	contexts *natsContexts  // synced context; nil without JetStream (nats_context.go)
}

// natsAnswer is the reply to a request on an agent subject, shaped like a
// gateway response frame.
type natsAnswer struct {
	OK      bool           `json:"ok"`
	Payload *Message       `json:"payload,omitempty"`
	Error   *gateway.Error `json:"error,omitempty"`
}

// natsAgent is one agent in a gateway's directory entry.
type natsAgent struct {
	ID           string   `json:"id"`
	Capabilities []string `json:"capabilities"`
	Description  string   `json:"description,omitempty"`
}

// startNATS connects to the NATS system, subscribes the local agents and
// registers the gateway's service. A no-op unless federation.transport is
// nats.
func (n *Node) startNATS() error {
	if !n.cfg.natsTransport() {
		return nil
	}
	c := n.cfg.NATS
	o := natsbus.Options{URL: c.URL, CredsFile: c.CredsFile, Name: n.serverID, InboxPrefix: natsInboxPrefix(n.serverID)}
	if c.Token != "" {
		o.User, o.Password = n.serverID, c.Token
	}
	if e := c.Embedded; e != nil {
		users, password, err := n.natsEmbeddedUsers()
		if err != nil {
			return fmt.Errorf("federation.transport nats: %w", err)
		}
		if users != nil {
			o.User, o.Password = n.serverID, password
		}
		o.Embedded = &natsbus.Embedded{Listen: e.Listen, StoreDir: filepath.Join(n.cfg.Storage.Dir, "nats"), Users: users,
			Cluster: natsbus.Cluster{Name: e.Cluster.Name, Listen: e.Cluster.Listen, Routes: e.Cluster.Routes}}
	}
	bus, err := natsbus.Open(o)
	if err != nil {
		return fmt.Errorf("federation.transport nats: %w", err)
	}
	l := &natsLink{bus: bus, server: n.serverID}
	l.limit.Store(n.natsHandlerLimit())
	l.ctx, l.cancel = context.WithCancel(context.Background())
	err = n.startNATSContexts(l)
	if err == nil {
		n.sharedContexts = l.contexts // before serveNATS: every sync it admits goes to the bucket
		err = n.serveNATS(l)
	}
	if err == nil {
		err = n.startNATSRegistry(l) // once it serves: others find it from here on
	}
	if err == nil {
		err = n.startNATSDurable(l)
	}
	if err != nil {
		l.stop()
		return fmt.Errorf("federation.transport nats: %w", err)
	}
	n.nats = l
	n.log.Info("federation over NATS", "url", cmpOr(c.URL, bus.ClientURL()), "agents", len(n.agents))
	return nil
}

// serveNATS subscribes each local agent and the broadcasts.
func (n *Node) serveNATS(l *natsLink) error {
	conn := l.bus.Conn()
	for _, id := range sortedKeys(n.agents) {
		sub, err := conn.QueueSubscribe(natsAgentSubject(n.serverID, id)+".*", natsQueue(n.serverID), func(m *nats.Msg) {
			l.handle(func() { n.answerNATS(l.ctx, m) }, func(err error) { respondNATS(m, natsAnswer{Error: gateway.ToError(err)}) })
		})
		if err != nil {
			return fmt.Errorf("subscribe agent %q: %w", id, err)
		}
		l.subs = append(l.subs, sub)
	}
	sub, err := conn.QueueSubscribe(natsBroadcastAll, natsQueue(n.serverID), func(m *nats.Msg) {
		l.handle(func() { n.answerBroadcast(l, m, nil) }, func(err error) { n.answerBroadcast(l, m, err) })
	})
	if err != nil {
		return fmt.Errorf("subscribe broadcasts: %w", err)
	}
	l.subs = append(l.subs, sub)
	return conn.Flush()
}

// natsHandlerLimit is how many requests and durable messages a gateway
// handles at once over NATS: as many as its agents can hold (each
// agent's maxConcurrency and maxQueue), and natsHandlerSlack more for
// broadcasts and for the requests an agent refuses at once. Each message
// gets a goroutine as it arrives, holding it until it is answered; the
// agents' queues bound those that wait for an agent, and this bounds the
// rest, which a flood of requests would otherwise grow without limit.
// Over WebSocket a connection's reader waits for one of its 256 slots
// instead; a NATS subscription's delivery goroutine, shared by every
// sender, must not wait.
func (n *Node) natsHandlerLimit() int64 {
	limit := int64(natsHandlerSlack)
	for _, a := range n.agents {
		limit += int64(a.cfg.MaxConcurrency + a.cfg.MaxQueue)
	}
	return limit
}

const natsHandlerSlack = 1024

// handle runs h on a goroutine of its own, or, when the link's limit of
// handlers already run, calls refuse with an OVERLOADED error on the
// caller's goroutine (the subscription's): the sender may retry.
func (l *natsLink) handle(h func(), refuse func(error)) {
	if l.busy.Add(1) > l.limit.Load() {
		l.busy.Add(-1)
		refuse(fmt.Errorf("%w: gateway %q is handling %d messages from NATS, its limit; retry later", ErrOverloaded, l.server, l.limit.Load()))
		return
	}
	l.handlers.Go(func() {
		defer l.busy.Add(-1)
		h()
	})
}

// answerNATS serves one request from another gateway exactly as
// federation.relay does, and answers it.
func (n *Node) answerNATS(ctx context.Context, m *nats.Msg) {
	id, err := n.natsSender(m.Subject)
	ans := natsAnswer{Error: gateway.ToError(err)}
	if err == nil {
		ans = n.serveNATSRequest(ctx, id, m.Data)
	}
	respondNATS(m, ans)
}

// respondNATS answers the request m with ans.
func respondNATS(m *nats.Msg, ans natsAnswer) {
	data, err := ans.appendJSON(make([]byte, 0, 64+ans.Payload.sizeHint()))
	if err != nil {
		data, _ = json.Marshal(natsAnswer{Error: gateway.ToError(err)})
	}
	_ = m.Respond(data) // the requester may have given up: nothing to do
}

// serveNATSRequest serves one relay request from gateway id as
// federation.relay does.
func (n *Node) serveNATSRequest(ctx context.Context, id *gateway.Identity, data []byte) natsAnswer {
	var ans natsAnswer
	if err := n.admitPeer(id, MethodRelay); err != nil {
		ans.Error = gateway.ToError(err)
	} else if !json.Valid(data) {
		ans.Error = gateway.ToError(fmt.Errorf("%w: the request is not JSON", ErrInvalidParams))
	} else if reply, err := n.serveRelay(ctx, id, data); err != nil {
		ans.Error = gateway.ToError(err)
	} else {
		ans.OK, ans.Payload = true, reply
	}
	return ans
}

// stopNATS stops serving, waits for the answers in flight and closes the
// connection (and the embedded server).
func (n *Node) stopNATS() {
	if n.nats != nil {
		n.nats.stop()
	}
}

func (l *natsLink) stop() {
	gone := !l.bus.Conn().IsConnected()
	if gone {
		// The NATS system is unreachable: nothing can be drained or
		// acknowledged any more, and each wait below would last its whole
		// timeout. With the connection closed they return at once.
		l.bus.Conn().Close()
	}
	if l.registry != nil {
		l.registry.stop() // its entry expires unless the site's other gateways put it
	}
	// Drain: requests NATS has already handed to this gateway are
	// answered, new ones go to the other members of the queue group.
	var drained []<-chan nats.SubStatus
	for _, s := range l.subs {
		if gone {
			break // closed with the connection
		}
		drained = append(drained, s.StatusChanged(nats.SubscriptionClosed))
		if s.Drain() != nil {
			_ = s.Unsubscribe()
		}
	}
	timeout := time.After(natsDrainTimeout)
	for _, ch := range drained {
		select {
		case <-ch:
		case <-timeout:
		}
	}
	if l.durable != nil {
		l.durable.stop()
	}
	l.handlers.Wait()
	if l.contexts != nil {
		l.contexts.stop()
	}
	l.cancel()
	l.bus.Close()
}

// deliverNATS is deliver for a peer found on NATS: one request on the
// agent's subject. It never returns nil.
func (n *Node) deliverNATS(ctx context.Context, p *peer, msg *Message, callTimeoutMs int, durable bool) *Result {
	timeout := n.timeout(callTimeoutMs, p)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	res := &Result{PeerID: p.ID, MessageID: msg.MessageID}
	reply, err := n.requestNATS(ctx, p, &RelayParams{TargetAgent: p.AgentID, Message: msg, TimeoutMs: timeout.Milliseconds(), Durable: durable})
	res.LatencyMs = millis(time.Since(start))
	switch {
	case err == nil:
		res.Status, res.Response = StatusOK, reply
	case errors.Is(err, context.DeadlineExceeded) || gateway.CodeOf(err) == gateway.CodeTimeout:
		res.Status = StatusTimeout
		res.Error = gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("peer %q did not answer within %v", p.ID, timeout))
	default:
		res.Status, res.Error = StatusError, gateway.ToError(err)
	}
	outcome := "ok"
	if res.Error != nil {
		outcome = res.Error.Code
	}
	n.audit.write(auditEvent{Dir: "out", Kind: "deliver", Peer: p.ID, Agent: msg.ToAgent, MessageID: msg.MessageID,
		CorrelationID: msg.CorrelationID, Type: string(msg.Type), Outcome: outcome, LatencyMs: res.LatencyMs, Content: msg.Content})
	return res
}

func (n *Node) requestNATS(ctx context.Context, p *peer, params *RelayParams) (*Message, error) {
	req := params.Message
	eph, err := n.protectOutbound(p, params)
	if err != nil {
		return nil, err
	}
	data, err := params.MarshalJSON()
	if err != nil {
		return nil, err
	}
	server := natsServerOf(p)
	m := nats.NewMsg(natsAgentSubject(server, p.AgentID) + "." + n.serverID)
	m.Data = data
	ctx, stop := n.natsDeniable(ctx, m.Subject)
	defer stop()
	rm, err := n.nats.bus.Conn().RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(context.Cause(ctx), errNATSDenied):
		return nil, n.natsDenied(p)
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: no gateway of %q serves agent %q on NATS now", ErrPeerUnavailable, server, p.AgentID)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, fmt.Errorf("%w: peer %q over NATS: %v", ErrPeerUnavailable, p.ID, err)
	}
	var ans natsAnswer
	if err := ans.decode(rm.Data); err != nil {
		return nil, fmt.Errorf("%w: peer %q sent a malformed answer over NATS", ErrPeerUnavailable, p.ID)
	}
	return n.natsAnswerOf(p, req, &ans, eph)
}

// natsAnswerOf is p's reply to req from its answer, or the error it
// answered.
func (n *Node) natsAnswerOf(p *peer, req *Message, ans *natsAnswer, eph *ecdh.PrivateKey) (*Message, error) {
	if (!ans.OK && ans.Error == nil) || (ans.OK && ans.Payload == nil) {
		return nil, fmt.Errorf("%w: peer %q sent a malformed answer over NATS", ErrPeerUnavailable, p.ID)
	}
	if !ans.OK {
		return nil, ans.Error
	}
	if err := n.acceptReply(p, req, ans.Payload, eph); err != nil {
		return nil, err
	}
	return ans.Payload, nil
}

// natsPeer is the remote agent named id on the NATS system, or nil.
func (n *Node) natsPeer(_ context.Context, id string) *peer {
	if n.nats == nil {
		return nil
	}
	dir := n.nats.registry.directory()
	if i, ok := slices.BinarySearchFunc(dir, id, byPeerID); ok {
		return dir[i]
	}
	return nil
}

// natsPeers returns peers followed by the remote agents on NATS.
func (n *Node) natsPeers(_ context.Context, peers []*peer) []*peer {
	if n.nats == nil {
		return peers
	}
	return append(peers, n.nats.registry.directory()...)
}

// natsCapable returns peers followed by the remote agents on NATS that
// have every capability in caps.
func (n *Node) natsCapable(_ context.Context, peers []*peer, reqs []requirement) []*peer {
	if n.nats == nil {
		return peers
	}
	for _, p := range n.nats.registry.directory() {
		if p.IsEnabled() && meetsAll(p.caps, reqs) {
			peers = append(peers, p)
		}
	}
	return peers
}

// natsUp reports whether p is a peer on NATS whose site announces itself
// now (list_peers' connected).
func (n *Node) natsUp(p *peer) bool {
	return p.source == SourceNATS && n.nats != nil && n.nats.registry.isUp(p)
}

// natsCapabilities is query_capabilities for a peer found on NATS: what
// its site announces now.
func (n *Node) natsCapabilities(_ context.Context, p *peer) (*CapabilityReport, error) {
	dir := n.nats.registry.directory()
	if i, ok := slices.BinarySearchFunc(dir, p.ID, byPeerID); ok && n.nats.registry.isUp(dir[i]) {
		q := dir[i]
		return &CapabilityReport{PeerID: q.ID, PeerName: q.Name, Capabilities: nonNil(q.Capabilities), Description: q.Description}, nil
	}
	return nil, fmt.Errorf("%w: peer %q is no longer announced on NATS", ErrPeerUnavailable, p.ID)
}

// NATSClientURL is the client URL of the nats-server the node embeds
// (nats.embedded), for other gateways' nats.url; "" otherwise.
func (n *Node) NATSClientURL() string {
	if n.nats == nil {
		return ""
	}
	return n.nats.bus.ClientURL()
}

// natsServerOf is the serverId of a peer found on NATS.
func natsServerOf(p *peer) string { return strings.TrimPrefix(p.ID[len(p.AgentID):], "@") }

var errNATSDenied = errors.New("the NATS system refused the publish")

// natsDeniable is ctx, ended with cause errNATSDenied if the NATS
// system's subject permissions refuse this gateway's publish to subject.
func (n *Node) natsDeniable(ctx context.Context, subject string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := n.nats.bus.OnDenied(subject, func() { cancel(errNATSDenied) })
	return ctx, func() { stop(); cancel(nil) }
}

// natsDenied is the FORBIDDEN a gateway gets for an agent its grant on
// the NATS system does not allow (the receiver never sees the request).
func (n *Node) natsDenied(p *peer) error {
	return fmt.Errorf("%w: the NATS system's subject permissions do not let gateway %q reach agent %q of %q (derived from the grant there: allowAgents, allowCapabilities)",
		ErrForbidden, n.serverID, p.AgentID, natsServerOf(p))
}
