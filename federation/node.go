package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/discovery"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/outbox"
	"github.com/agentfed/agentfed/internal/queue"
	"github.com/agentfed/agentfed/internal/store"
	"github.com/agentfed/agentfed/internal/wsconn"
	"go.opentelemetry.io/otel/trace"
)

// Version is reported in hello-ok and by agentfed version.
var Version = "0.1.0-dev"

// Options are a Node's collaborators that do not come from the config file.
type Options struct {
	// Handlers serve the config's local agents, by agent id. An agent in
	// Config.Agents without a handler here is an error.
	Handlers map[string]Handler
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
	// TracerProvider, when set, receives a span per tool action, relay
	// and agent call (see trace.go). Default: no tracing.
	TracerProvider trace.TracerProvider
}

// Node is one federation member: it hosts local agents, listens for peer
// gateways and operators, and carries the eight tool actions to its peers.
// Its methods are safe for concurrent use.
type Node struct {
	cfg                 Config // frozen after New, except peers (see peers)
	serverID            string
	log                 *slog.Logger
	store               *store.Store
	records             *store.Gather // processed records of durable messages (durable.go)
	agents              map[string]*localAgent
	peers               *registry
	pool                gateway.Pool
	contexts            *contextStore
	srv                 *gateway.Server
	tracker             *healthTracker
	authCfg             atomic.Pointer[AuthConfig] // credentials in force; Reload swaps them
	guesses             guessLimit                 // wrong tokens per source, for every login
	a2aPeerTokenWarning sync.Once                  // warnA2AAuth says it once
	replay              *replayGuard
	audit               *auditLog // nil when disabled

	remoteLog gateway.LogThrottle // logs that peers can trigger at will
	outbox    *outbox.Outbox[Message, Result]
	once      *onceTracker // durable messages being handled now
	limits    *peerLimits
	metrics   *metrics
	tracer    trace.Tracer                  // nil: tracing off
	hostAllow atomic.Pointer[hostAllowList] // gateway.dynamicPeerHosts; nil allows any host; Reload replaces it
	started   time.Time
	rr        roundRobin  // delegate rotation
	tls       *tls.Config // served when gateway.tls has a certificate, else nil
	clients   peerClients // HTTP clients for wss:// peers
	identity  *Identity   // signs and opens messages; see seal.go
	guard     *gateway.Guard
	mcp       *mcpFront       // MCP over streamable HTTP at MCPPath
	found     discovered      // gateways mDNS sees; see discovery.go
	mdns      *discovery.MDNS // nil unless federation.discovery.mdns is enabled
	a2a       *a2aFront       // each agent as an A2A agent under A2APath
	ui        uiSessions      // dashboard logins; see ui.go
	a2aPeers  a2aClients      // clients of peers of type a2a
	nats      *natsLink       // federation.transport nats; nil otherwise (nats.go)
	mesh      meshTable       // routes learned from peers (mesh.go)
	meshTrust meshTrust       // signing keys first seen across the mesh (meshtrust.go)

	// sharedContexts is the site's synced context in JetStream KV with
	// federation.transport nats; nil: contexts (nats_context.go). Set
	// before anything is served.
	sharedContexts *natsContexts

	mu       sync.Mutex // guards httpSrv, listener and stopping
	httpSrv  *http.Server
	listener net.Listener
	stopping bool
	serveErr chan error
	bg       context.Context    // ends at Shutdown: background loops return
	bgCancel context.CancelFunc // ends bg
	loops    sync.WaitGroup     // background loops (heartbeat)

	metricsSrv metricsServer // gateway.metrics.listen, guarded by mu; see metricslisten.go
}

type localAgent struct {
	cfg       AgentConfig
	handler   Handler
	queue     *queue.Sem // bounds concurrent messages; the rest wait by priority
	immediate bool       // handler is wsconn.Immediate: served on the reader
}

// Queue defaults.
const (
	defaultAgentConcurrency = 16
	defaultAgentQueue       = 1024
	peerOutboundInFlight    = 256  // requests outstanding on one peer connection
	peerOutboundQueue       = 4096 // requests waiting for one
	queueAgeing             = 2 * time.Second
)

// New validates cfg, opens its storage and loads dynamic peers. It does not
// listen yet: call Start. The node keeps a copy of cfg with its defaults
// applied (ApplyDefaults).
func New(cfg *Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: *cfg, log: opts.Logger, agents: make(map[string]*localAgent), started: time.Now()}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if n.tls, err = newServerTLS(cfg.Gateway.TLS, n.log); err != nil {
		return nil, err
	}
	for _, a := range cfg.Agents {
		h := opts.Handlers[a.ID]
		if h == nil {
			return nil, fmt.Errorf("federation: agent %q has no handler", a.ID)
		}
		im, _ := h.(wsconn.Immediate)
		n.agents[a.ID] = &localAgent{cfg: a, handler: h, immediate: im != nil && im.Immediate(), queue: queue.New(
			a.MaxConcurrency, a.MaxQueue, queueAgeing)}
	}
	st, err := store.Open(cfg.Storage.Dir)
	if err != nil {
		return nil, err
	}
	n.store = st
	n.records = st.Gather(store.Processed, recordEvery)
	if err := st.CheckFormat(); err != nil {
		st.Close()
		return nil, fmt.Errorf("storage.dir %q: %w", cfg.Storage.Dir, err)
	}
	if n.identity, err = LoadIdentity(cfg.Storage.Dir); err != nil {
		st.Close()
		return nil, err
	}
	n.serverID = cfg.Federation.ServerID
	if n.serverID == "" {
		if n.serverID, err = st.ServerID(); err != nil {
			st.Close()
			return nil, fmt.Errorf("generate serverId: %w", err)
		}
	}
	if n.peers, err = newRegistry(cfg.Federation.Peers, st); err != nil {
		st.Close()
		return nil, err
	}
	for _, id := range n.peers.skipped {
		n.log.Warn("dynamic peer not loaded: its url holds a user name or password, which peer URLs may not; register it again without them, giving the secret as peerToken",
			"peer", id)
	}
	if n.contexts, err = newContextStore(st); err != nil {
		st.Close()
		return nil, fmt.Errorf("load synced context: %w", err)
	}
	auth := cfg.Gateway.Auth
	n.authCfg.Store(&auth)
	window := time.Duration(n.cfg.Gateway.ReplayWindowMs) * time.Millisecond
	if n.replay, err = newReplayGuard(window, st, func() int { return len(n.auth().Peers) }); err != nil {
		st.Close()
		return nil, err
	}
	if n.audit, err = openAudit(n.cfg.Audit, n.cfg.Storage.Dir); err != nil {
		st.Close()
		return nil, err
	}
	n.once = newOnceTracker()
	if n.outbox, err = newOutbox(n, st); err != nil {
		st.Close()
		return nil, err
	}
	n.limits = newPeerLimits(cfg.Gateway.Limits)
	n.metrics = newMetrics(n)
	n.tracer = newTracer(opts.TracerProvider)
	n.hostAllow.Store(newHostAllowList(cfg.Gateway.DynamicPeerHosts))
	n.tracker = newHealthTracker(BreakerSettings{
		Failures: cfg.Gateway.Breaker.Failures,
		Open:     time.Duration(cfg.Gateway.Breaker.OpenMs) * time.Millisecond,
	})
	n.guard = &gateway.Guard{ListenAddr: cfg.Gateway.Listen, AllowedOrigins: cfg.Gateway.AllowedOrigins, Refused: n.metrics.refused}
	n.srv = &gateway.Server{
		Handler:       rpcHandler{n}, // served inline: see inline.go
		Authenticate:  n.authenticate,
		Methods:       methodsFor,
		Version:       Version,
		ServerID:      n.serverID,
		Logger:        n.log,
		Health:        func() any { return n.helloHealth() },
		IdleTimeout:   time.Duration(cfg.Gateway.IdleTimeoutMs) * time.Millisecond,
		TickInterval:  time.Duration(cfg.Gateway.TickIntervalMs) * time.Millisecond,
		Started:       n.started,
		Guard:         n.guard,
		MaxConns:      cfg.Gateway.Limits.MaxConnections,
		MaxHandshakes: cfg.Gateway.Limits.MaxHandshakes,
		Refused:       n.metrics.refused,
	}
	n.mcp = newMCPFront(n)
	if n.a2a, err = newA2AFront(n); err != nil {
		st.Close()
		return nil, err
	}
	return n, nil
}

// ServerID returns this gateway's serverId.
func (n *Node) ServerID() string { return n.serverID }

// Start listens on cfg.Gateway.Listen and serves in the background.
func (n *Node) Start() error {
	ln, err := net.Listen("tcp", n.cfg.Gateway.Listen)
	if err != nil {
		return fmt.Errorf("listen on gateway.listen %q: %w", n.cfg.Gateway.Listen, err)
	}
	return n.Serve(ln)
}

// Serve serves on ln in the background until Shutdown.
func (n *Node) Serve(ln net.Listener) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.httpSrv != nil || n.stopping {
		return errors.New("federation: node already started or stopped")
	}
	mln, err := n.listenMetrics()
	if err != nil {
		return err
	}
	if err := n.startNATS(); err != nil {
		closeListener(mln)
		return err
	}
	ln = gateway.TrackActivity(ln) // for the idle limit; under TLS
	if n.tls != nil {
		ln = tls.NewListener(ln, n.tls)
	}
	if n.cfg.Federation.Enabled && n.cfg.Federation.Discovery.MDNS.Enabled {
		scheme := "ws"
		if n.tls != nil {
			scheme = "wss"
		}
		var err error
		if n.mdns, err = n.startDiscovery(scheme + "://" + ln.Addr().String()); err != nil {
			closeListener(mln)
			return err
		}
	}
	n.listener = ln
	// Every HTTP surface of the listener goes through the guard.
	n.httpSrv = &http.Server{Handler: n.guard.Wrap(n.httpHandler()), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second,
		ConnContext: gateway.ConnContext, ConnState: n.srv.ConnState,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	n.serveErr = make(chan error, 1)
	go func() { n.serveErr <- n.httpSrv.Serve(ln) }()
	n.serveMetricsLocked(mln)
	n.bg, n.bgCancel = context.WithCancel(context.Background())
	if n.cfg.Federation.Enabled {
		interval := time.Duration(n.cfg.Gateway.HeartbeatMs) * time.Millisecond
		n.loops.Go(func() { n.heartbeat(n.bg, interval) })
		n.loops.Go(func() { n.outbox.Run(n.bg) })
		n.loops.Go(func() { n.pruneHandled(n.bg) })
		n.loops.Go(func() { n.replay.run(n.bg) })
		if n.cfg.Federation.Mesh.Enabled {
			n.loops.Go(func() { n.meshLoop(n.bg, interval) })
		}
	}
	n.logStart()
	return nil
}

func (n *Node) logStart() {
	n.log.Info("gateway listening", "addr", n.listener.Addr().String(), "serverId", n.serverID,
		"federation", n.cfg.Federation.Enabled, "requireAuth", n.cfg.Federation.RequireAuth, "storageDir", absPath(n.cfg.Storage.Dir))
	for _, p := range n.peers.list() {
		n.log.Info("peer", "id", p.ID, "url", p.URL, "agentId", p.AgentID, "enabled", p.IsEnabled(), "source", p.source)
		logPeerTLS(n.log, &p.PeerConfig)
	}
	for id, a := range n.agents {
		n.log.Info("agent", "id", id, "type", a.cfg.Handler.Type, "capabilities", a.cfg.Capabilities)
	}
	if n.cfg.Gateway.Auth.OperatorToken == "" {
		n.log.Warn("gateway.auth.operatorToken is not set: operator access is accepted from loopback connections whose Host names this machine")
	}
	if !n.cfg.Federation.RequireAuth && len(n.cfg.Gateway.Auth.Peers) == 0 {
		n.log.Warn("no gateway.auth.peers and requireAuth is false: any gateway that can reach this address may connect as a peer")
	}
}

// absPath is dir made absolute for the log, so that a relative storage.dir
// says where it is; dir itself when the working directory is unknown.
func absPath(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// Addr returns the listening address, or nil before Start.
func (n *Node) Addr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listener == nil {
		return nil
	}
	return n.listener.Addr()
}

// URL returns the ws:// (wss:// with gateway.tls) URL peers and operators
// use to reach this node.
func (n *Node) URL() string {
	a := n.Addr()
	switch {
	case a == nil:
		return ""
	case n.tls != nil:
		return "wss://" + a.String()
	}
	return "ws://" + a.String()
}

// Shutdown stops accepting connections, lets requests in flight finish
// until ctx ends, closes every connection with a close frame, and releases
// the storage. It returns when nothing the node started is still running.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.stopping {
		n.mu.Unlock()
		return nil
	}
	n.stopping = true
	httpSrv := n.httpSrv
	n.mu.Unlock()

	var errs []error
	if httpSrv != nil {
		n.bgCancel()
		n.mcp.close() // ends held event streams, which Shutdown would wait for
		// Likewise A2A event streams; and A2A executions end.
		errs = append(errs, n.a2a.close(ctx))
		errs = append(errs, httpSrv.Shutdown(ctx))
		n.mcp.close() // and a session that a request in flight opened meanwhile
		errs = append(errs, n.metricsSrv.shutdown(ctx))
	}
	if n.mdns != nil {
		n.mdns.Close() // no new discovered peers from here on
	}
	errs = append(errs, n.srv.Shutdown(ctx))
	n.stopNATS()                           // answers what NATS gave it; starts no handling after drain
	errs = append(errs, n.once.drain(ctx)) // durable handlings outlive their requests
	n.pool.Close()
	n.a2aPeers.closeAll()
	n.clients.closeIdle()
	n.loops.Wait()
	if httpSrv != nil {
		if err := <-n.serveErr; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, n.replay.save(), n.store.Close(), n.audit.close())
	return errors.Join(errs...)
}
