package federation

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAuditRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	a, err := openAudit(AuditConfig{MaxFiles: 2}, dir)
	if err != nil {
		t.Fatal(err)
	}
	a.maxSize = 1000
	for i := range 100 {
		a.write(auditEvent{Dir: "in", Kind: "relay", MessageID: fmt.Sprint(i), Outcome: "ok", Content: "dropped"})
	}
	a.close()
	for _, name := range []string{"audit.log", "audit.log.1", "audit.log.2"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Size() > 1000 {
			t.Fatalf("%s is %d bytes, over the 1000-byte limit", name, st.Size())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.log.3")); err == nil {
		t.Fatal("kept more than maxFiles rotated files")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	if len(b) == 0 || string(b[len(b)-1]) != "\n" {
		t.Fatalf("audit.log does not end with a whole line: %q", b)
	}
}

// TestAuditEventEncoding: the hand-written encoding is encoding/json's,
// byte for byte.
func TestAuditEventEncoding(t *testing.T) {
	now := time.Date(2026, 11, 24, 22, 1, 2, 345678900, time.UTC)
	for _, e := range []auditEvent{
		{Dir: "in", Kind: "relay", Outcome: "ok"},
		{Dir: "out", Kind: "deliver", Peer: "b", Remote: "127.0.0.1:1", Method: "federation.relay", Action: "send",
			Agent: "echo", MessageID: "m", CorrelationID: "c", Type: "request", Outcome: "TIMEOUT", LatencyMs: 12.345,
			Detail: "AUTH_TOKEN_MISSING", Content: "<tag> & \"quotes\" \u2028 \xff ünïcode\n"},
		{Dir: "op", Kind: "tool", Outcome: "ok", LatencyMs: 0.001},
		{Dir: "op", Kind: "tool", Outcome: "ok", LatencyMs: 86400000},
	} {
		e.Time = now.Format(time.RFC3339Nano)
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.appendJSON(nil, now); string(got) != string(want) {
			t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
		}
	}
}
