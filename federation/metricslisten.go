package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// metricsServer serves /metrics on gateway.metrics.listen. Its zero value
// serves nothing.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error // Serve's result
}

// listenMetrics opens gateway.metrics.listen, with the gateway's TLS when
// it has one; nil when it is not set.
func (n *Node) listenMetrics() (net.Listener, error) {
	addr := n.cfg.Gateway.Metrics.Listen
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway.metrics.listen %q: %w", addr, err)
	}
	if n.tls != nil {
		ln = tls.NewListener(ln, n.tls)
	}
	return ln, nil
}

// serveMetricsLocked serves /metrics, and nothing else, on ln (nil: no
// separate listener), behind the same Guard and credentials as the main
// listener. n.mu is held.
func (n *Node) serveMetricsLocked(ln net.Listener) {
	if ln == nil {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc(PathMetrics, n.serveMetrics)
	n.metricsSrv = metricsServer{ln: ln, done: make(chan error, 1), srv: &http.Server{Handler: n.guard.Wrap(mux),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}}
	srv, done := n.metricsSrv.srv, n.metricsSrv.done
	go func() { done <- srv.Serve(ln) }()
	n.log.Info("metrics listening", "addr", ln.Addr().String())
}

// serveMetrics serves the Prometheus metrics to operators.
func (n *Node) serveMetrics(w http.ResponseWriter, r *http.Request) {
	n.serveOperatorHTTP(w, r, n.metrics.handler)
}

// serveListenerMetrics serves /metrics on gateway.listen, unless
// gateway.metrics.listen took it elsewhere.
func (n *Node) serveListenerMetrics(w http.ResponseWriter, r *http.Request) {
	if n.cfg.Gateway.Metrics.Listen != "" {
		http.Error(w, "metrics are served on gateway.metrics.listen, not on this listener", http.StatusNotFound)
		return
	}
	n.serveMetrics(w, r)
}

// shutdown stops serving and waits until Serve has returned.
func (s *metricsServer) shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

// MetricsAddr returns the address gateway.metrics.listen serves on, or
// nil when it is not set or the node is not serving.
func (n *Node) MetricsAddr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.metricsSrv.ln == nil {
		return nil
	}
	return n.metricsSrv.ln.Addr()
}

// closeListener closes ln, if any, when starting fails after it opened.
func closeListener(ln net.Listener) {
	if ln != nil {
		ln.Close()
	}
}
