package federation

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values that stand for many: a sender that did not authenticate
// (its name is its own choice), an agent this gateway does not host, an
// error code agentfed does not define, and values past a label's bound.
const (
	labelUnauthenticated = "unauthenticated"
	labelUnknown         = "unknown"
	labelOther           = "other"
)

// maxLabelValues bounds the distinct values of a label whose values an
// operator chooses freely (the agent a message is sent to).
const maxLabelValues = 256

// metrics are a Node's Prometheus metrics, in a registry of its own.
// Counters and histograms are updated as work happens; gauges (queues,
// in-flight, health, outbox, connections) are read when scraped, so they
// cost the hot path nothing.
type metrics struct {
	n        *Node
	registry *prometheus.Registry
	handler  http.Handler

	relaysIn, relaysOut     *prometheus.CounterVec   // peer, agent, outcome
	relayInDur, relayOutDur *prometheus.HistogramVec // peer
	refusals                *prometheus.CounterVec   // reason
	outAgents               labelSet
	in, out                 sync.Map // relayKey -> *relaySeries: the hot path skips label hashing
}

// relayKey is one series of relays; its values are bounded labels.
type relayKey struct{ peer, agent, outcome string }

// relaySeries are a relay key's counter and its peer's histogram.
type relaySeries struct {
	count prometheus.Counter
	dur   prometheus.Observer
}

func series(cache *sync.Map, count *prometheus.CounterVec, dur *prometheus.HistogramVec, k relayKey) *relaySeries {
	if s, ok := cache.Load(k); ok {
		return s.(*relaySeries)
	}
	s, _ := cache.LoadOrStore(k, &relaySeries{count: count.WithLabelValues(k.peer, k.agent, k.outcome), dur: dur.WithLabelValues(k.peer)})
	return s.(*relaySeries)
}

// latencyBuckets span a loopback round trip (100µs) to a slow agent (~30s).
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

func newMetrics(n *Node) *metrics {
	m := &metrics{n: n, registry: prometheus.NewRegistry()}
	m.relaysIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentfed_relays_in_total",
		Help: "Messages relayed to this gateway's agents by peer gateways, by peer (serverId, or unauthenticated), agent and outcome (ok or an error code).",
	}, []string{"peer", "agent", "outcome"})
	m.relaysOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentfed_relays_out_total",
		Help: "Messages relayed by this gateway to peers, by peer, target agent and outcome (ok or an error code).",
	}, []string{"peer", "agent", "outcome"})
	m.relayInDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agentfed_relay_in_duration_seconds",
		Help:    "Time to serve a relayed message, from its arrival to the answer, by peer.",
		Buckets: latencyBuckets,
	}, []string{"peer"})
	m.relayOutDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agentfed_relay_out_duration_seconds",
		Help:    "Round trip of a relayed message to a peer, until its answer or failure, by peer.",
		Buckets: latencyBuckets,
	}, []string{"peer"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentfed_refusals_total",
		Help: "Refused connections and requests, by reason (auth, forbidden, rate_limited, origin, connection_limit).",
	}, []string{"reason"})
	m.registry.MustRegister(m.relaysIn, m.relaysOut, m.relayInDur, m.relayOutDur, m.refusals, stateCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
	return m
}

// Registry returns the node's Prometheus registry, for embedding programs
// that serve or push metrics their own way.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.registry }

// relayIn counts a relayed message served for a peer. agent is counted
// under its name only if this gateway hosts it.
func (m *metrics) relayIn(id *gateway.Identity, agent string, err error, d time.Duration) {
	peer := labelUnauthenticated
	if id.Authenticated {
		peer = id.PeerID // a gateway.auth.peers serverId: configured, bounded
	}
	if _, ok := m.n.agents[agent]; !ok {
		agent = labelUnknown
	}
	s := series(&m.in, m.relaysIn, m.relayInDur, relayKey{peer, agent, outcomeLabel(err)})
	s.count.Inc()
	s.dur.Observe(d.Seconds())
}

// relayOut counts a message relayed to peer, a configured or registered
// peer id (bounded by the config and maxDynamicPeers).
func (m *metrics) relayOut(peer, agent string, res *Result, d time.Duration) {
	outcome := "ok"
	if res.Error != nil {
		outcome = codeLabel(res.Error.Code)
	}
	s := series(&m.out, m.relaysOut, m.relayOutDur, relayKey{peer, m.outAgents.get(agent), outcome})
	s.count.Inc()
	s.dur.Observe(d.Seconds())
}

// refused counts a refusal.
func (m *metrics) refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

func outcomeLabel(err error) string {
	if err == nil {
		return "ok"
	}
	return codeLabel(gateway.CodeOf(err))
}

// codeLabel is code when agentfed defines it, else "other": a remote
// gateway may answer with any code it likes.
func codeLabel(code string) string {
	if knownCodes[code] {
		return code
	}
	return labelOther
}

var knownCodes = func() map[string]bool {
	m := make(map[string]bool)
	for _, c := range []string{
		gateway.CodeInvalidRequest, gateway.CodeInvalidParams, gateway.CodeUnknownMethod, CodeUnknownAction,
		gateway.CodeUnauthorized, gateway.CodeForbidden, CodeUnknownPeer, CodePeerDisabled,
		gateway.CodePeerUnavailable, CodeUnknownAgent, CodeNoCapablePeer, gateway.CodeTimeout,
		gateway.CodeCancelled, CodeDynamicPeersDisabled, CodePeerExists, CodeStaticPeer,
		CodeAgentError, CodeFederationDisabled, gateway.CodeShuttingDown, gateway.CodeInternal,
		CodeCircuitOpen, CodeRateLimited, CodeOverloaded, CodeUnknownMessage,
		gateway.CodeTooLarge, CodeStale, CodeReplayed, CodeBadSignature,
	} {
		m[c] = true
	}
	return m
}()

// labelSet admits the first maxLabelValues distinct values of a label and
// maps the rest to "other". Safe for concurrent use; a seen value costs
// one map read.
type labelSet struct {
	seen sync.Map // value -> struct{}
	n    atomic.Int64
}

func (s *labelSet) get(v string) string {
	if _, ok := s.seen.Load(v); ok {
		return v
	}
	if s.n.Add(1) > maxLabelValues {
		s.n.Add(-1)
		return labelOther
	}
	if _, loaded := s.seen.LoadOrStore(v, struct{}{}); loaded {
		s.n.Add(-1)
	}
	return v
}

// stateCollector reads the gauges when scraped.
type stateCollector struct{ m *metrics }

var (
	descAgentBusy = prometheus.NewDesc("agentfed_agent_busy",
		"Messages a local agent is handling now.", []string{"agent"}, nil)
	descAgentQueued = prometheus.NewDesc("agentfed_agent_queued",
		"Messages waiting for a local agent.", []string{"agent"}, nil)
	descPeerInFlight = prometheus.NewDesc("agentfed_peer_in_flight",
		"Requests to a peer awaiting its answer.", []string{"peer"}, nil)
	descPeerQueued = prometheus.NewDesc("agentfed_peer_queued",
		"Requests waiting for a slot on a peer's connection.", []string{"peer"}, nil)
	descPeerConnected = prometheus.NewDesc("agentfed_peer_connected",
		"1 when this gateway holds a connection to the peer.", []string{"peer"}, nil)
	descPeerHealth = prometheus.NewDesc("agentfed_peer_health",
		"1 for the peer's current health state (healthy, degraded, down, unknown), 0 for the others.", []string{"peer", "state"}, nil)
	descPeerCircuit = prometheus.NewDesc("agentfed_peer_circuit",
		"1 for the state of the peer's circuit breaker (closed, half-open, open), 0 for the others.", []string{"peer", "state"}, nil)
	descPeerRTT = prometheus.NewDesc("agentfed_peer_rtt_seconds",
		"Smoothed round trip to the peer.", []string{"peer"}, nil)
	descOutbox = prometheus.NewDesc("agentfed_outbox_messages",
		"Durable messages in the outbox, by state (queued, delivered, failed, dead).", []string{"state"}, nil)
	descConns = prometheus.NewDesc("agentfed_connections",
		"Open WebSocket connections to this gateway, by stage (handshake, connected).", []string{"stage"}, nil)
	descUp = prometheus.NewDesc("agentfed_ready",
		"1 when the gateway is ready (as /readyz), else 0.", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAgentBusy, descAgentQueued, descPeerInFlight, descPeerQueued, descPeerConnected,
		descPeerHealth, descPeerCircuit, descPeerRTT, descOutbox, descConns, descUp} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.m.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	h := n.health()
	for _, a := range h.Agents {
		gauge(descAgentBusy, float64(a.Busy), a.ID)
		gauge(descAgentQueued, float64(a.Waiting), a.ID)
	}
	for _, p := range h.Peers {
		_, waiting := n.tracker.get(p.ID).outbound.Stats()
		gauge(descPeerInFlight, float64(p.InFlight), p.ID)
		gauge(descPeerQueued, float64(waiting), p.ID)
		gauge(descPeerConnected, boolFloat(p.Connected), p.ID)
		gauge(descPeerRTT, p.RTTMs/1000, p.ID)
		for _, s := range []string{HealthHealthy, HealthDegraded, HealthDown, HealthUnknown} {
			gauge(descPeerHealth, boolFloat(p.State == s), p.ID, s)
		}
		for _, s := range []string{"closed", "half-open", "open"} {
			gauge(descPeerCircuit, boolFloat(p.Circuit == s), p.ID, s)
		}
	}
	for state, count := range n.outbox.Counts() {
		gauge(descOutbox, float64(count), state)
	}
	open, handshaking := n.srv.Conns()
	gauge(descConns, float64(handshaking), "handshake")
	gauge(descConns, float64(open-handshaking), "connected")
	ready := true
	for _, chk := range n.readiness() {
		ready = ready && chk.failed == ""
	}
	gauge(descUp, boolFloat(ready))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
