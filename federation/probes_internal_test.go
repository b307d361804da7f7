package federation

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// newUnstartedNode is a gateway with the default configuration and its
// own storage.dir, built but not serving; it is shut down when the test
// ends.
func newUnstartedNode(t *testing.T) *Node {
	t.Helper()
	cfg := &Config{}
	cfg.Federation.Enabled = true
	cfg.Storage.Dir = t.TempDir()
	cfg.ApplyDefaults()
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// A node that is not listening yet is alive but not ready, and says which
// check failed and nothing else.
func TestReadyzBeforeStart(t *testing.T) {
	n := newUnstartedNode(t)
	for _, tt := range []struct {
		path, want string
		status     int
	}{
		{PathHealthz, "ok\n", http.StatusOK},
		{PathReadyz, "[+]storage ok\n[-]listening failed: not started\n[+]peers ok\nnot ready\n", http.StatusServiceUnavailable},
	} {
		rec := httptest.NewRecorder()
		n.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.status || rec.Body.String() != tt.want {
			t.Errorf("GET %s: %d %q; want %d %q", tt.path, rec.Code, rec.Body.String(), tt.status, tt.want)
		}
	}
}
