package federation

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
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
