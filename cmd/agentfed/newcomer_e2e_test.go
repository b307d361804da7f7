package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestArgumentErrorsNameTheArgument: a wrong number of arguments is a
// usage error (exit 2) that names the missing argument, or the one too
// many, and what the command takes; with --json it is also JSON on stdout.
func TestArgumentErrorsNameTheArgument(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"send, no message", []string{"send", "research-agent"}, "missing MESSAGE (send takes PEER_ID MESSAGE)"},
		{"send, nothing", []string{"send"}, "missing PEER_ID and MESSAGE (send takes PEER_ID MESSAGE)"},
		{"send, unquoted text", []string{"send", "research-agent", "hello", "world"}, `unexpected argument "world" (send takes PEER_ID MESSAGE; quote an argument that has spaces)`},
		{"delegate, no task", []string{"delegate", "--capability", "x"}, "missing TASK (delegate takes TASK)"},
		{"outbox retry", []string{"outbox", "retry"}, "missing MESSAGE_ID (outbox retry takes MESSAGE_ID)"},
		{"config check", []string{"config", "check"}, "missing FILE (config check takes FILE)"},
		{"peers, an argument", []string{"peers", "research-agent"}, `unexpected argument "research-agent" (peers takes no arguments)`},
		{"init, two files", []string{"init", "a.yaml", "b.yaml"}, `unexpected argument "b.yaml" (init takes FILE`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := agentfed(t, "", tt.args...)
			if code != exitUsage || !strings.Contains(errOut, "agentfed: "+tt.want) || !strings.Contains(errOut, "--help' for usage") {
				t.Fatalf("agentfed %q: exit %d\n%s\nwant exit 2 with %q and a pointer to --help", tt.args, code, errOut, tt.want)
			}
		})
	}
	out, _, code := agentfed(t, "", "broadcast", "--json")
	if code != exitUsage || !strings.Contains(out, `{"error":{"code":"USAGE","message":"missing MESSAGE (broadcast takes MESSAGE)"}}`) {
		t.Fatalf("broadcast --json without MESSAGE: exit %d, stdout %q", code, out)
	}
}

// TestToolTakesJSONFlag: tool always prints JSON, and accepts --json as
// every other client command does.
func TestToolTakesJSONFlag(t *testing.T) {
	s := serve(t)
	out, errOut, code := agentfed(t, "", "tool", "--json", "--gateway", s.URL, `{"action":"list_peers"}`)
	if code != 0 || !strings.Contains(out, `"totalPeers"`) {
		t.Fatalf("tool --json: exit %d\n%s%s", code, out, errOut)
	}
}

// TestBadJSONFlagIsNotEchoedWhole: a --context or --data that is not a JSON
// object is refused naming the flag, quoting only the start of the value.
func TestBadJSONFlagIsNotEchoedWhole(t *testing.T) {
	long := "[" + strings.Repeat("1,", 5000) + "1]"
	for _, args := range [][]string{
		{"send", "research-agent", "hi", "--context", long},
		{"sync", "research-agent", "--data", long},
	} {
		_, errOut, code := agentfed(t, "", args...)
		if code != exitUsage || !strings.Contains(errOut, "must be a JSON object") || len(errOut) > 300 {
			t.Fatalf("agentfed %s with a 10 kB array: exit %d, %d bytes on stderr:\n%.400s", args[len(args)-2], code, len(errOut), errOut)
		}
	}
}

// TestOutboxListNamesItsFlags: the gateway's INVALID_PARAMS about a value
// outbox list set names the flag the user typed.
func TestOutboxListNamesItsFlags(t *testing.T) {
	s := serve(t)
	for _, tt := range []struct{ flag, value, want string }{
		{"--limit", "5000", "--limit 5000 is not from 1 to 1000"},
		{"--state", "bogus", `--state "bogus" is not one of`},
	} {
		_, errOut, code := agentfed(t, "", "outbox", "list", "--gateway", s.URL, tt.flag, tt.value)
		if code != 1 || !strings.Contains(errOut, "agentfed: INVALID_PARAMS: "+tt.want) {
			t.Fatalf("outbox list %s %s: exit %d %q; want exit 1 naming %s", tt.flag, tt.value, code, errOut, tt.flag)
		}
	}
}

// TestSalvageRefusesAnExistingFile: like backup, salvage into a file that
// exists is a usage error (exit 2) that says to give a new name.
func TestSalvageRefusesAnExistingFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.db")
	if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := agentfed(t, "", "store", "salvage", "--dir", t.TempDir(), out)
	if b, _ := os.ReadFile(out); code != exitUsage || !strings.Contains(errOut, "give a new file name") || string(b) != "keep me" {
		t.Fatalf("store salvage into an existing file: exit %d %q, file now %q", code, errOut, b)
	}
}

// TestServeListenMistakes: a --listen that is not host:port is a usage
// error naming the flag; an address another program holds says so and how
// to pick another.
func TestServeListenMistakes(t *testing.T) {
	for _, bad := range []string{"18789", "localhost:99999"} {
		_, errOut, code := agentfedIn(t, t.TempDir(), "", "serve", "--listen", bad)
		if code != exitUsage || !strings.Contains(errOut, "agentfed: --listen "+strconv.Quote(bad)+" is not host:port") {
			t.Fatalf("serve --listen %s: exit %d %q; want exit 2 naming --listen", bad, code, errOut)
		}
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, errOut, code := agentfedIn(t, t.TempDir(), "", "serve", "--listen", taken.Addr().String())
	if code != 1 || !strings.Contains(errOut, "address already in use; another program (another agentfed serve?) listens there") ||
		!strings.Contains(errOut, "--listen") {
		t.Fatalf("serve on a taken address: exit %d %q; want exit 1 with a hint", code, errOut)
	}
}

// TestJSONOutputIsNotHTMLEscaped: --json prints the gateway's text as it
// is, not with <, > and & as \u003c, \u003e, \u0026, in results and
// errors alike.
func TestJSONOutputIsNotHTMLEscaped(t *testing.T) {
	s := serve(t)
	out, _, code := agentfed(t, "", "tool", "--gateway", s.URL, `{"action":"delegate","requiredCapabilities":["web-search@>=2.1 <3"],"task":"x"}`)
	if code != 1 || !strings.Contains(out, `"web-search@>=2.1 <3"`) || strings.Contains(out, `\u003c`) {
		t.Fatalf("error with a version constraint: exit %d, stdout %s", code, out)
	}
	out, errOut, code := agentfed(t, "", "register", "--gateway", s.URL, "--peer-id", "p", "--peer-name", "P", "--peer-url", "ws://127.0.0.1:1",
		"--peer-agent-id", "a", "--peer-description", "Tom & Jerry <cartoons>", "--json")
	if code != 0 || !strings.Contains(out, `"description": "Tom & Jerry <cartoons>"`) || !strings.Contains(out, "\n  \"peerId\": \"p\",\n") {
		t.Fatalf("register --json: exit %d, stdout %s%s; want the description as sent, indented by two spaces", code, out, errOut)
	}
}

// TestMissingConfigSaysHowToWriteOne: --config naming a file that does not
// exist is a configuration error (exit 2) that gives the init command.
func TestMissingConfigSaysHowToWriteOne(t *testing.T) {
	for _, args := range [][]string{{"serve", "--config", "gw.yaml"}, {"config", "check", "gw.yaml"}} {
		_, errOut, code := agentfedIn(t, t.TempDir(), "", args...)
		if code != exitUsage || !strings.Contains(errOut, "no such file or directory; write an example there with: agentfed init gw.yaml") {
			t.Fatalf("agentfed %s with no such file: exit %d %q", args[0], code, errOut)
		}
	}
}

// TestCountsReadAsEnglish: "1 peer", "1 agent", not "1 peers".
func TestCountsReadAsEnglish(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "one.yaml")
	os.WriteFile(cfg, []byte(`federation:
  enabled: true
  peers:
    - {id: p, name: P, url: "ws://127.0.0.1:1", agentId: a}
agents:
  - {id: echo, handler: {type: echo}}
`), 0o600)
	out, errOut, code := agentfed(t, "", "config", "check", cfg)
	if code != 0 || !strings.Contains(out, ", 1 peer, 1 agent,") {
		t.Fatalf("config check: exit %d %s%s; want \"1 peer, 1 agent\"", code, out, errOut)
	}
	s := serve(t, "--config", cfg)
	if out, errOut, code := agentfed(t, "", "peers", "--gateway", s.URL); code != 0 || !strings.Contains(out, ": 1 peer\n") {
		t.Fatalf("peers: exit %d %s%s; want \": 1 peer\"", code, out, errOut)
	}
}
