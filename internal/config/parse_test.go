package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentfed/agentfed/federation"
)

// env returns a lookup function over a fixed environment.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// problemsOf returns the problems in err, failing the test if err is not a
// *federation.ValidationError naming file.
func problemsOf(t *testing.T, err error, file string) []federation.Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var verr *federation.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error is %T (%v), want *federation.ValidationError", err, err)
	}
	if verr.File != file {
		t.Errorf("ValidationError.File = %q, want %q", verr.File, file)
	}
	return verr.Problems
}

func ptr[T any](v T) *T { return &v }

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		env  map[string]string
		want []federation.Problem
	}{
		{
			name: "unknown top-level key",
			in:   "federaton:\n  enabled: true\n",
			want: []federation.Problem{
				{Line: 1, Path: "federaton", Message: `unknown key (did you mean "federation"?)`},
			},
		},
		{
			name: "mesh maxHops out of range and an unknown mesh key",
			in:   "federation:\n  mesh:\n    enabled: true\n    maxHops: 17\n    advertize: false\n",
			want: []federation.Problem{
				{Line: 4, Path: "federation.mesh.maxHops", Message: "17 is not from 1 to 16; leave it out for 3"},
				{Line: 5, Path: "federation.mesh.advertize", Message: `unknown key (did you mean "advertise"?)`},
			},
		},
		{
			name: "mesh requireKnownKeys misspelt, and not a bool",
			in:   "federation:\n  mesh:\n    requireKnownKey: true\n    requireKnownKeys: maybe\n",
			want: []federation.Problem{
				{Line: 3, Path: "federation.mesh.requireKnownKey", Message: `unknown key (did you mean "requireKnownKeys"?)`},
				{Line: 4, Path: "federation.mesh.requireKnownKeys", Message: `expected true or false, got "maybe"`},
			},
		},
		{
			name: "federation key at top level",
			in:   "peers: []\n",
			want: []federation.Problem{
				{Line: 1, Path: "peers", Message: "unknown key; it belongs in the federation section"},
			},
		},
		{
			name: "unknown key without suggestion",
			in:   "storage:\n  path: /tmp\n",
			want: []federation.Problem{
				{Line: 2, Path: "storage.path", Message: "unknown key; valid keys here are dir"},
			},
		},
		{
			name: "unknown nested key with suggestion",
			in: `federation:
  peers:
    - id: a
      name: A
      agentId: x
      urll: ws://127.0.0.1:1
`,
			want: []federation.Problem{
				// No "url: required": the typo already says so.
				{Line: 6, Path: "federation.peers[0].urll", Message: `unknown key (did you mean "url"?)`},
			},
		},
		{
			name: "key differing in case and underscores",
			in:   "federation:\n  server_id: main\n  DefaultTimeoutMS: 5\n",
			want: []federation.Problem{
				{Line: 2, Path: "federation.server_id", Message: `unknown key (did you mean "serverId"?)`},
				{Line: 3, Path: "federation.DefaultTimeoutMS", Message: `unknown key (did you mean "defaultTimeoutMs"?)`},
			},
		},
		{
			name: "duplicate key",
			in:   "gateway:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n",
			want: []federation.Problem{
				{Line: 3, Path: "gateway.listen", Message: "duplicate key (first at line 2); keep only one"},
			},
		},
		{
			name: "wrong types",
			in: `federation:
  enabled: sure
  defaultTimeoutMs: 30s
  allowDynamicPeers: 1
  peers: {id: a}
gateway: "127.0.0.1:1"
agents:
  - id: a
    capabilities: echo
    handler: [echo]
storage:
  dir: [a, b]
`,
			want: []federation.Problem{
				{Line: 2, Path: "federation.enabled", Message: `expected true or false, got "sure"`},
				{Line: 3, Path: "federation.defaultTimeoutMs", Message: `expected a whole number, got "30s"`},
				{Line: 4, Path: "federation.allowDynamicPeers", Message: `expected true or false, got "1"`},
				{Line: 5, Path: "federation.peers", Message: "expected a list, got a mapping"},
				{Line: 6, Path: "gateway", Message: `expected a mapping, got "127.0.0.1:1"`},
				{Line: 9, Path: "agents[0].capabilities", Message: `expected a list, got "echo"; write a single value as a one-item list, like [echo]`},
				{Line: 10, Path: "agents[0].handler", Message: "expected a mapping, got a list"},
				{Line: 12, Path: "storage.dir", Message: "expected a string, got a list"},
			},
		},
		{
			name: "wrongly typed list element",
			in:   "federation:\n  peers:\n    - research\n",
			want: []federation.Problem{
				// Not also "id: required" and so on for the same element.
				{Line: 3, Path: "federation.peers[0]", Message: `expected a mapping, got "research"`},
			},
		},
		{
			name: "not a mapping",
			in:   "- federation\n",
			want: []federation.Problem{
				{Line: 1, Message: "expected a mapping of sections (federation, gateway, agents, storage), got a list"},
			},
		},
		{
			name: "missing required peer fields",
			in:   "federation:\n  peers:\n    - description: nothing else\n",
			want: []federation.Problem{
				{Line: 3, Path: "federation.peers[0].id", Message: `required; give the peer a unique id such as "research-agent"`},
				{Line: 3, Path: "federation.peers[0].name", Message: "required; give the peer a human-readable name"},
				{Line: 3, Path: "federation.peers[0].url", Message: "required; set the peer gateway's WebSocket address, like ws://127.0.0.1:18789"},
				{Line: 3, Path: "federation.peers[0].agentId", Message: "required; name the agent on the peer's gateway that receives the messages"},
			},
		},
		{
			name: "duplicate ids",
			in: `federation:
  peers:
    - {id: a, name: A, url: "ws://h:1", agentId: x}
    - {id: a, name: B, url: "ws://h:2", agentId: y}
agents:
  - id: echo
  - id: echo
`,
			want: []federation.Problem{
				{Line: 4, Path: "federation.peers[1].id", Message: `duplicate id "a" (also federation.peers[0]); give each peer a unique id`},
				{Line: 7, Path: "agents[1].id", Message: `duplicate id "echo" (also agents[0]); give each agent a unique id`},
			},
		},
		{
			name: "bad url scheme",
			in:   "federation:\n  peers:\n    - id: a\n      name: A\n      agentId: x\n      url: http://h:1\n",
			want: []federation.Problem{
				{Line: 6, Path: "federation.peers[0].url", Message: `scheme "http" is not ws:// or wss://`},
			},
		},
		{
			name: "negative timeouts",
			in: `federation:
  defaultTimeoutMs: -1
  peers:
    - {id: a, name: A, url: "ws://h:1", agentId: x, timeoutMs: -5}
agents:
  - id: a
    handler: {type: exec, command: [./a], timeoutMs: -2}
`,
			want: []federation.Problem{
				{Line: 2, Path: "federation.defaultTimeoutMs", Message: "must not be negative (got -1); give milliseconds, or 0 for the default"},
				{Line: 4, Path: "federation.peers[0].timeoutMs", Message: "must not be negative (got -5); give milliseconds, or 0 for the default"},
				{Line: 7, Path: "agents[0].handler.timeoutMs", Message: "must not be negative (got -2); give milliseconds, or 0 for the default"},
			},
		},
		{
			name: "requireAuth with token-less peer",
			in: `federation:
  requireAuth: true
  peers:
    - id: a
      name: A
      url: ws://h:1
      agentId: x
    - {id: b, name: B, url: "ws://h:2", agentId: y, token: t}
`,
			want: []federation.Problem{
				{Line: 4, Path: "federation.peers[0].token", Message: "required because federation.requireAuth is true"},
			},
		},
		{
			name: "unset env var",
			in: `federation:
  requireAuth: true
  peers:
    - id: a
      name: A
      url: ws://h:1
      agentId: x
      token: ${RESEARCH_TOKEN}
gateway:
  auth:
    operatorToken: ${EMPTY}
    peers:
      - serverId: s
        token: "x-${NOPE"
      - serverId: t
        token: "${1BAD}"
`,
			env: map[string]string{"EMPTY": ""},
			want: []federation.Problem{
				// Not also "token: required because federation.requireAuth is true".
				{Line: 8, Path: "federation.peers[0].token", Message: "environment variable RESEARCH_TOKEN is not set; set it before starting agentfed, or write the token itself"},
				{Line: 11, Path: "gateway.auth.operatorToken", Message: "environment variable EMPTY is empty; set it to the token"},
				{Line: 14, Path: "gateway.auth.peers[0].token", Message: `"${" has no closing "}"; write ${NAME} to use an environment variable, or $${ for a literal "${"`},
				{Line: 16, Path: "gateway.auth.peers[1].token", Message: `"${...}" must hold an environment variable name (letters, digits and _, not starting with a digit); write $${ for a literal "${"`},
			},
		},
		{
			name: "multiple problems together",
			in: `federation:
  enabled: maybe
  peers:
    - id: a
      name: A
      url: ftp://h
      agentId: x
      capabilites: [x]
gateway:
  listen: localhost
agents:
  - id: a
    handler: {type: exec}
`,
			want: []federation.Problem{
				{Line: 2, Path: "federation.enabled", Message: `expected true or false, got "maybe"`},
				{Line: 6, Path: "federation.peers[0].url", Message: `scheme "ftp" is not ws:// or wss://`},
				{Line: 8, Path: "federation.peers[0].capabilites", Message: `unknown key (did you mean "capabilities"?)`},
				{Line: 10, Path: "gateway.listen", Message: `"localhost" is not host:port (missing port in address); write it like 127.0.0.1:18789`},
				{Line: 13, Path: "agents[0].handler.command", Message: `required for an exec handler; give the program and its arguments, like ["./agent.sh"]`},
			},
		},
		{
			name: "json",
			in: `{
	"federation": {
		"enabled": true,
		"peers": [{"id": "a", "name": "A", "url": "ws://h:1", "agentId": "x", "timeoutMs": "soon"}]
	},
	"gateway": {"listn": "127.0.0.1:1"}
}`,
			want: []federation.Problem{
				{Line: 4, Path: "federation.peers[0].timeoutMs", Message: `expected a whole number, got "soon"`},
				{Line: 6, Path: "gateway.listn", Message: `unknown key (did you mean "listen"?)`},
			},
		},
		{
			name: "syntax error",
			in:   "federation:\n  peers: [a\n  enabled: true\n",
			want: []federation.Problem{
				{Line: 2, Message: "invalid YAML: did not find expected ',' or ']'"},
			},
		},
		{
			name: "missing key",
			in:   "federation:\n  enabled: true\n bad: 1\n",
			want: []federation.Problem{
				{Line: 3, Message: "invalid YAML: did not find expected key"},
			},
		},
		{
			name: "tab indentation",
			in:   "federation:\n\tenabled: true\n",
			want: []federation.Problem{
				{Line: 2, Message: "invalid YAML: found character that cannot start any token"},
			},
		},
		{
			name: "two documents",
			in:   "federation: {}\n---\ngateway: {}\n",
			want: []federation.Problem{
				{Line: 2, Message: "a second YAML document starts here; put the whole configuration in one document"},
			},
		},
		{
			name: "unknown key in merged mapping",
			in: `federation:
  peers:
    - &base {id: a, name: A, url: "ws://h:1", agentId: x, colour: red}
    - <<: *base
      id: b
`,
			want: []federation.Problem{
				{Line: 3, Path: "federation.peers[0].colour", Message: "unknown key; valid keys here are id, name, url, token, agentId, capabilities, description, enabled, timeoutMs, serverId, tls, publicKey, encryptionKey, type"},
				{Line: 3, Path: "federation.peers[1].colour", Message: "unknown key; valid keys here are id, name, url, token, agentId, capabilities, description, enabled, timeoutMs, serverId, tls, publicKey, encryptionKey, type"},
			},
		},
		{
			name: "key that is not a string",
			in:   "federation:\n  [a]: 1\n",
			want: []federation.Problem{
				{Line: 2, Path: "federation", Message: "a key is a list; keys must be plain strings"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse([]byte(tt.in), "test.yaml", env(tt.env))
			if err == nil {
				t.Fatalf("parse() succeeded, want problems:\n%v", tt.want)
			}
			if cfg != nil {
				t.Errorf("parse() returned a config with an error")
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err, "test.yaml")); diff != "" {
				t.Errorf("parse() problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	defaults := func(c federation.Config) *federation.Config {
		c.ApplyDefaults()
		return &c
	}
	tests := []struct {
		name string
		in   string
		env  map[string]string
		want *federation.Config
	}{
		{
			name: "empty file",
			in:   "",
			want: defaults(federation.Config{}),
		},
		{
			name: "only comments",
			in:   "# nothing yet\n",
			want: defaults(federation.Config{}),
		},
		{
			name: "null sections",
			in:   "federation:\ngateway: ~\nagents:\n",
			want: defaults(federation.Config{}),
		},
		{
			name: "seed section",
			in: `federation:
  enabled: true
  serverId: "main-agent-server"
  defaultTimeoutMs: 10000
  allowDynamicPeers: false
  requireAuth: true
  peers:
    - id: "research-agent"
      name: "Research Specialist"
      url: "ws://192.168.1.100:18789"
      token: "${RESEARCH_TOKEN}"
      agentId: "agent-research-01"
      capabilities:
        - "web-search"
      description: "Specialized in research"
      enabled: false
      timeoutMs: 45000
`,
			env: map[string]string{"RESEARCH_TOKEN": "s3cret"},
			want: defaults(federation.Config{Federation: federation.FederationConfig{
				Enabled:           true,
				ServerID:          "main-agent-server",
				DefaultTimeoutMs:  10000,
				AllowDynamicPeers: ptr(false),
				RequireAuth:       true,
				Peers: []federation.PeerConfig{{
					ID:           "research-agent",
					Name:         "Research Specialist",
					URL:          "ws://192.168.1.100:18789",
					Token:        "s3cret",
					AgentID:      "agent-research-01",
					Capabilities: []string{"web-search"},
					Description:  "Specialized in research",
					Enabled:      ptr(false),
					TimeoutMs:    45000,
				}},
			}}),
		},
		{
			name: "expansion only in secret fields",
			in: `federation:
  peers:
    - {id: a, name: "${NAME}", url: "ws://h:1", agentId: x, token: "pre-${T}-$${LITERAL}-$$-$"}
gateway:
  auth:
    operatorToken: "${OP}"
    peers: [{serverId: s, token: "${IN}", previousToken: "${OLD}"}]
`,
			env: map[string]string{"T": "tok", "OP": "op", "IN": "in", "OLD": "old", "NAME": "expanded"},
			want: defaults(federation.Config{
				Federation: federation.FederationConfig{Peers: []federation.PeerConfig{
					{ID: "a", Name: "${NAME}", URL: "ws://h:1", AgentID: "x", Token: "pre-tok-${LITERAL}-$$-$"},
				}},
				Gateway: federation.GatewayConfig{Auth: federation.AuthConfig{
					OperatorToken: "op",
					Peers:         []federation.PeerCredential{{ServerID: "s", Token: "in", PreviousToken: "old"}},
				}},
			}),
		},
		{
			name: "openclaw agent token expands, its url does not",
			in: `agents:
  - {id: claw, handler: {type: openclaw, url: "ws://h:1/${NAME}", token: "${OC}", agentId: main}}
`,
			env: map[string]string{"OC": "oc-token", "NAME": "expanded"},
			want: defaults(federation.Config{Agents: []federation.AgentConfig{{ID: "claw",
				Handler: federation.HandlerConfig{Type: "openclaw", URL: "ws://h:1/${NAME}", Token: "oc-token", AgentID: "main"}}}}),
		},
		{
			name: "json",
			in:   `{"federation": {"enabled": true}, "agents": [{"id": "e", "capabilities": ["echo"]}], "storage": {"dir": "/var/lib/agentfed"}}`,
			want: defaults(federation.Config{
				Federation: federation.FederationConfig{Enabled: true},
				Agents:     []federation.AgentConfig{{ID: "e", Capabilities: []string{"echo"}}},
				Storage:    federation.StorageConfig{Dir: "/var/lib/agentfed"},
			}),
		},
		{
			name: "merge keys",
			in: `federation:
  peers:
    - &base {id: a, name: A, url: "ws://h:1", agentId: x, timeoutMs: 5}
    - <<: *base
      id: b
`,
			want: defaults(federation.Config{Federation: federation.FederationConfig{Peers: []federation.PeerConfig{
				{ID: "a", Name: "A", URL: "ws://h:1", AgentID: "x", TimeoutMs: 5},
				{ID: "b", Name: "A", URL: "ws://h:1", AgentID: "x", TimeoutMs: 5},
			}}}),
		},
		{
			name: "scalars into strings",
			in:   "federation:\n  serverId: 42\n",
			want: defaults(federation.Config{Federation: federation.FederationConfig{ServerID: "42"}}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.in), "test.yaml", env(tt.env))
			if err != nil {
				t.Fatalf("parse() error:\n%v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUsesEnvironment(t *testing.T) {
	in := []byte("gateway:\n  auth:\n    operatorToken: ${AGENTFED_TEST_OPERATOR_TOKEN}\n")
	t.Setenv("AGENTFED_TEST_OPERATOR_TOKEN", "from-env")
	cfg, err := Parse(in, "env.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Gateway.Auth.OperatorToken, "from-env"; got != want {
		t.Errorf("operatorToken = %q, want %q", got, want)
	}
}

func TestParseExpandsAPIKey(t *testing.T) {
	in := []byte("agents:\n  - id: bot\n    handler: {type: llm, baseUrl: 'https://api.example.com/v1', model: m, apiKey: '${AGENTFED_TEST_API_KEY}',\n" +
		"      mcpServers: [{name: gh, url: 'https://mcp.example.com/mcp', headers: {Authorization: 'Bearer ${AGENTFED_TEST_API_KEY}'}}]}\n")
	t.Setenv("AGENTFED_TEST_API_KEY", "sk-from-env")
	cfg, err := Parse(in, "llm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Agents[0].Handler.APIKey; got != "sk-from-env" {
		t.Errorf("apiKey = %q, want the variable's value", got)
	}
	if got := cfg.Agents[0].Handler.MCPServers[0].Headers["Authorization"]; got != "Bearer sk-from-env" {
		t.Errorf("mcpServers[0].headers.Authorization = %q, want the variable's value", got)
	}
	_, err = parse(in, "llm.yaml", env(nil))
	if err == nil || !strings.Contains(err.Error(), "agents[0].handler.apiKey: environment variable AGENTFED_TEST_API_KEY is not set") {
		t.Errorf("unset variable: err = %v, want it named at agents[0].handler.apiKey", err)
	}
}

func TestErrorText(t *testing.T) {
	_, err := parse([]byte("federation:\n  peers:\n    - {id: a, name: A, urll: x, agentId: b}\n  enabld: true\n"), "agentfed.yaml", env(nil))
	want := `agentfed.yaml: line 3: federation.peers[0].urll: unknown key (did you mean "url"?)
agentfed.yaml: line 4: federation.enabld: unknown key (did you mean "enabled"?)`
	if err == nil {
		t.Fatal("parse() succeeded")
	}
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error text mismatch (-want +got):\n%s", diff)
	}
}

func TestErrorsDoNotRevealTokens(t *testing.T) {
	const secret = "hunter2-very-secret"
	in := "federation:\n  peers:\n    - {id: a, name: A, url: 'ws://h:1', agentId: b, token: '${" + secret + "'}\n" +
		"gateway:\n  auth:\n    operatorToken: '${" + secret + "-x}'\n"
	_, err := parse([]byte(in), "t.yaml", env(nil))
	if err == nil {
		t.Fatal("parse() succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the token:\n%v", err)
	}
}

func TestLoad(t *testing.T) {
	t.Run("yaml", func(t *testing.T) {
		cfg, err := Load("testdata/full.yaml")
		if err != nil {
			t.Fatalf("Load():\n%v", err)
		}
		got := []int{len(cfg.Federation.Peers), len(cfg.Gateway.Auth.Peers), len(cfg.Agents)}
		if diff := cmp.Diff([]int{3, 2, 3}, got); diff != "" {
			t.Errorf("Load() peers, auth peers, agents (-want +got):\n%s", diff)
		}
	})

	t.Run("json", func(t *testing.T) {
		cfg, err := Load("testdata/full.json")
		if err != nil {
			t.Fatalf("Load():\n%v", err)
		}
		want := &federation.Config{
			Federation: federation.FederationConfig{
				Enabled:           true,
				ServerID:          "json-server",
				DefaultTimeoutMs:  20000,
				AllowDynamicPeers: ptr(false),
				RequireAuth:       true,
				Peers: []federation.PeerConfig{
					{
						ID: "research-agent", Name: "Research Specialist", URL: "ws://127.0.0.1:18790",
						Token: "literal-token", AgentID: "agent-research-01",
						Capabilities: []string{"web-search", "summarization"}, Enabled: ptr(true), TimeoutMs: 45000,
					},
					{
						ID: "data-agent", Name: "Data Analysis Agent", URL: "wss://data.example.com",
						Token: "${NOT_A_VAR}", AgentID: "agent-data-01",
					},
				},
			},
			Gateway: federation.GatewayConfig{Listen: "127.0.0.1:28789"},
			Agents: []federation.AgentConfig{
				{ID: "echo", Name: "echo", Capabilities: []string{"echo"}, Handler: federation.HandlerConfig{Type: "echo"}},
			},
			Storage: federation.StorageConfig{Dir: "./data"},
		}
		want.ApplyDefaults() // and what the file leaves out (TestApplyDefaults checks the defaults)
		if diff := cmp.Diff(want, cfg); diff != "" {
			t.Errorf("Load() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("invalid file", func(t *testing.T) {
		_, err := Load("testdata/invalid.yaml")
		if len(problemsOf(t, err, "testdata/invalid.yaml")) == 0 {
			t.Errorf("Load(invalid.yaml) = %v, want problems", err)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestExample(t *testing.T) {
	for _, name := range []string{"RESEARCH_TOKEN", "DATA_TOKEN", "AGENTFED_OPERATOR_TOKEN", "RESEARCH_INBOUND_TOKEN"} {
		if _, set := os.LookupEnv(name); set {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	cfg, err := Parse([]byte(Example), "example.yaml")
	if err != nil {
		t.Fatalf("Parse(Example):\n%v", err)
	}
	if !cfg.Federation.Enabled || len(cfg.Federation.Peers) != 2 || len(cfg.Agents) != 1 {
		t.Errorf("Parse(Example) = %+v; want federation enabled, two peers, one agent", cfg)
	}
	for i, p := range cfg.Federation.Peers {
		if !strings.HasPrefix(p.URL, "ws://127.0.0.1:") {
			t.Errorf("example peers[%d].url = %q, want a loopback address", i, p.URL)
		}
	}
}

func TestDefault(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate():\n%v", err)
	}
	want := &federation.Config{
		Federation: federation.FederationConfig{Enabled: true, DefaultTimeoutMs: federation.DefaultTimeoutMs},
		Gateway:    federation.GatewayConfig{Listen: federation.DefaultListen},
		Agents: []federation.AgentConfig{{
			ID:           "echo",
			Name:         "Echo agent",
			Capabilities: []string{"echo"},
			Description:  "Answers with what it received",
			Handler:      federation.HandlerConfig{Type: "echo"},
		}},
		Storage: federation.StorageConfig{Dir: federation.DefaultStorage},
	}
	want.ApplyDefaults()
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if Default() == cfg || &Default().Agents[0] == &cfg.Agents[0] {
		t.Error("Default() shares memory between calls")
	}
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []federation.Problem
	}{
		{
			name: "merge cycle",
			in:   "federation: &a {<<: [*a, *a]}\n",
			want: []federation.Problem{
				{Line: 1, Path: "federation", Message: "a merge key (<<) merges a mapping into itself; merge a different mapping"},
			},
		},
		{
			name: "alias expansion",
			in: "x: &c [" + strings.Repeat("a,", 1000) + "a]\n" +
				"federation:\n  peers: [" + strings.Repeat("{capabilities: *c},", 1000) + "{}]\n",
			want: []federation.Problem{
				{Line: 1, Path: "x", Message: "unknown key; valid keys here are federation, gateway, agents, storage, audit, nats"},
				{Message: "the file expands, through aliases (*name), to more than 262144 values; write the repeated values out"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(tt.in), "t.yaml", env(nil))
			if diff := cmp.Diff(tt.want, problemsOf(t, err, "t.yaml")); diff != "" {
				t.Errorf("parse() problems mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("problem count", func(t *testing.T) {
		in := "agents:\n" + strings.Repeat("  - {id: a, colour: red}\n", 300)
		_, err := parse([]byte(in), "t.yaml", env(nil))
		problems := problemsOf(t, err, "t.yaml")
		if len(problems) != maxProblems+1 {
			t.Fatalf("parse() reported %d problems, want %d", len(problems), maxProblems+1)
		}
		want := federation.Problem{Message: "399 more problems not shown; fix these first"}
		if diff := cmp.Diff(want, problems[maxProblems]); diff != "" {
			t.Errorf("last problem mismatch (-want +got):\n%s", diff)
		}
	})
}
