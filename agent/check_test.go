package agent

import (
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/google/go-cmp/cmp"
)

// TestCheck: every problem with the handlers of a configuration's agents,
// each naming its field, as `agentfed config check` prints them.
func TestCheck(t *testing.T) {
	hot := 2.5
	cfg := &federation.Config{
		Gateway: federation.GatewayConfig{Auth: federation.AuthConfig{OperatorToken: "op-secret"}},
		Agents: []federation.AgentConfig{
			{ID: "echo"},
			{ID: "exec", Handler: federation.HandlerConfig{Type: "exec", Command: []string{"./a.sh"}, TimeoutMs: -3}},
			{ID: "x", Handler: federation.HandlerConfig{Type: "python"}},
			{ID: "y", Handler: federation.HandlerConfig{Type: "exec", Command: []string{""}}},
			{ID: "z", Handler: federation.HandlerConfig{Type: "http"}},
			{ID: "w", Handler: federation.HandlerConfig{Type: "http", URL: "ws://127.0.0.1:1"}},
			{ID: "oc", Handler: federation.HandlerConfig{Type: "openclaw"}},
			{ID: "oc2", Handler: federation.HandlerConfig{Type: "openclaw", URL: "http://127.0.0.1:18789"}},
			{ID: "oc3", Handler: federation.HandlerConfig{Type: "openclaw", URL: "ws://127.0.0.1:18789", Token: "t", AgentID: "main"}},
			{ID: "ok", Handler: federation.HandlerConfig{Type: "llm", BaseURL: "http://127.0.0.1:11434/v1", Model: "llama3.1",
				Tools: federation.LLMToolsConfig{AllowActions: []string{"delegate", "list_peers"}}}},
			{ID: "bad", Handler: federation.HandlerConfig{Type: "llm", Temperature: &hot, MaxSteps: -1,
				Tools: federation.LLMToolsConfig{AllowActions: []string{"delegate", "fly"}}}},
			{ID: "ws", Handler: federation.HandlerConfig{Type: "llm", BaseURL: "ws://127.0.0.1:1", Model: "m", MCPServers: []federation.MCPServerConfig{
				{Name: "fs", Command: []string{"mcp-fs"}},
				{Name: "fs", URL: "http://127.0.0.1:9/mcp"},
				{Name: "bad name", Command: []string{"x"}, URL: "http://h/mcp"},
				{Name: "none"},
			}}},
			{ID: "env", Handler: federation.HandlerConfig{Type: "http", URL: "http://127.0.0.1:1", Env: map[string]string{"A": "b"}}},
			{ID: "env2", Handler: federation.HandlerConfig{Type: "exec", Command: []string{"x"}, Env: map[string]string{"1X": "v", "KEY": "op-secret"}}},
		},
	}
	want := []federation.Problem{
		{Path: "agents[1].handler.timeoutMs", Message: "must not be negative (got -3); give milliseconds, or 0 for the default"},
		{Path: "agents[2].handler.type", Message: `unknown handler type "python"; use one of echo, exec, http, openclaw, llm`},
		{Path: "agents[3].handler.command", Message: `required for an exec handler; give the program and its arguments, like ["./agent.sh"]`},
		{Path: "agents[4].handler.url", Message: "required for an http handler; give the address messages are POSTed to, like http://127.0.0.1:8080/agent"},
		{Path: "agents[5].handler.url", Message: `scheme "ws" is not http:// or https://`},
		{Path: "agents[6].handler.url", Message: "required for an openclaw handler; give the OpenClaw gateway's address, like ws://127.0.0.1:18789"},
		{Path: "agents[7].handler.url", Message: `scheme "http" is not ws:// or wss://`},
		{Path: "agents[10].handler.baseUrl", Message: "required for an llm handler; give the OpenAI-compatible API base, like https://api.openai.com/v1 or http://127.0.0.1:11434/v1"},
		{Path: "agents[10].handler.model", Message: "required for an llm handler; name the model the endpoint serves, like gpt-4o-mini or llama3.1"},
		{Path: "agents[10].handler.temperature", Message: "2.5 is outside 0 to 2"},
		{Path: "agents[10].handler.maxSteps", Message: "-1 is negative; leave it out for the default"},
		{Path: "agents[10].handler.tools.allowActions[1]", Message: `"fly" is not an action; use send, delegate, broadcast, list_peers, register_peer, unregister_peer, sync_context, query_capabilities`},
		{Path: "agents[11].handler.baseUrl", Message: `scheme "ws" is not http:// or https://`},
		{Path: "agents[11].handler.mcpServers[1].name", Message: `duplicate name "fs" (also mcpServers[0])`},
		{Path: "agents[11].handler.mcpServers[2].name", Message: `"bad name" must be 1 to 32 letters, digits, _ or -; the model sees the tools as NAME__TOOL`},
		{Path: "agents[11].handler.mcpServers[2]", Message: "has both command and url; give command for a stdio server or url for an HTTP one"},
		{Path: "agents[11].handler.mcpServers[3].command", Message: `required (or url); give the server's program and arguments, like ["npx", "-y", "@modelcontextprotocol/server-everything"]`},
		{Path: "agents[12].handler.env", Message: "only exec handlers take env; remove it, or set handler.type to exec"},
		{Path: "agents[13].handler.env.1X", Message: `"1X" is not an environment variable name; use letters, digits and _, not starting with a digit`},
		{Path: "agents[13].handler.env.KEY", Message: "is the token of gateway.auth.operatorToken; an agent must never get the gateway's own credentials: give it one of its own"},
	}
	if diff := cmp.Diff(want, Check(cfg)); diff != "" {
		t.Errorf("Check problems (-want +got):\n%s", diff)
	}
}
