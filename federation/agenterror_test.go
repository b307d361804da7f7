//go:build unix

package federation_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAgentErrorsKeepSecrets: when an exec agent (an API key in its argv, a
// secret on its stderr) or an http agent (an API key in its URL, a secret
// in its error page) fails, the remote caller gets AGENT_ERROR, a short
// message and an error id, none of the secrets; the receiving gateway's
// log and audit log have the details under that id.
func TestAgentErrorsKeepSecrets(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "query failed: password=page-secret-4", http.StatusInternalServerError)
	}))
	defer page.Close()
	secrets := []string{"argv-secret-1", "stderr-secret-2", "url-secret-3", "page-secret-4", page.URL}

	lnPeer := listen(t)
	pcfg := newConfig(t, "agents-server", "")
	pcfg.Agents = []federation.AgentConfig{
		{ID: "script", Handler: federation.HandlerConfig{Type: "exec",
			Command: []string{"/bin/sh", "-c", `echo "auth failed with key $1: stderr-secret-2" >&2; exit 3`, "sh", "--api-key=argv-secret-1"}}},
		{ID: "service", Handler: federation.HandlerConfig{Type: "http", URL: page.URL + "/agent?apikey=url-secret-3"}},
	}
	logs := &syncBuffer{}
	peerGW := startWith(t, pcfg, lnPeer, nil, slog.New(slog.NewTextHandler(logs, nil)))
	cfg := newConfig(t, "caller", "")
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("script", "script", lnPeer), peerConf("service", "service", lnPeer)}
	main := start(t, cfg, listen(t), nil)

	ids := map[string]string{}
	for _, tt := range []struct{ peer, says string }{
		{"script", "failed: exit status 3"},
		{"service", "answered 500 Internal Server Error"},
	} {
		r, err := main.Send(context.Background(), federation.SendRequest{PeerID: tt.peer, Message: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		e := r.Error
		if e == nil || e.Code != federation.CodeAgentError || !strings.Contains(e.Message, tt.says) {
			t.Fatalf("%s: error %+v; want AGENT_ERROR saying %q", tt.peer, e, tt.says)
		}
		for _, s := range secrets {
			if strings.Contains(fmt.Sprint(e), s) {
				t.Errorf("%s: the caller's error %+v shows %q", tt.peer, e, s)
			}
		}
		d, _ := e.Details.(map[string]any)
		id, _ := d["errorId"].(string)
		if id == "" || !strings.Contains(e.Message, id) {
			t.Fatalf("%s: error %+v has no error id in its details and message", tt.peer, e)
		}
		ids[tt.peer] = id
	}
	peerGW.stop(t)

	// The first failure is logged (later ones within a second are counted);
	// the audit log has each, with its details.
	if l := logs.String(); !strings.Contains(l, ids["script"]) || !strings.Contains(l, "argv-secret-1") {
		t.Errorf("the log has no line with error id %s and the details:\n%s", ids["script"], l)
	}
	b, err := os.ReadFile(filepath.Join(pcfg.Storage.Dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for peer, details := range map[string][]string{"script": {"argv-secret-1", "stderr-secret-2"}, "service": {"url-secret-3", "page-secret-4"}} {
		found := false
		for _, l := range readAudit(t, filepath.Join(pcfg.Storage.Dir, "audit.log")) {
			if l["errorId"] == ids[peer] && l["kind"] == "agent" {
				found = true
				for _, s := range details {
					if !strings.Contains(fmt.Sprint(l["detail"]), s) {
						t.Errorf("%s: the audit line of error %s lacks %q: %v", peer, ids[peer], s, l)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: no audit line with error id %s:\n%s", peer, ids[peer], b)
		}
	}
}
