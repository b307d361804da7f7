package openclaw_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/agent"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// remoteClientIP is the address OpenClaw believes remote clients connect
// from: a documentation address (RFC 5737) that nothing ever dials.
const remoteClientIP = "203.0.113.7"

// remoteOpenClaw returns a ws:// address on loopback through which the
// OpenClaw gateway sees a remote client: a reverse proxy, trusted by
// OpenClaw's config (gateway.trustedProxies), that forwards each
// connection with X-Forwarded-For: remoteClientIP. This is how a gateway
// behind nginx sees clients on other hosts, and OpenClaw treats them as
// remote: no loopback trust, pairing required.
func remoteOpenClaw(t *testing.T, o *openClaw) string {
	t.Helper()
	target, err := url.Parse("http" + strings.TrimPrefix(o.url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Header.Set("X-Forwarded-For", remoteClientIP)
	}})
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// openclawCLI runs `openclaw ARGS --url URL --token TOKEN --json` against
// the test's OpenClaw gateway, with a home of its own.
func openclawCLI(t *testing.T, o *openClaw, args ...string) (string, int) {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.tools.node, append(append([]string{o.tools.openclaw}, args...), "--url", o.url, "--token", o.token, "--json")...)
	cmd.Env = append(os.Environ(), "HOME="+home, "OPENCLAW_HOME="+home, "OPENCLAW_STATE_DIR="+home, "TMPDIR="+home)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Fatalf("openclaw %v: %v", args, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

var approveRE = regexp.MustCompile("openclaw devices approve ([A-Za-z0-9][A-Za-z0-9._:-]*)`")

// TestOpenClawDevicePairing: a remote OpenClaw gateway grants an operator
// client its scopes only for a device identity its owner approved. The
// openclaw agent kind proves the device key it keeps in storage.dir
// (generated once, mode 0600); its first message fails with OpenClaw's
// NOT_PAIRED and the log gives the approve command; after
// `openclaw devices approve <requestId>` with OpenClaw's own CLI, the
// OpenClaw agent answers.
func TestOpenClawDevicePairing(t *testing.T) {
	o := oc.get(t)
	remote := remoteOpenClaw(t, o)

	// Without a device identity, the remote client gets no scope at all.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := gateway.Dial(ctx, remote, &gateway.DialOptions{Token: o.token, Scopes: []string{"operator.write"}})
	if err != nil {
		t.Fatalf("dial OpenClaw as a remote client: %v", err)
	}
	if got := c.Hello().Auth.Scopes; len(got) != 0 {
		t.Errorf("a device-less remote operator was granted %v; want no scope (OpenClaw clears them)", got)
	}
	c.Close()

	storage := t.TempDir()
	claw := serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation: {enabled: true, serverId: claw-remote}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
agents:
  - {id: claw, handler: {type: openclaw, url: %q, token: "${OPENCLAW_TOKEN}", agentId: main}}
storage: {dir: %q}
`, remote, storage), "OP_TOKEN="+opToken, "OPENCLAW_TOKEN="+o.token)
	main := serve(t, "127.0.0.1:0", fmt.Sprintf(`
federation:
  enabled: true
  serverId: main-remote
  peers:
    - {id: claw, name: Remote OpenClaw, url: %q, agentId: claw, timeoutMs: 60000}
gateway:
  auth: {operatorToken: "${OP_TOKEN}"}
storage: {dir: %q}
`, claw.URL, t.TempDir()), "OP_TOKEN="+opToken)

	keyFile := filepath.Join(storage, agent.OpenClawDeviceFile)
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("agentfed serve did not create its OpenClaw device key: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o; want 0600", keyFile, fi.Mode().Perm())
	}
	device, err := agent.LoadOpenClawDevice(storage)
	if err != nil {
		t.Fatal(err)
	}

	var got sendResult
	agentfedJSON(t, &got, "send", "claw", "[[answer]] before pairing", "--gateway", main.URL, "--timeout-ms", "30000")
	if got.Status != "error" || got.Error == nil || got.Error.Code != "AGENT_ERROR" {
		t.Fatalf("send before pairing = %+v (error %+v); want AGENT_ERROR", got, got.Error)
	}
	// The claw gateway logs the refusal as it answers: its line may reach
	// the pipe from its process a moment after the answer reached us.
	var m []string
	tstest.WaitFor(t, 10*time.Second, func() error {
		logs := claw.Logs.String()
		if m = approveRE.FindStringSubmatch(logs); m == nil || !strings.Contains(logs, "NOT_PAIRED") || !strings.Contains(logs, device.ID()) {
			return fmt.Errorf("the claw gateway's log does not say to approve device %s:\n%s", device.ID(), logs)
		}
		return nil
	})
	requestID := m[1]
	for _, line := range strings.Split(claw.Logs.String(), "\n") {
		if strings.Contains(line, "NOT_PAIRED") {
			t.Logf("before pairing, the claw gateway logs: %s", line)
			break
		}
	}

	list, code := openclawCLI(t, o, "devices", "list")
	if code != 0 || !strings.Contains(list, requestID) || !strings.Contains(list, device.ID()) {
		t.Fatalf("openclaw devices list: exit %d; want pending request %s for device %s:\n%s", code, requestID, device.ID(), list)
	}
	if out, code := openclawCLI(t, o, "devices", "approve", requestID); code != 0 {
		t.Fatalf("openclaw devices approve %s: exit %d:\n%s", requestID, code, out)
	}

	got = sendResult{}
	code = agentfedJSON(t, &got, "send", "claw", "[[answer]] after pairing", "--gateway", main.URL, "--timeout-ms", "60000")
	if code != 0 || got.Status != "ok" || got.Response == nil || got.Response.Content != scriptedAnswer {
		t.Fatalf("send after pairing: exit %d, result %+v (error %+v); want the scripted answer", code, got, got.Error)
	}
}
