package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/tstest"
)

// With an OTLP endpoint in the environment, serve exports the spans of
// the actions it runs over OTLP/HTTP; without one it exports nothing.
func TestServeExportsTraces(t *testing.T) {
	var posts atomic.Int64
	var body atomic.Value
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			b, _ := io.ReadAll(r.Body)
			body.Store(string(b))
			posts.Add(1)
		}
	}))
	defer collector.Close()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	s := serve(t)
	if !strings.Contains(s.Logs.String(), "tracing on") {
		t.Fatalf("serve did not say tracing is on:\n%s", s.Logs)
	}
	if _, errOut, code := agentfed(t, "", "peers", "--gateway", s.URL); code != 0 {
		t.Fatalf("peers: %d %s", code, errOut)
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		if posts.Load() == 0 {
			return errors.New("no spans reached the OTLP endpoint")
		}
		return nil
	})
	got, _ := body.Load().(string)
	for _, want := range []string{"agentfed.action", "agentfed"} {
		if !strings.Contains(got, want) {
			t.Errorf("exported spans lack %q", want)
		}
	}
	s.Stop(t, syscall.SIGTERM)

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	before := posts.Load()
	quiet := serve(t)
	agentfed(t, "", "peers", "--gateway", quiet.URL)
	quiet.Stop(t, syscall.SIGTERM) // a provider would flush at shutdown
	if strings.Contains(quiet.Logs.String(), "tracing on") || posts.Load() != before {
		t.Fatalf("tracing is on without OTEL_* variables: %d exports\n%s", posts.Load()-before, quiet.Logs)
	}

	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	dir := t.TempDir()
	_, errOut, code := agentfedIn(t, dir, "", "serve", "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, `OTEL_TRACES_EXPORTER="zipkin"`) {
		t.Fatalf("serve with an exporter it lacks: exit %d, %s", code, fmt.Sprint(errOut))
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("serve refused its environment but left %v behind", entries)
	}
}
