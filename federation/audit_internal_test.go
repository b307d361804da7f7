package federation

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// auditConfig is an audit section with maxFiles set when it is not 0, and
// its defaults applied.
func auditConfig(maxFiles int) AuditConfig {
	c := Config{Audit: AuditConfig{MaxFiles: maxFiles}}
	c.ApplyDefaults()
	return c.Audit
}

// TestAuditWritesWhenDue: with nothing else happening, a line reaches the
// file auditFlush after it was written (also while a refusal window is
// open), and a refusal window's count when the window ends, not only at
// close.
func TestAuditWritesWhenDue(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	lines := func() int {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n")
	}
	synctest.Test(t, func(t *testing.T) {
		a, err := openAudit(auditConfig(0), dir)
		if err != nil {
			t.Fatal(err)
		}
		defer a.close()
		a.write(auditEvent{Dir: "in", Kind: "relay", Outcome: "ok"})
		time.Sleep(auditFlush)
		synctest.Wait()
		if n := lines(); n != 1 {
			t.Fatalf("%d lines on disk %v after a write; want 1", n, auditFlush)
		}
		refused := auditEvent{Dir: "in", Kind: "auth", Remote: "10.0.0.1:1", Outcome: "UNAUTHORIZED"}
		a.refuse(refused, time.Now())
		a.refuse(refused, time.Now()) // counted
		time.Sleep(auditFlush)
		synctest.Wait()
		if n := lines(); n != 2 {
			t.Fatalf("%d lines on disk after a refusal; want 2", n)
		}
		// While the window waits to end, a line is still written on time.
		a.write(auditEvent{Dir: "in", Kind: "relay", Outcome: "ok"})
		time.Sleep(auditFlush)
		synctest.Wait()
		if n := lines(); n != 3 {
			t.Fatalf("%d lines on disk %v after a write in a refusal window; want 3", n, auditFlush)
		}
		time.Sleep(refusalWindow)
		synctest.Wait()
		if n := lines(); n != 4 {
			t.Fatalf("%d lines on disk when the refusal window ended; want 4 (its count)", n)
		}
	})
}

func TestAuditRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	a, err := openAudit(auditConfig(2), dir)
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
		{Dir: "in", Kind: "auth", Remote: "::1", Outcome: "UNAUTHORIZED", Detail: "AUTH_TOKEN_MISMATCH", ErrorID: "e-1", Count: 1234, Since: "2026-11-24T22:01:02Z"},
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

// TestAuditBufferNotReusedWhileWritten: after a flush of an oversized
// buffer, writers never get the buffer a flush is writing out; concurrent
// writes and flushes leave only whole lines.
func TestAuditBufferNotReusedWhileWritten(t *testing.T) {
	dir := t.TempDir()
	// As openAudit builds it, without the background flusher: this test
	// calls flush itself, for a fixed order.
	a := &auditLog{path: filepath.Join(dir, "audit.log"), maxSize: 10 << 20, maxFiles: 5, includeContent: true,
		kick: make(chan struct{}, 1)}
	if err := a.open(); err != nil {
		t.Fatal(err)
	}
	defer a.f.Close()
	for range 100 {
		a.write(auditEvent{Dir: "in", Kind: "relay", Outcome: "ok", MessageID: "m"})
	}
	a.flush()
	a.write(auditEvent{Dir: "in", Kind: "relay", Outcome: "ok", Content: strings.Repeat("x", 5*auditBatch)})
	a.flush()
	a.write(auditEvent{Dir: "in", Kind: "relay", Outcome: "ok", MessageID: "m1"})
	a.mu.Lock()
	shared := cap(a.buf) > 0 && cap(a.spare) > 0 && &a.buf[:1][0] == &a.spare[:1][0]
	a.mu.Unlock()
	if shared {
		t.Fatal("the writers' buffer is also the spare the next flush hands out")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20000 {
			a.write(auditEvent{Dir: "in", Kind: "relay", Outcome: "ok", MessageID: "concurrent"})
		}
	}()
	for range 500 {
		a.flush()
	}
	<-done
	a.flush()
	data, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("line %d is torn: %.80q", i+1, line)
		}
	}
}

// TestAuditRefusalWindow: refusals are written once per source and window,
// then counted; the count is written when the window ends; beyond
// refusalSources sources, refusals are counted together.
func TestAuditRefusalWindow(t *testing.T) {
	dir := t.TempDir()
	a, err := openAudit(auditConfig(0), dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	refuse := func(remote string, at time.Duration) {
		a.refuse(auditEvent{Dir: "in", Kind: "auth", Remote: remote, Peer: "claimed-" + remote, Outcome: "UNAUTHORIZED"}, t0.Add(at))
	}
	for i := range 5 {
		refuse("10.0.0.1:"+fmt.Sprint(1000+i), 0) // one source, whatever its port
	}
	refuse("[2001:db8::1]:1", 0)
	refuse("[2001:db8::2]:2", 0) // the same /64
	a.summarize(t0.Add(30*time.Second), false)
	a.summarize(t0.Add(61*time.Second), false) // ends the first window
	// The next window: more sources than are tracked.
	for i := range refusalSources + 10 {
		refuse(fmt.Sprintf("10.1.%d.%d:1", i/256, i%256), 61*time.Second)
	}
	a.close() // ends the second

	var full, counts []string
	for _, l := range readLines(t, filepath.Join(dir, "audit.log")) {
		if l["count"] == nil {
			full = append(full, fmt.Sprint(l["remote"]))
		} else {
			counts = append(counts, fmt.Sprintf("%v=%v", l["remote"], l["count"]))
		}
	}
	if len(full) != 2+refusalSources || full[0] != "10.0.0.1:1000" || full[1] != "[2001:db8::1]:1" {
		t.Errorf("written in full: %d lines starting %v; want 2 and then %d", len(full), full[:min(len(full), 3)], refusalSources)
	}
	want := []string{"10.0.0.1=4", "2001:db8::/64=1", "*=10"}
	if diff := cmp.Diff(want, counts, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("count lines (-want +got):\n%s", diff)
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// FuzzClip: a clipped field fits its bound, stays UTF-8 when it was, and
// clipping again changes nothing.
func FuzzClip(f *testing.F) {
	f.Add(strings.Repeat("x", 300), 256)
	f.Add(strings.Repeat("ü", 200), 256)
	f.Add("short", 256)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = 32 + int(uint(limit)%4096)
		got := clipField(s, limit)
		if len(got) > limit {
			t.Fatalf("clipField(%d bytes, %d) = %d bytes", len(s), limit, len(got))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("clipField(%q, %d) = %q is not UTF-8", s, limit, got)
		}
		if again := clipField(got, limit); again != got {
			t.Fatalf("clip twice: %q, then %q", got, again)
		}
	})
}
