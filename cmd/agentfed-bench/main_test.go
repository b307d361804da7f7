package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runBench(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestPlot: --plot writes a readable PNG next to the report, and a plot
// that cannot be written fails the command with a message naming the flag.
func TestPlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.png")
	if _, errOut, code := runBench(t, "--only", "raw-ws-rtt", "--duration", "20ms", "--plot", path); code != 0 {
		t.Fatalf("--plot: exit %d: %s", code, errOut)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o644 {
		t.Errorf("plot mode %v, want 0644", fi.Mode().Perm())
	}
	missing := filepath.Join(t.TempDir(), "no-such-dir", "bench.png")
	_, errOut, code := runBench(t, "--only", "raw-ws-rtt", "--duration", "20ms", "--plot", missing)
	if code != 1 || !strings.Contains(errOut, "--plot") {
		t.Errorf("--plot into a missing directory: exit %d, stderr %q; want exit 1 naming --plot", code, errOut)
	}
}

// TestJSONReport: --json prints the report as one JSON object with the
// measurement asked for.
func TestJSONReport(t *testing.T) {
	out, errOut, code := runBench(t, "--only", "raw-ws-rtt", "--duration", "20ms", "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if !strings.Contains(out, "raw-ws-rtt") {
		t.Errorf("--json report does not mention raw-ws-rtt:\n%s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--concurrency", "0"}, "--concurrency"},
		{[]string{"--only", "bogus"}, "--only"},
		{[]string{"--nope"}, "nope"},
		{[]string{"extra"}, "extra"},
	} {
		_, errOut, code := runBench(t, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %s", tt.args, code, errOut, tt.want)
		}
	}
}
