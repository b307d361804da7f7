package federation_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// a2aJS runs testdata/a2a_js_client.mjs with the @a2a-js/sdk that .ci/run
// installs under $AGENTFED_A2A_JS (its node_modules' parent). Without it
// the test is skipped, except under CI=true.
func a2aJS(t *testing.T, args ...string) (string, error) {
	t.Helper()
	dir := os.Getenv("AGENTFED_A2A_JS")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("AGENTFED_A2A_JS is unset; .ci/run installs @a2a-js/sdk@1.3.0 and sets it")
		}
		t.Skip("AGENTFED_A2A_JS is unset (the @a2a-js/sdk install of .ci/run)")
	}
	script, err := filepath.Abs("testdata/a2a_js_client.mjs")
	if err != nil {
		t.Fatal(err)
	}
	// Node resolves the SDK from the script's directory upwards: run a
	// copy placed beside node_modules.
	run := filepath.Join(t.TempDir(), "client.mjs")
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(run, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(filepath.Dir(run), "node_modules")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cmpOr(os.Getenv("AGENTFED_A2A_NODE"), "node"), append([]string{run}, args...)...).CombinedOutput()
	return string(out), err
}

func TestA2AServeJSClient(t *testing.T) {
	g := a2aGateway(t)
	base := "http://" + g.Addr().String() + "/a2a/echo/" // JS resolves the card path relative to it
	for _, tr := range []string{"JSONRPC", "HTTP+JSON"} {
		t.Run(tr, func(t *testing.T) {
			out, err := a2aJS(t, base, "good-token", tr, "send", "from js over "+tr)
			if err != nil || !strings.Contains(out, "from js over "+tr) || !strings.Contains(out, "completed") && !strings.Contains(out, `"state":3`) {
				t.Fatalf("js client over %s: %v\n%s", tr, err, out)
			}
		})
	}
	t.Run("legacyCompat 0.3", func(t *testing.T) {
		out, err := a2aJS(t, base+"v0.3/", "good-token", "JSONRPC", "send", "from a 0.3 client", "legacy")
		if err != nil || !strings.Contains(out, "from a 0.3 client") {
			t.Fatalf("js legacyCompat client: %v\n%s", err, out)
		}
	})
	t.Run("stream in order", func(t *testing.T) {
		out, err := a2aJS(t, base, "good-token", "JSONRPC", "stream", "streamed from js")
		if err != nil {
			t.Fatalf("js stream: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := []string{`"state":1`, `"state":2`, `"state":3`} // submitted, working, completed
		if len(lines) != len(want) || !strings.Contains(lines[2], "streamed from js") {
			t.Fatalf("stream events:\n%s\nwant submitted, working, then the completed answer", out)
		}
		for i, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Fatalf("event %d is %s; want %s", i, lines[i], w)
			}
		}
	})
	t.Run("bad token", func(t *testing.T) {
		out, err := a2aJS(t, base, "wrong", "JSONRPC", "send", "x")
		if err == nil || !strings.Contains(out, "ERROR") {
			t.Fatalf("js client with a bad token: %v\n%s", err, out)
		}
	})
}
