package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/internal/tstest"
)

// TestNATSExampleCluster runs examples/nats as docs/NATS.md says: three
// `agentfed serve` processes whose embedded nats-servers form one cluster
// with JetStream. Each finds the other two's agents, a send crosses NATS
// and a durable one is queued. The example's fixed ports are swapped for
// free ones, so that runs do not collide.
func TestNATSExampleCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server NATS cluster")
	}
	ports := map[string]string{}
	for i := 1; i <= 3; i++ {
		for _, base := range []string{"1879", "422", "622"} {
			ports[base+strconv.Itoa(i)] = freePort(t)
		}
	}
	dir := t.TempDir()
	var gws []*tstest.Gateway
	for i := 1; i <= 3; i++ {
		name := "site-" + strconv.Itoa(i) + ".yaml"
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "nats", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg := string(b)
		for example, port := range ports {
			cfg = strings.ReplaceAll(cfg, "127.0.0.1:"+example+`"`, "127.0.0.1:"+port+`"`)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		// All three start before any is waited for: the cluster forms
		// only when its members are up.
		gws = append(gws, tstest.Start(t, bin, dir, nil, "--config", path))
	}
	for _, g := range gws {
		g.WaitListening(t)
	}
	cfg1 := filepath.Join(dir, "site-1.yaml")
	out, errOut, code := agentfedIn(t, dir, "", "peers", "--gateway", gws[0].URL, "--config", cfg1)
	if code != 0 || !strings.Contains(out, "worker@site-2") || !strings.Contains(out, "worker@site-3") {
		t.Fatalf("peers of site-1: exit %d\n%s%s; want worker@site-2 and worker@site-3", code, out, errOut)
	}
	out, errOut, code = agentfedIn(t, dir, "", "send", "worker@site-2", "hello over nats", "--gateway", gws[0].URL, "--config", cfg1)
	if code != 0 || !strings.Contains(out, "hello over nats") {
		t.Fatalf("send across NATS: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = agentfedIn(t, dir, "", "send", "worker@site-3", "durable hello", "--durable", "--gateway", gws[0].URL, "--config", cfg1)
	if code != 0 || !strings.Contains(out, "queued") {
		t.Fatalf("durable send across NATS: exit %d\n%s%s", code, out, errOut)
	}
}

// freePort returns a loopback TCP port nothing listens on just now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
