package federation

// federation.transport nats: gateways meet on one NATS system instead of
// dialling each other. Each local agent answers requests on its own
// subject in a queue group named after its gateway, so several gateways
// of one site (same serverId) serve the same agents; each gateway
// registers a NATS micro service whose metadata lists its agents and their
// capabilities, which is how gateways find each other without
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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/natsbus"
)

// SourceNATS is list_peers' source of a peer found on the NATS system.
const SourceNATS = "nats"

const (
	natsService      = "agentfed" // the micro service every gateway registers
	natsDirTTL       = 2 * time.Second
	natsDirWait      = time.Second            // for the first directory answer
	natsDirQuiet     = 100 * time.Millisecond // for more once answers stop coming
	natsMaxGateway   = 4096                   // directory entries kept
	natsDrainTimeout = 10 * time.Second       // for the requests already received at stop
)

func natsAgentSubject(serverID, agentID string) string { return "af.agent." + serverID + "." + agentID }
func natsQueue(serverID string) string                 { return "af.gw." + serverID }
func natsPeerID(serverID, agentID string) string       { return agentID + "@" + serverID }

// natsLink is a node's connection to the NATS system and what it serves
// there.
type natsLink struct {
	bus      *natsbus.Bus
	svc      micro.Service
	subs     []*nats.Subscription
	ctx      context.Context // ends at stop: handlers in flight give up
	cancel   context.CancelFunc
	handlers sync.WaitGroup // requests being answered
	durable  *natsDurable   // nil without JetStream
	contexts *natsContexts  // synced context; nil without JetStream (nats_context.go)
	deadMu   sync.Mutex     // serialises keeping dead letters

	mu    sync.Mutex // guards dir and dirAt
	dir   []*peer    // remote agents, sorted by id
	dirAt time.Time
}

// natsAnswer is the reply to a request on an agent subject, shaped like a
// gateway response frame.
type natsAnswer struct {
	OK      bool           `json:"ok"`
	Payload *Message       `json:"payload,omitempty"`
	Error   *gateway.Error `json:"error,omitempty"`
}

// natsAgent is one agent in a gateway's micro service metadata.
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
	l := &natsLink{bus: bus}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	err = n.startNATSContexts(l)
	if err == nil {
		n.sharedContexts = l.contexts // before serveNATS: every sync it admits goes to the bucket
		err = n.serveNATS(l)
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

// serveNATS subscribes each local agent and registers the micro service.
func (n *Node) serveNATS(l *natsLink) error {
	conn := l.bus.Conn()
	var agents []natsAgent
	for _, id := range sortedKeys(n.agents) {
		a := n.agents[id]
		agents = append(agents, natsAgent{ID: id, Capabilities: nonNil(a.cfg.Capabilities), Description: a.cfg.Description})
		sub, err := conn.QueueSubscribe(natsAgentSubject(n.serverID, id)+".*", natsQueue(n.serverID), func(m *nats.Msg) {
			l.handlers.Go(func() { n.answerNATS(l.ctx, m) })
		})
		if err != nil {
			return fmt.Errorf("subscribe agent %q: %w", id, err)
		}
		l.subs = append(l.subs, sub)
	}
	sub, err := conn.QueueSubscribe(natsBroadcastAll, natsQueue(n.serverID), func(m *nats.Msg) {
		l.handlers.Go(func() { n.answerBroadcast(l, m) })
	})
	if err != nil {
		return fmt.Errorf("subscribe broadcasts: %w", err)
	}
	l.subs = append(l.subs, sub)
	meta, err := json.Marshal(agents)
	if err != nil {
		return err
	}
	l.svc, err = micro.AddService(conn, micro.Config{Name: natsService, Version: Version,
		Description: "agentfed gateway " + n.serverID,
		Metadata:    map[string]string{"serverId": n.serverID, "agents": string(meta)}})
	if err != nil {
		return fmt.Errorf("register micro service: %w", err)
	}
	return conn.Flush()
}

// answerNATS serves one request from another gateway exactly as
// federation.relay does, and answers it.
func (n *Node) answerNATS(ctx context.Context, m *nats.Msg) {
	id, err := n.natsSender(m.Subject)
	ans := natsAnswer{Error: gateway.ToError(err)}
	if err == nil {
		ans = n.serveNATSRequest(ctx, id, m.Data)
	}
	data, err := json.Marshal(&ans)
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
	if l.svc != nil {
		_ = l.svc.Stop()
	}
	// Drain: requests NATS has already handed to this gateway are
	// answered, new ones go to the other members of the queue group.
	var drained []<-chan nats.SubStatus
	for _, s := range l.subs {
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
	if err := json.Unmarshal(rm.Data, &ans); err != nil {
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

// natsPeer is the remote agent named id on the NATS system, or nil. A
// known agent is used as cached (send's hot path asks nobody); an unknown
// one makes the directory be asked again.
func (n *Node) natsPeer(ctx context.Context, id string) *peer {
	if n.nats == nil {
		return nil
	}
	l := n.nats
	l.mu.Lock()
	dir := l.dir
	l.mu.Unlock()
	if i, ok := slices.BinarySearchFunc(dir, id, byPeerID); ok {
		return dir[i]
	}
	dir, _ = n.natsDirectory(ctx, true)
	if i, ok := slices.BinarySearchFunc(dir, id, byPeerID); ok {
		return dir[i]
	}
	return nil
}

// natsPeers returns peers followed by the remote agents on NATS.
func (n *Node) natsPeers(ctx context.Context, peers []*peer) []*peer {
	if n.nats == nil {
		return peers
	}
	dir, _ := n.natsDirectory(ctx, false)
	return append(peers, dir...)
}

// natsCapable returns peers followed by the remote agents on NATS that
// have every capability in caps.
func (n *Node) natsCapable(ctx context.Context, peers []*peer, reqs []requirement) []*peer {
	if n.nats == nil {
		return peers
	}
	dir, _ := n.natsDirectory(ctx, false)
	for _, p := range dir {
		if p.IsEnabled() && meetsAll(p.caps, reqs) {
			peers = append(peers, p)
		}
	}
	return peers
}

// natsDirectory returns the remote agents the gateways on NATS announce,
// asking them again when the cached list is older than natsDirTTL or
// refresh is set. fresh says whether it asked.
func (n *Node) natsDirectory(ctx context.Context, refresh bool) (dir []*peer, fresh bool) {
	l := n.nats
	l.mu.Lock()
	defer l.mu.Unlock()
	if !refresh && l.dir != nil && time.Since(l.dirAt) < natsDirTTL {
		return l.dir, false
	}
	dir, err := n.askDirectoryLocked(ctx)
	if err != nil {
		n.log.Warn("NATS directory", "err", err)
		return l.dir, true
	}
	// An agent seen before stays a peer while its gateways are away:
	// requests to it fail with PEER_UNAVAILABLE, durable ones wait in
	// JetStream.
	for _, p := range l.dir {
		if _, ok := slices.BinarySearchFunc(dir, p.ID, byPeerID); !ok && len(dir) < natsMaxGateway {
			dir = append(dir, p)
		}
	}
	slices.SortFunc(dir, func(a, b *peer) int { return strings.Compare(a.ID, b.ID) })
	l.dir, l.dirAt = dir, time.Now()
	return dir, true
}

// askDirectoryLocked gathers every gateway's service info. l.mu is held.
func (n *Node) askDirectoryLocked(ctx context.Context) ([]*peer, error) {
	conn := n.nats.bus.Conn()
	inbox := conn.NewRespInbox()
	sub, err := conn.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := conn.PublishRequest("$SRV.INFO."+natsService, inbox, nil); err != nil {
		return nil, err
	}
	var dir []*peer
	seen := map[string]bool{} // peer ids: a site's gateways announce the same agents
	wait := natsDirWait
	for answers := 0; answers < natsMaxGateway; answers++ {
		wctx, cancel := context.WithTimeout(ctx, wait)
		m, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			break // quiet: every gateway that will answer has
		}
		wait = natsDirQuiet
		var info micro.Info
		if json.Unmarshal(m.Data, &info) != nil {
			continue
		}
		// Every answer counts, even one naming a serverId another gateway
		// already answered for: answers are not authenticated, and one
		// may not hide another. A forged agent is only a name: requests
		// to it go to subjects only that serverId's gateways may serve.
		server := info.Metadata["serverId"]
		if server == n.serverID || checkIdent("serverId", server, true) != nil {
			continue // ourselves, another gateway of our site, or malformed
		}
		var agents []natsAgent
		if json.Unmarshal([]byte(info.Metadata["agents"]), &agents) != nil {
			continue
		}
		for _, a := range agents {
			if checkIdent("agentId", a.ID, true) != nil {
				continue
			}
			id := natsPeerID(server, a.ID)
			if seen[id] || len(seen) >= natsMaxGateway {
				continue
			}
			seen[id] = true
			dir = append(dir, newPeer(PeerConfig{ID: id, Name: id, URL: "nats:" + natsAgentSubject(server, a.ID),
				AgentID: a.ID, Capabilities: a.Capabilities, Description: a.Description}, SourceNATS))
		}
	}
	slices.SortFunc(dir, func(a, b *peer) int { return strings.Compare(a.ID, b.ID) })
	return dir, nil
}

// natsCapabilities is query_capabilities for a peer found on NATS: what
// its gateway announces now.
func (n *Node) natsCapabilities(ctx context.Context, p *peer) (*CapabilityReport, error) {
	dir, _ := n.natsDirectory(ctx, true)
	if i, ok := slices.BinarySearchFunc(dir, p.ID, byPeerID); ok {
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
