package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/agentfed/agentfed/internal/tstest/fedtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// npmTool returns the path in the environment variable env of a client
// installed from npm by .ci/run. Without it the test is skipped, except
// under CI=true, where it fails: CI must run these.
func npmTool(t *testing.T, env string) string {
	t.Helper()
	path := os.Getenv(env)
	switch {
	case path == "" && os.Getenv("CI") == "true":
		t.Fatalf("%s is not set; .ci/run installs the MCP clients from npm and sets it", env)
	case path == "":
		t.Skipf("%s is not set: install the MCP clients from npm as .ci/run does to run this test", env)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return path
}

// mcpFederation starts a peer gateway with an echo agent and a main gateway
// that has it as peer-b, and returns the main one.
func mcpFederation(t *testing.T) *server {
	t.Helper()
	peer := peerServer(t, "gw-b", "echo-b", "echo", "b-secret")
	t.Setenv("B_TOKEN", "b-secret")
	t.Setenv("AGENTFED_TOKEN", "op-secret")
	return serve(t, "--config", writeFile(t, "main.yaml", fmt.Sprintf(`
federation:
  enabled: true
  serverId: main-agent-server
  defaultTimeoutMs: 5000
  peers:
    - {id: peer-b, name: B, url: %q, token: "${B_TOKEN}", agentId: echo-b, capabilities: [echo]}
gateway:
  auth: {operatorToken: "${AGENTFED_TOKEN}"}
storage: {dir: %q}
`, peer.URL, t.TempDir())))
}

// inspect runs the MCP inspector's CLI against target and decodes what it
// prints.
func inspect(t *testing.T, inspector string, target []string, method ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(append([]string{"--cli"}, target...), method...)
	out, err := exec.CommandContext(ctx, inspector, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mcp-inspector %v: %v\n%s", args, err, out)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("mcp-inspector %v printed no JSON object: %v\n%s", args, err, out)
	}
	return v
}

// checkInspector lists and calls the tool through the inspector: a send
// that reaches the peer's echo agent, and a bad action that is an error.
func checkInspector(t *testing.T, inspector string, target []string) {
	tools := inspect(t, inspector, target, "--method", "tools/list")
	if name := tstest.At(tools, "tools", 0, "name"); name != federation.ToolName {
		t.Fatalf("tools/list: first tool %v, want %s: %v", name, federation.ToolName, tools)
	}
	if enum := tstest.At(tools, "tools", 0, "inputSchema", "properties", "action", "enum"); len(enum.([]any)) != len(federation.Actions) {
		t.Errorf("tools/list: action enum %v, want the %d actions of agentfed schema", enum, len(federation.Actions))
	}
	call := []string{"--method", "tools/call", "--tool-name", federation.ToolName}
	sent := inspect(t, inspector, target, append(call, "--tool-arg", "action=send", "--tool-arg", "peerId=peer-b",
		"--tool-arg", "message=hello from the inspector")...)
	if c := tstest.At(sent, "structuredContent", "response", "content"); c != "hello from the inspector" || sent["isError"] == true {
		t.Errorf("send: structuredContent.response.content = %v (isError %v), want the echo agent's answer: %v", c, sent["isError"], sent)
	}
	bad := inspect(t, inspector, target, append(call, "--tool-arg", "action=fly")...)
	text, _ := tstest.At(bad, "content", 0, "text").(string)
	if bad["isError"] != true || tstest.At(bad, "structuredContent", "error", "code") != "UNKNOWN_ACTION" || !strings.HasPrefix(text, "UNKNOWN_ACTION: ") {
		t.Errorf("bad action: %v, want isError with UNKNOWN_ACTION", bad)
	}
}

func TestMCPInspectorStdio(t *testing.T) {
	inspector := npmTool(t, "AGENTFED_MCP_INSPECTOR")
	main := mcpFederation(t)
	checkInspector(t, inspector, []string{bin, "mcp", "--gateway", main.URL, "--token", "op-secret"})
}

func TestMCPInspectorHTTP(t *testing.T) {
	inspector := npmTool(t, "AGENTFED_MCP_INSPECTOR")
	main := mcpFederation(t)
	url := "http://" + strings.TrimPrefix(main.URL, "ws://") + federation.MCPPath
	checkInspector(t, inspector, []string{url, "--transport", "http", "--header", "Authorization: Bearer op-secret"})
}

// The conformance suite sends no credentials, so it tests a gateway whose
// operators are trusted for connecting from loopback: one without
// gateway.auth.operatorToken, which only a Go program can run (serve
// always sets a token). Its DNS rebinding scenario expects a request from
// a page on the server's own origin to be served and one from another
// host refused: the gateway allows the first by gateway.allowedOrigins.
func TestMCPConformance(t *testing.T) {
	conformance := npmTool(t, "AGENTFED_MCP_CONFORMANCE")
	ln := fedtest.Listen(t)
	cfg := fedtest.Config(t, "conformance", "echo")
	cfg.Gateway.AllowedOrigins = []string{"http://" + ln.Addr().String()}
	fedtest.Start(t, cfg, ln, federation.Options{})
	baseline, err := filepath.Abs("testdata/mcp-conformance-baseline.yml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, conformance, "server", "--url", "http://"+ln.Addr().String()+federation.MCPPath,
		"--expected-failures", baseline, "--output-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance server: %v (a scenario failed that the baseline does not list, or a listed one now passes)\n%s",
			err, summaryOf(out))
	}
	t.Logf("%s", summaryOf(out))
}

// summaryOf is the part of the conformance suite's output after its
// per-scenario progress lines.
func summaryOf(out []byte) string {
	s := string(out)
	if i := strings.Index(s, "=== SUMMARY ==="); i >= 0 {
		return s[i:]
	}
	return s
}

// TestMCPStdio drives `agentfed mcp` with the go-sdk's MCP client, as a
// host would: without npm, so it always runs.
func TestMCPStdio(t *testing.T) {
	main := mcpFederation(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(gatewayURL string) *mcp.ClientSession {
		c := mcp.NewClient(&mcp.Implementation{Name: "test-host", Version: "1"}, nil)
		s, err := c.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(bin, "mcp", "--gateway", gatewayURL, "--token", "op-secret")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := connect(main.URL)
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: federation.ToolName,
		Arguments: map[string]any{"action": "send", "peerId": "peer-b", "message": "over stdio"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var structured any
	json.Unmarshal(b, &structured)
	if res.IsError || tstest.At(structured, "response", "content") != "over stdio" {
		t.Errorf("send: isError %v, structuredContent %s", res.IsError, b)
	}
	peers, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: "agentfed://peers"})
	if err != nil || !strings.Contains(peers.Contents[0].Text, `"id":"peer-b"`) {
		t.Errorf("agentfed://peers: %v %v", err, peers)
	}

	// No gateway: the host still gets a tool, and each call says what is wrong.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	s = connect("ws://" + ln.Addr().String())
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: federation.ToolName, Arguments: map[string]any{"action": "list_peers"}})
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if !res.IsError || !strings.HasPrefix(text, "PEER_UNAVAILABLE: ") || !strings.Contains(text, "is 'agentfed serve' running there?") {
		t.Errorf("call without a gateway: isError %v, %q", res.IsError, text)
	}
}
