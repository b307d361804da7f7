package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// `agentfed nats permissions` prints a block an external nats-server
// loads as it is (with each user's password added), and that server then
// holds the grants: site-b may not publish to the agent its grant
// excludes, nor subscribe to the hub's subjects.
func TestNATSPermissionsCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agentfed.yaml")
	cfg := `federation: {enabled: true, serverId: hub, transport: nats}
nats: {url: "nats://127.0.0.1:4222"}
gateway:
  auth:
    peers:
      - {serverId: site-b, token: tb, allowAgents: [public]}
agents:
  - {id: public, capabilities: [search], handler: {type: echo}}
  - {id: secret, capabilities: [vault], handler: {type: echo}}
storage: {dir: ` + filepath.Join(dir, "data") + "}\n"
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"nats", "permissions", "--config", file}, strings.NewReader(""), &out, &errOut); code != exitOK {
		t.Fatalf("agentfed nats permissions exited %d: %s", code, errOut.String())
	}
	var conf struct {
		Authorization struct {
			Users []map[string]any `json:"users"`
		} `json:"authorization"`
	}
	if err := json.Unmarshal(out.Bytes(), &conf); err != nil || len(conf.Authorization.Users) != 1 {
		t.Fatalf("output %s: %v; want one user", out.String(), err)
	}
	conf.Authorization.Users[0]["password"] = "pw"
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(conf); err != nil {
		t.Fatal(err)
	}
	natsConf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(natsConf, []byte(`listen: "127.0.0.1:-1"`+"\n"+strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(raw.String()), "{"), "}")), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(natsConf)
	if err != nil {
		t.Fatalf("nats-server does not load the printed block: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}

	errs := make(chan error, 16)
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("site-b", "pw"), nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.QueueSubscribeSync("af.agent.hub.>", "af.gw.hub")
	if err == nil {
		_, err = sub.NextMsg(2 * time.Second)
	}
	if err == nil || !strings.Contains(err.Error(), "ermissions") {
		t.Errorf("site-b joining the hub's queue group: %v; want a permissions violation", err)
	}
	for _, subject := range []string{"af.agent.hub.public.site-b", "af.agent.hub.secret.site-b"} {
		if err := nc.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var denied []string
	quiet := time.After(time.Second) // every refusal has come by then
	for waiting := true; waiting; {
		select {
		case err := <-errs:
			denied = append(denied, err.Error())
		case <-quiet:
			waiting = false
		}
	}
	got := strings.Join(denied, "\n")
	if !strings.Contains(got, `Publish to "af.agent.hub.secret.site-b"`) || strings.Contains(got, `Publish to "af.agent.hub.public.site-b"`) {
		t.Errorf("publish refusals:\n%s\nwant only the agent site-b is not granted (secret)", got)
	}
}
