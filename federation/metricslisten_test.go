package federation_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// TestMetricsListener serves /metrics on gateway.metrics.listen only:
// there with the operator token, not without, nothing else there, and no
// longer on gateway.listen.
func TestMetricsListener(t *testing.T) {
	const token = "metrics-listener-operator-token-0123456789"
	cfg := newConfig(t, "metrics-server", "m-agent")
	cfg.Gateway.Auth.OperatorToken = token
	cfg.Gateway.Metrics.Listen = "127.0.0.1:0"
	g := start(t, cfg, listen(t), nil)
	addr := g.MetricsAddr()
	if addr == nil || addr.String() == g.Addr().String() {
		t.Fatalf("metrics address %v, gateway address %v", addr, g.Addr())
	}
	get := func(url, bearer string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return res.StatusCode, string(body)
	}
	metrics := "http://" + addr.String() + federation.PathMetrics
	if code, body := get(metrics, token); code != 200 || !strings.Contains(body, "agentfed_ready 1") {
		t.Fatalf("GET %s with the token: %d\n%.300s", metrics, code, body)
	}
	if code, body := get(metrics, ""); code != 401 || !strings.Contains(body, "operator token") {
		t.Fatalf("GET %s without a token: %d %s", metrics, code, body)
	}
	for _, path := range []string{federation.PathBackup, federation.PathUI + "/", federation.PathHealthz, "/"} {
		if code, _ := get("http://"+addr.String()+path, token); code != 404 {
			t.Errorf("GET %s on the metrics listener: %d, want 404", path, code)
		}
	}
	main := "http://" + g.Addr().String() + federation.PathMetrics
	if code, body := get(main, token); code != 404 || !strings.Contains(body, "gateway.metrics.listen") {
		t.Fatalf("GET %s on gateway.listen: %d %s", main, code, body)
	}
}

// TestMetricsListenValidated names gateway.metrics.listen when it is not
// host:port or is gateway.listen itself.
func TestMetricsListenValidated(t *testing.T) {
	for _, tt := range []struct{ listen, want string }{
		{"9090", `gateway.metrics.listen: "9090" is not host:port`},
		{"127.0.0.1:18789", `gateway.metrics.listen: "127.0.0.1:18789" is gateway.listen too`},
	} {
		cfg := newConfig(t, "s", "")
		cfg.Gateway.Metrics.Listen = tt.listen
		cfg.ApplyDefaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("gateway.metrics.listen %q: %v; want %q", tt.listen, err, tt.want)
		}
	}
}
