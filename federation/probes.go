package federation

import (
	"net/http"
	"strings"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// HTTP paths of the listener's plain HTTP endpoints. Every other path is
// the gateway protocol's WebSocket upgrade.
const (
	PathHealthz = "/healthz" // alive: the process serves HTTP
	PathReadyz  = "/readyz"  // ready: storage open, listening, peers loaded
	PathMetrics = "/metrics" // Prometheus metrics; operator credentials
	PathBackup  = "/backup"  // a consistent copy of the store; operator credentials
)

// httpHandler routes the listener's requests: MCP at MCPPath, the plain
// HTTP endpoints at their paths, the gateway protocol's WebSocket
// everywhere else. The caller wraps it in the Guard, so every path passes
// the same Origin check.
func (n *Node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(MCPPath, n.mcp)
	mux.Handle(A2APath, n.a2a) // a2a.go
	mux.Handle(a2aWellKnown, n.a2a)
	mux.HandleFunc(PathHealthz, func(w http.ResponseWriter, r *http.Request) { n.serveProbe(w, r, nil) })
	mux.HandleFunc(PathReadyz, func(w http.ResponseWriter, r *http.Request) { n.serveProbe(w, r, n.readiness()) })
	mux.HandleFunc(PathMetrics, n.serveListenerMetrics) // metricslisten.go
	mux.HandleFunc(PathBackup, func(w http.ResponseWriter, r *http.Request) {
		n.serveOperatorHTTP(w, r, http.HandlerFunc(n.serveBackup))
	})
	mux.HandleFunc(PathUI, n.serveUI) // ui.go
	mux.HandleFunc(PathUI+"/", n.serveUI)
	mux.Handle("/", n.srv)
	return mux
}

// probeCheck is one readiness condition: its name and, when it fails, a
// fixed reason. Probes need no credentials, so they say nothing else.
type probeCheck struct {
	name   string
	failed string
}

// readiness checks what a gateway needs to serve: its storage is open, it
// is listening and not shutting down, and its peers are loaded.
func (n *Node) readiness() []probeCheck {
	storage := probeCheck{name: "storage"}
	if n.store.Ping() != nil {
		storage.failed = "not open"
	}
	listening := probeCheck{name: "listening"}
	n.mu.Lock()
	switch {
	case n.stopping:
		listening.failed = "shutting down"
	case n.listener == nil:
		listening.failed = "not started"
	}
	n.mu.Unlock()
	peers := probeCheck{name: "peers"}
	if n.peers == nil {
		peers.failed = "not loaded"
	}
	return []probeCheck{storage, listening, peers}
}

// serveProbe answers a health probe in plain text: 200 and "ok" when every
// check passes (none: alive), else 503 and the checks that failed.
func (n *Node) serveProbe(w http.ResponseWriter, r *http.Request, checks []probeCheck) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	var b strings.Builder
	status := http.StatusOK
	for _, c := range checks {
		if c.failed != "" {
			status = http.StatusServiceUnavailable
			b.WriteString("[-]" + c.name + " failed: " + c.failed + "\n")
		} else {
			b.WriteString("[+]" + c.name + " ok\n")
		}
	}
	if status == http.StatusOK {
		b.WriteString("ok\n")
	} else {
		b.WriteString("not ready\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		w.Write([]byte(b.String()))
	}
}

// serveOperatorHTTP serves next to operators only: a bearer token equal to
// gateway.auth.operatorToken, or, without one configured, a request from
// this machine (as operator WebSocket connections are authenticated).
func (n *Node) serveOperatorHTTP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if _, err := n.authenticateOperator(r, strings.TrimSpace(token)); err != nil {
		n.metrics.refused("auth")
		n.audit.refuse(auditEvent{Dir: "in", Kind: "auth", Remote: r.RemoteAddr, Method: r.URL.Path, Outcome: gateway.CodeOf(err)}, time.Now())
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentfed"`)
		http.Error(w, err.Error()+" (over HTTP: send it as Authorization: Bearer TOKEN)", refusalStatus(w, err))
		return
	}
	next.ServeHTTP(w, r)
}
