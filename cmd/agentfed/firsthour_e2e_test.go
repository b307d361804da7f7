package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWaitForStartingGateway: with --wait a client command started as its
// gateway starts (the Quick start pastes them together) connects once the
// gateway listens; nothing listening fails after the wait with exit 1.
func TestWaitForStartingGateway(t *testing.T) {
	t.Run("gateway started just before", func(t *testing.T) {
		addr := freeAddr(t)
		srv := exec.Command(bin, "serve", "--listen", addr)
		srv.Dir = t.TempDir()
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		// Run where serve runs, as in the Quick start: the CLI finds the
		// operator token serve generates in ./agentfed-data.
		out, errOut, code := agentfedIn(t, srv.Dir, "", "peers", "--gateway", "ws://"+addr, "--wait", "20s")
		if code != 0 || !strings.Contains(out, "0 peers") {
			t.Fatalf("peers --wait right after serve started: exit %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("gateway started after", func(t *testing.T) {
		addr := freeAddr(t)
		dir := t.TempDir()
		cli := exec.Command(bin, "peers", "--gateway", "ws://"+addr, "--wait", "20s")
		cli.Dir = dir // the token serve has yet to generate is read once it exists
		var out, errOut bytes.Buffer
		cli.Stdout, cli.Stderr = &out, &errOut
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Process.Kill() })
		serveIn(t, dir, "--listen", addr)
		if err := cli.Wait(); err != nil || !strings.Contains(out.String(), "0 peers") {
			t.Fatalf("peers --wait started before serve: %v\n%s%s", err, &out, &errOut)
		}
	})
	t.Run("connections reset while it restarts", func(t *testing.T) {
		// A gateway going down resets the connections it had accepted;
		// --wait rides that out as it does a refused connection.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		dir := t.TempDir()
		cli := exec.Command(bin, "peers", "--gateway", "ws://"+addr, "--wait", "20s")
		cli.Dir = dir
		var out, errOut bytes.Buffer
		cli.Stdout, cli.Stderr = &out, &errOut
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Process.Kill() })
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).SetLinger(0) // close with a reset
			c.Close()
		}
		ln.Close()
		serveIn(t, dir, "--listen", addr)
		if err := cli.Wait(); err != nil || !strings.Contains(out.String(), "0 peers") {
			t.Fatalf("peers --wait through reset connections: %v\n%s%s", err, &out, &errOut)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		start := time.Now()
		_, errOut, code := agentfed(t, "", "peers", "--gateway", "ws://"+freeAddr(t), "--wait", "300ms")
		if code != 1 || !strings.Contains(errOut, "--wait 300ms") || time.Since(start) < 300*time.Millisecond {
			t.Fatalf("--wait with nothing listening: exit %d after %v, %q; want exit 1 after the wait", code, time.Since(start), errOut)
		}
		_, errOut, code = agentfed(t, "", "peers", "--gateway", "ws://"+freeAddr(t))
		if code != 1 || !strings.Contains(errOut, "--wait") {
			t.Fatalf("unreachable gateway without --wait: exit %d %q; want a hint about --wait", code, errOut)
		}
	})
}

// TestJSONErrors: with --json, and always for tool, a failure still prints
// JSON on stdout, {"error": {"code", "message"}}, with the documented exit
// code.
func TestJSONErrors(t *testing.T) {
	s := serve(t)
	down := "ws://" + freeAddr(t)
	for _, tt := range []struct {
		name     string
		args     []string
		exit     int
		code     string
		mentions string
	}{
		{"tool, not JSON", []string{"tool", "--gateway", s.URL, "{not json"}, 2, "INVALID_PARAMS", "JSON object"},
		{"tool, unknown peer", []string{"tool", "--gateway", s.URL, `{"action":"send","peerId":"nobody","message":"x"}`}, 1, "UNKNOWN_PEER", `"nobody"`},
		{"tool, no message", []string{"tool", "--gateway", s.URL, `{"action":"broadcast"}`}, 1, "INVALID_PARAMS", "message is required"},
		{"tool, unreachable", []string{"tool", "--gateway", down, `{"action":"list_peers"}`}, 1, "GATEWAY_UNREACHABLE", "cannot reach"},
		{"tool, bad --gateway", []string{"tool", "--gateway", "127.0.0.1:1", `{"action":"list_peers"}`}, 2, "USAGE", "ws://127.0.0.1:1"},
		{"send, unknown peer", []string{"send", "--json", "--gateway", s.URL, "nobody", "hi"}, 1, "UNKNOWN_PEER", `"nobody"`},
		{"broadcast, bad priority", []string{"broadcast", "--json", "--gateway", s.URL, "hi", "--priority", "asap"}, 1, "INVALID_PARAMS", `--priority "asap"`},
		{"peers, unreachable", []string{"peers", "--json", "--gateway", down}, 1, "GATEWAY_UNREACHABLE", down},
		{"send, missing argument", []string{"send", "--json", "only-peer"}, 2, "USAGE", "missing MESSAGE"},
		{"send, unknown flag after --json", []string{"send", "--json", "--frobnicate", "a", "b"}, 2, "USAGE", "frobnicate"},
		{"status, unknown message", []string{"status", "--json", "--gateway", s.URL, "no-such-id"}, 1, "UNKNOWN_MESSAGE", "no-such-id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := agentfed(t, "", tt.args...)
			var got struct {
				Error *struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil || got.Error == nil {
				t.Fatalf("stdout is not a JSON error (exit %d): %q, stderr %q", code, out, errOut)
			}
			if code != tt.exit || got.Error.Code != tt.code || !strings.Contains(got.Error.Message, tt.mentions) {
				t.Fatalf("exit %d, error %+v; want exit %d, code %s, a message mentioning %s", code, *got.Error, tt.exit, tt.code, tt.mentions)
			}
		})
	}
	// Without --json, stdout stays empty on failure: people read stderr.
	if out, _, code := agentfed(t, "", "send", "--gateway", s.URL, "nobody", "hi"); code != 1 || out != "" {
		t.Fatalf("send to an unknown peer without --json: exit %d, stdout %q", code, out)
	}
}

// TestEmptyMessageRefused: send and broadcast without a message, and
// delegate without a task, are refused naming what is missing, and so is a
// ttl on a message that is not durable.
func TestEmptyMessageRefused(t *testing.T) {
	s := serve(t)
	for _, tt := range []struct {
		args     []string
		exit     int
		mentions string
	}{
		{[]string{"send", "--gateway", s.URL, "echo", ""}, 2, "MESSAGE is empty"},
		{[]string{"broadcast", "--gateway", s.URL, ""}, 2, "MESSAGE is empty"},
		{[]string{"delegate", "--gateway", s.URL, "--capability", "echo", ""}, 2, "TASK is empty"},
		{[]string{"send", "--gateway", s.URL, "echo", "hi", "--ttl-ms", "1000"}, 2, "--durable"},
		{[]string{"tool", "--gateway", s.URL, `{"action":"delegate","requiredCapabilities":["echo"]}`}, 1, "task is required"},
		{[]string{"tool", "--gateway", s.URL, `{"action":"broadcast","message":""}`}, 1, "message is required"},
	} {
		_, errOut, code := agentfed(t, "", tt.args...)
		if code != tt.exit || !strings.Contains(errOut, tt.mentions) {
			t.Errorf("%v: exit %d %q; want exit %d mentioning %q", tt.args, code, errOut, tt.exit, tt.mentions)
		}
	}
}

// TestRegisterUnderRequireAuth: the README's register example works under
// the Quick start's requireAuth: true, and leaving out the token is an
// error that names the flag the user can add.
func TestRegisterUnderRequireAuth(t *testing.T) {
	data := peerServer(t, "data-server", "agent-data-01", "data-analysis", "data-secret")
	main := serve(t, "--config", writeFile(t, "main.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: main-agent-server
  requireAuth: true
  allowDynamicPeers: true
storage:
  dir: %q
`, t.TempDir())))
	args := []string{"register", "--gateway", main.URL, "--peer-id", "temp-agent-01", "--peer-name", "Temporary Analysis Agent",
		"--peer-url", data.URL, "--peer-agent-id", "agent-data-01", "--peer-capabilities", "analysis,reporting"}
	_, errOut, code := agentfed(t, "", args...)
	if code != 1 || !strings.Contains(errOut, "--peer-token") || strings.Contains(errOut, "peerToken") {
		t.Fatalf("register without --peer-token under requireAuth: exit %d %q; want exit 1 naming --peer-token", code, errOut)
	}
	if out, errOut, code := agentfed(t, "", append(args, "--peer-token", "data-secret")...); code != 0 {
		t.Fatalf("register with --peer-token: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := agentfed(t, "", "send", "--gateway", main.URL, "temp-agent-01", "hello")
	if code != 0 || !strings.Contains(out, "temp-agent-01 answered") {
		t.Fatalf("send to the registered peer: exit %d\n%s%s", code, out, errOut)
	}
}

// TestServeReadsAgentfedYAML: serve without --config uses ./agentfed.yaml
// when there is one, and says so; init says how to start it; the start
// log gives storage.dir's absolute path.
func TestServeReadsAgentfedYAML(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := agentfedIn(t, dir, "", "init")
	if code != 0 || !strings.Contains(out, "agentfed serve ") {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	cfg := "federation: {enabled: true, serverId: from-agentfed-yaml}\nstorage: {dir: ./state}\n"
	if err := os.WriteFile(filepath.Join(dir, "agentfed.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := serveIn(t, dir)
	s.Stop(t, syscall.SIGKILL) // its logs are complete once it has exited
	logs := s.Logs.String()
	for _, want := range []string{"using agentfed.yaml", "serverId=from-agentfed-yaml", "storageDir=" + filepath.Join(dir, "state")} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve in a directory with agentfed.yaml: log lacks %q:\n%s", want, logs)
		}
	}
	// --config '' still means the built-in defaults.
	d := serveIn(t, dir, "--config", "")
	d.Stop(t, syscall.SIGKILL)
	if logs := d.Logs.String(); strings.Contains(logs, "from-agentfed-yaml") || !strings.Contains(logs, "storageDir="+filepath.Join(dir, "agentfed-data")) {
		t.Errorf("serve --config '': want the defaults, got:\n%s", logs)
	}
}

// TestGatewayURLMistakes: a --gateway without a scheme is a usage error
// with the URL to use; TLS mismatches and an untrusted certificate say
// what to change.
func TestGatewayURLMistakes(t *testing.T) {
	caFile, certFile, keyFile := writeTLSFiles(t)
	tlsGW := serve(t, "--config", writeFile(t, "tls.yaml", fmt.Sprintf(`
federation: {enabled: true}
gateway: {tls: {certFile: %q, keyFile: %q}}
storage: {dir: %q}
`, certFile, keyFile, t.TempDir())))
	plain := serve(t)
	tlsHost := strings.TrimPrefix(tlsGW.URL, "ws://")
	plainHost := strings.TrimPrefix(plain.URL, "ws://")
	for _, tt := range []struct {
		name     string
		args     []string
		exit     int
		mentions []string
	}{
		{"no scheme", []string{"peers", "--gateway", plainHost}, 2, []string{"ws://" + plainHost, "agentfed peers --help"}},
		{"http scheme", []string{"peers", "--gateway", "http://" + plainHost}, 2, []string{"ws://" + plainHost}},
		{"untrusted certificate", []string{"peers", "--gateway", "wss://" + tlsHost}, 1, []string{"--ca-file"}},
		{"ws to a TLS gateway", []string{"peers", "--gateway", tlsGW.URL}, 1, []string{"serves TLS", "wss://" + tlsHost}},
		{"wss to a plain gateway", []string{"peers", "--gateway", "wss://" + plainHost}, 1, []string{"does not serve TLS", plain.URL}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := agentfed(t, "", tt.args...)
			if code != tt.exit {
				t.Fatalf("exit %d %q; want %d", code, errOut, tt.exit)
			}
			for _, want := range tt.mentions {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q does not mention %q", errOut, want)
				}
			}
		})
	}
	if out, errOut, code := agentfed(t, "", "peers", "--gateway", "wss://"+tlsHost, "--ca-file", caFile); code != 0 {
		t.Fatalf("peers with --ca-file: exit %d\n%s%s", code, out, errOut)
	}
}

// TestErrorTextReadsOnce: a gateway's error is printed once with its code,
// its hint names the CLI command, usage errors point at the subcommand's
// help, and both ways of asking for the version agree.
func TestErrorTextReadsOnce(t *testing.T) {
	s := serve(t)
	_, errOut, code := agentfed(t, "", "send", "--gateway", s.URL, "nobody", "hi")
	want := "agentfed: UNKNOWN_PEER: no peer named \"nobody\"; see the peers with list_peers (`agentfed peers`)\n"
	if code != 1 || errOut != want {
		t.Fatalf("send to an unknown peer: exit %d\n got %q\nwant %q", code, errOut, want)
	}
	_, errOut, code = agentfed(t, "", "send", "only-peer")
	if code != 2 || !strings.Contains(errOut, "Run 'agentfed send --help' for usage.") {
		t.Fatalf("send with one argument: exit %d %q; want a pointer to 'agentfed send --help'", code, errOut)
	}
	v1, _, _ := agentfed(t, "", "version")
	v2, _, _ := agentfed(t, "", "--version")
	if v1 == "" || v1 != v2 {
		t.Fatalf("version %q and --version %q disagree", v1, v2)
	}
	if out, errOut, code := agentfed(t, "", "gateway", "--help"); code != 0 || !strings.Contains(out, "Run a gateway") {
		t.Fatalf("agentfed gateway (serve's alias) --help: exit %d\n%s%s", code, out, errOut)
	}
}
