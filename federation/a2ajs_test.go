package federation_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// a2aJSScript copies testdata/NAME beside a node_modules link to the
// @a2a-js/sdk install that .ci/run makes under $AGENTFED_A2A_JS, and
// returns the copy's path and the node to run it with. Without the
// install the test is skipped, except under CI=true.
func a2aJSScript(t *testing.T, name string) (node, script string) {
	t.Helper()
	dir := os.Getenv("AGENTFED_A2A_JS")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("AGENTFED_A2A_JS is unset; .ci/run installs @a2a-js/sdk@1.3.0 and sets it")
		}
		t.Skip("AGENTFED_A2A_JS is unset (the @a2a-js/sdk install of .ci/run)")
	}
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	script = filepath.Join(tmp, name)
	if err := os.WriteFile(script, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(tmp, "node_modules")); err != nil {
		t.Fatal(err)
	}
	return cmpOr(os.Getenv("AGENTFED_A2A_NODE"), "node"), script
}

// a2aJS runs testdata/a2a_js_client.mjs with args and returns its output.
func a2aJS(t *testing.T, args ...string) (string, error) {
	t.Helper()
	node, script := a2aJSScript(t, "a2a_js_client.mjs")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, append([]string{script}, args...)...).CombinedOutput()
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
	for _, tr := range []string{"JSONRPC", "HTTP+JSON"} {
		t.Run("legacyCompat 0.3 "+tr, func(t *testing.T) {
			out, err := a2aJS(t, base+"v0.3/", "good-token", tr, "send", "from a 0.3 client over "+tr, "legacy")
			if err != nil || !strings.Contains(out, "from a 0.3 client over "+tr) {
				t.Fatalf("js legacyCompat client over %s: %v\n%s", tr, err, out)
			}
		})
	}
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

// startJSAgent runs testdata/a2a_js_server.mjs, an echo agent of the JS
// SDK listing only transport, until the test ends, and returns its URL.
func startJSAgent(t *testing.T, token, transport string) string {
	t.Helper()
	node, script := a2aJSScript(t, "a2a_js_server.mjs")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, script, token, transport)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTENING ")
	if err != nil || !ok {
		t.Fatalf("js agent did not start: %q, %v", line, err)
	}
	return "http://127.0.0.1:" + port
}

func TestA2APeerJSAgent(t *testing.T) {
	for _, tr := range []string{"JSONRPC", "HTTP+JSON"} {
		t.Run(tr, func(t *testing.T) {
			u := startJSAgent(t, "js-token", tr)
			cfg := newConfig(t, "a", "")
			cfg.Federation.Peers = []federation.PeerConfig{{ID: "js", Name: "js agent", Type: federation.PeerTypeA2A,
				URL: u, Token: "js-token", AgentID: "js-echo", Capabilities: []string{"echo"}}}
			op := operator(t, start(t, cfg, listen(t), nil), "")
			r := mustTool(t, op, `{"action":"send","peerId":"js","message":"hello js"}`)
			if r["status"] != "ok" || at(r, "response", "content") != "js echo: hello js" {
				t.Fatalf("send to the JS agent over %s: %v", tr, r)
			}
			r = mustTool(t, op, `{"action":"delegate","requiredCapabilities":["echo"],"task":"delegated to js"}`)
			if r["status"] != "ok" || at(r, "response", "content") != "js echo: delegated to js" {
				t.Fatalf("delegate to the JS agent over %s: %v", tr, r)
			}
		})
	}
}
