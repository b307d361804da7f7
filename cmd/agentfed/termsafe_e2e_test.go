//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestCLINeutralisesTerminalEscapes: what a peer sends (an answer, its
// agent's description) reaches the terminal with its escape sequences made
// visible; --json keeps it exact.
func TestCLINeutralisesTerminalEscapes(t *testing.T) {
	const answer = "answer \x1b]0;owned\x07\x1b[2J\u009b7m"
	peer := serve(t, "--config", writeFile(t, "peer.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: shady}
agents:
  - id: shady-agent
    capabilities: [tricks]
    description: "desc \x1b[2J\x1b]0;title\x07"
    handler: {type: exec, command: ["/bin/sh", "-c", "printf 'answer \\033]0;owned\\007\\033[2J\\302\\2337m'"]}
storage: {dir: %q}
`, t.TempDir())))
	main := serve(t, "--config", writeFile(t, "main.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: main
  peers: [{id: shady, name: "Shady \x1b[31mpeer", url: %q, agentId: shady-agent, capabilities: [tricks]}]
storage: {dir: %q}
`, peer.URL, t.TempDir())))

	for _, args := range [][]string{{"send", "shady", "hi"}, {"caps", "shady"}, {"peers"}} {
		out, errOut, code := agentfed(t, "", append(args, "--gateway", main.URL)...)
		if code != 0 {
			t.Fatalf("agentfed %v: exit %d\n%s%s", args, code, out, errOut)
		}
		if strings.ContainsAny(out, "\x1b\x07\u009b") {
			t.Errorf("agentfed %v printed terminal controls: %q", args, out)
		}
		if !strings.Contains(out, `\x1b`) {
			t.Errorf("agentfed %v does not show the escapes it neutralised: %q", args, out)
		}
	}
	out, _, code := agentfed(t, "", "send", "shady", "hi", "--json", "--gateway", main.URL)
	var r struct{ Response struct{ Content string } }
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Response.Content != answer {
		t.Errorf("--json: exit %d, %v, content %q; want the answer exactly", code, err, r.Response.Content)
	}
}
