package federation

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validConfig returns a configuration that passes Validate, for tests to
// break one field at a time.
func validConfig() *Config {
	return &Config{
		Federation: FederationConfig{
			Enabled:  true,
			ServerID: "main",
			Peers: []PeerConfig{
				{ID: "research", Name: "Research", URL: "ws://127.0.0.1:18790", AgentID: "r1", Capabilities: []string{"web-search"}},
				{ID: "data", Name: "Data", URL: "wss://data.example.com", AgentID: "d1", Token: "t"},
			},
		},
		Gateway: GatewayConfig{
			Listen: "127.0.0.1:18789",
			Auth:   AuthConfig{Peers: []PeerCredential{{ServerID: "research-server", Token: "t"}}},
		},
		Agents: []AgentConfig{
			{ID: "echo", Capabilities: []string{"echo"}},
			{ID: "exec", Handler: HandlerConfig{Type: "exec", Command: []string{"./a.sh"}}},
			{ID: "web", Handler: HandlerConfig{Type: "http", URL: "https://127.0.0.1:8080/agent"}},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []Problem
	}{
		{
			name:   "valid",
			modify: func(c *Config) {},
		},
		{
			name:   "zero config",
			modify: func(c *Config) { *c = Config{} },
		},
		{
			name: "one token for two identities",
			modify: func(c *Config) {
				c.Gateway.Auth.OperatorToken = "shared-op"
				c.Gateway.Auth.Peers = []PeerCredential{
					{ServerID: "a", Token: "shared"},
					{ServerID: "b", Token: "shared"},
					{ServerID: "c", Token: "c-token", PreviousToken: "shared-op"},
				}
			},
			want: []Problem{
				{Path: "gateway.auth.peers[1].token", Message: "is the same token as gateway.auth.peers[0].token; give each peer and the operator a token of its own"},
				{Path: "gateway.auth.peers[2].previousToken", Message: "is the same token as gateway.auth.operatorToken; give each peer and the operator a token of its own"},
			},
		},
		{
			name: "origins and connection limits",
			modify: func(c *Config) {
				c.Gateway.AllowedOrigins = []string{"https://dash.example.com", "dash.example.com", "https://x.example/ui", "null"}
				c.Gateway.Limits.MaxConnections, c.Gateway.Limits.MaxHandshakes = -1, -2
			},
			want: []Problem{
				{Path: "gateway.limits.maxConnections", Message: "-1 is negative; leave it out for the default"},
				{Path: "gateway.limits.maxHandshakes", Message: "-2 is negative; leave it out for the default"},
				{Path: "gateway.allowedOrigins[1]", Message: `"dash.example.com" needs an http:// or https:// scheme`},
				{Path: "gateway.allowedOrigins[2]", Message: `"https://x.example/ui" must be an origin only (scheme://host[:port]), without a path`},
				{Path: "gateway.allowedOrigins[3]", Message: `"null" needs an http:// or https:// scheme`},
			},
		},
		{
			name:   "missing peer fields",
			modify: func(c *Config) { c.Federation.Peers[0] = PeerConfig{} },
			want: []Problem{
				{Path: "federation.peers[0].id", Message: `required; give the peer a unique id such as "research-agent"`},
				{Path: "federation.peers[0].name", Message: "required; give the peer a human-readable name"},
				{Path: "federation.peers[0].url", Message: "required; set the peer gateway's WebSocket address, like ws://127.0.0.1:18789"},
				{Path: "federation.peers[0].agentId", Message: "required; name the agent on the peer's gateway that receives the messages"},
			},
		},
		{
			name: "reliability knobs",
			modify: func(c *Config) {
				c.Federation.Delegation.Strategy = "fastest"
				c.Gateway.HeartbeatMs = -1
				c.Gateway.Breaker = BreakerConfig{Failures: -2, OpenMs: -3}
				c.Gateway.Limits.PeerBurst = -4
				c.Agents = []AgentConfig{{ID: "a", MaxConcurrency: -5, MaxQueue: -6}}
			},
			want: []Problem{
				{Path: "federation.delegation.strategy", Message: `"fastest" is not one of round-robin, least-loaded, lowest-latency, random`},
				{Path: "gateway.heartbeatMs", Message: "must not be negative (got -1); give milliseconds, or 0 for the default"},
				{Path: "gateway.breaker.openMs", Message: "must not be negative (got -3); give milliseconds, or 0 for the default"},
				{Path: "gateway.breaker.failures", Message: "-2 is negative; leave it out for the default"},
				{Path: "gateway.limits.peerBurst", Message: "-4 is negative; leave it out for the default"},
				{Path: "agents[0].maxConcurrency", Message: "-5 is negative; leave it out for the default"},
				{Path: "agents[0].maxQueue", Message: "-6 is negative; leave it out for the default"},
			},
		},
		{
			name:   "tick interval below the minimum",
			modify: func(c *Config) { c.Gateway.TickIntervalMs = 50 },
			want: []Problem{
				{Path: "gateway.tickIntervalMs", Message: "is 50; give at least 100 milliseconds, or 0 for the default (30000)"},
			},
		},
		{
			name:   "durable knobs",
			modify: func(c *Config) { c.Federation.Durable = DurableConfig{MaxAttempts: -1, MaxAgeMs: -2, RetentionMs: -3} },
			want: []Problem{ // a negative maxAttempts means no limit
				{Path: "federation.durable.maxAgeMs", Message: "must not be negative (got -2); give milliseconds, or 0 for the default"},
				{Path: "federation.durable.retentionMs", Message: "must not be negative (got -3); give milliseconds, or 0 for the default"},
			},
		},
		{
			name:   "duplicate peer id",
			modify: func(c *Config) { c.Federation.Peers[1].ID = "research" },
			want: []Problem{
				{Path: "federation.peers[1].id", Message: `duplicate id "research" (also federation.peers[0]); give each peer a unique id`},
			},
		},
		{
			name:   "http scheme",
			modify: func(c *Config) { c.Federation.Peers[1].URL = "http://data.example.com" },
			want: []Problem{
				{Path: "federation.peers[1].url", Message: `scheme "http" is not ws:// or wss://`},
			},
		},
		{
			name:   "no scheme",
			modify: func(c *Config) { c.Federation.Peers[1].URL = "data.example.com/ws" },
			want: []Problem{
				{Path: "federation.peers[1].url", Message: "has no scheme; write it like ws://host:port or wss://host:port"},
			},
		},
		{
			name:   "no host",
			modify: func(c *Config) { c.Federation.Peers[1].URL = "ws:///gateway" },
			want: []Problem{
				{Path: "federation.peers[1].url", Message: "has no host; write it like ws://host:port"},
			},
		},
		{
			name:   "unparsable url",
			modify: func(c *Config) { c.Federation.Peers[1].URL = "ws://host:port" },
			want: []Problem{
				{Path: "federation.peers[1].url", Message: `not a valid URL (invalid port ":port" after host); write it like ws://host:port`},
			},
		},
		{
			name: "negative timeouts",
			modify: func(c *Config) {
				c.Federation.DefaultTimeoutMs = -1
				c.Federation.Peers[0].TimeoutMs = -2
			},
			want: []Problem{
				{Path: "federation.defaultTimeoutMs", Message: "must not be negative (got -1); give milliseconds, or 0 for the default"},
				{Path: "federation.peers[0].timeoutMs", Message: "must not be negative (got -2); give milliseconds, or 0 for the default"},
			},
		},
		{
			name:   "requireAuth with token-less peer",
			modify: func(c *Config) { c.Federation.RequireAuth = true },
			want: []Problem{
				{Path: "federation.peers[0].token", Message: "required because federation.requireAuth is true"},
			},
		},
		{
			name: "empty capabilities",
			modify: func(c *Config) {
				c.Federation.Peers[0].Capabilities = []string{"ok", ""}
				c.Agents[0].Capabilities = []string{" "}
			},
			want: []Problem{
				{Path: "federation.peers[0].capabilities[1]", Message: "empty capability; name it or remove the entry"},
				{Path: "agents[0].capabilities[0]", Message: "empty capability; name it or remove the entry"},
			},
		},
		{
			name:   "serverId with whitespace",
			modify: func(c *Config) { c.Federation.ServerID = "main server" },
			want: []Problem{
				{Path: "federation.serverId", Message: `"main server" has a character other than letters, digits and "._:@-"; use a single word such as "main-agent-server"`},
			},
		},
		{
			name:   "listen without port",
			modify: func(c *Config) { c.Gateway.Listen = "127.0.0.1" },
			want: []Problem{
				{Path: "gateway.listen", Message: `"127.0.0.1" is not host:port (missing port in address); write it like 127.0.0.1:18789`},
			},
		},
		{
			name:   "listen with bad port",
			modify: func(c *Config) { c.Gateway.Listen = "localhost:http" },
			want: []Problem{
				{Path: "gateway.listen", Message: `port "http" is not a number from 0 to 65535; write it like 127.0.0.1:18789`},
			},
		},
		{
			name: "auth peers",
			modify: func(c *Config) {
				c.Gateway.Auth.Peers = []PeerCredential{
					{ServerID: "a", Token: "t"},
					{},
					{ServerID: "a", Token: "u"},
					{ServerID: "b c", Token: "v"},
					{ServerID: "A", Token: "w"},
				}
			},
			want: []Problem{
				{Path: "gateway.auth.peers[1].serverId", Message: "required; give the federation.serverId of the peer gateway allowed to connect"},
				{Path: "gateway.auth.peers[1].token", Message: "required; set the token this peer presents when it connects"},
				{Path: "gateway.auth.peers[2].serverId", Message: `duplicate serverId "a" (also gateway.auth.peers[0]); merge the entries`},
				{Path: "gateway.auth.peers[3].serverId", Message: `"b c" has a character other than letters, digits and "._:@-"; use the peer gateway's federation.serverId`},
				{Path: "gateway.auth.peers[4].serverId", Message: `"A" differs only in case from gateway.auth.peers[0].serverId "a"; server ids are compared exactly, so spell one gateway one way`},
			},
		},
		{
			name: "agents",
			modify: func(c *Config) {
				c.Agents = append(c.Agents,
					AgentConfig{},
					AgentConfig{ID: "echo"},
					AgentConfig{ID: "x", Handler: HandlerConfig{Type: "python"}}, // handler kinds are agent.Check's
				)
			},
			want: []Problem{
				{Path: "agents[3].id", Message: `required; give the agent a unique id such as "agent-research-01"`},
				{Path: "agents[4].id", Message: `duplicate id "echo" (also agents[0]); give each agent a unique id`},
			},
		},
		{
			name: "allowed actions and hops",
			modify: func(c *Config) {
				c.Gateway.Auth.Peers[0].AllowActions = []string{"send", "sned"}
				c.Federation.MaxHops = 65
			},
			want: []Problem{
				{Path: "federation.maxHops", Message: "65 is not from 1 to 64; leave it out for 8"},
				{Path: "gateway.auth.peers[0].allowActions[1]", Message: `"sned" is not an action; use send, delegate, broadcast, list_peers, register_peer, unregister_peer, sync_context, query_capabilities`},
			},
		},
		{
			name: "tls pins in hex with colons and base64",
			modify: func(c *Config) {
				c.Federation.Peers[1].TLS = &PeerTLSConfig{PinSHA256: strings.Repeat("ab:", 31) + "ab"}
				c.Federation.Peers = append(c.Federation.Peers, PeerConfig{ID: "p", Name: "P", URL: "wss://p.example.com", AgentID: "a",
					TLS: &PeerTLSConfig{InsecureSkipVerify: true, PinSHA256: "sha256/" + strings.Repeat("A", 43) + "="}})
			},
		},
		{
			name: "tls",
			modify: func(c *Config) {
				c.Federation.Peers[0].TLS = &PeerTLSConfig{InsecureSkipVerify: true}
				c.Federation.Peers[1].TLS = &PeerTLSConfig{KeyFile: "k.pem", PinSHA256: "abcd", CAFile: "testdata/no-such-ca.pem"}
				c.Gateway.TLS = ServerTLSConfig{ClientCAFile: "validate_test.go", RequireClientCert: true}
			},
			want: []Problem{
				{Path: "federation.peers[0].tls", Message: "has no effect on a ws:// URL, which is neither encrypted nor verified; use wss:// or remove tls"},
				{Path: "federation.peers[1].tls.certFile", Message: "required with federation.peers[1].tls.keyFile; give the PEM file of its certificate"},
				{Path: "federation.peers[1].tls.caFile", Message: "cannot read it: open testdata/no-such-ca.pem: no such file or directory"},
				{Path: "federation.peers[1].tls.pinSha256", Message: `"abcd" is 2 bytes of hex; a SHA-256 is 32 bytes (64 hex digits)`},
				{Path: "gateway.tls.clientCaFile", Message: "needs gateway.tls.certFile and keyFile: client certificates are asked for only over TLS"},
				{Path: "gateway.tls.clientCaFile", Message: "validate_test.go holds no PEM certificate"},
			},
		},
		{
			name: "tls pair that does not load",
			modify: func(c *Config) {
				c.Gateway.TLS = ServerTLSConfig{CertFile: "testdata/no-such-cert.pem", KeyFile: "testdata/no-such-key.pem", RequireClientCert: true}
			},
			want: []Problem{
				{Path: "gateway.tls.certFile", Message: "cannot load the certificate and key: open testdata/no-such-cert.pem: no such file or directory"},
				{Path: "gateway.tls.requireClientCert", Message: "needs gateway.tls.clientCaFile, the CAs that client certificates must be issued by"},
			},
		},
		{
			name: "many problems at once",
			modify: func(c *Config) {
				c.Federation.RequireAuth = true
				c.Federation.Peers[1].URL = "http://x"
				c.Gateway.Listen = "nope"
			},
			want: []Problem{
				{Path: "federation.peers[0].token", Message: "required because federation.requireAuth is true"},
				{Path: "federation.peers[1].url", Message: `scheme "http" is not ws:// or wss://`},
				{Path: "gateway.listen", Message: `"nope" is not host:port (missing port in address); write it like 127.0.0.1:18789`},
			},
		},
		{
			name: "discovery",
			modify: func(c *Config) {
				c.Federation.RequireAuth = true
				c.Federation.Enabled = false
				c.Federation.Peers = nil
				c.Federation.Discovery = DiscoveryConfig{
					MDNS: MDNSConfig{Enabled: true, Service: "agentfed", IntervalMs: -1},
					Accept: []AcceptRule{
						{},
						{ServerID: "b", Fingerprint: "3f:a1", Token: "t"},
						{Fingerprint: "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff", Token: "t"},
						{ServerID: "d"},
					},
				}
			},
			want: []Problem{
				{Path: "federation.discovery.mdns.enabled", Message: "needs federation.enabled: true; a gateway with federation off neither advertises nor browses"},
				{Path: "federation.discovery.mdns.interface", Message: "required when mdns is enabled: name the one network interface to advertise and browse on, like lo or eth0 (there is no default)"},
				{Path: "federation.discovery.mdns.service", Message: `"agentfed" is not a DNS-SD service type; write it like _agentfed._tcp (an underscore, up to 15 letters, digits or hyphens, then ._tcp)`},
				{Path: "federation.discovery.mdns.intervalMs", Message: "must not be negative (got -1); give milliseconds, or 0 for the default"},
				{Path: "federation.discovery.accept[0]", Message: "set serverId, fingerprint or both: a rule without them would accept every gateway on the network"},
				{Path: "federation.discovery.accept[0].token", Message: "required because federation.requireAuth is true"},
				{Path: "federation.discovery.accept[1].fingerprint", Message: "\"3f:a1\" is not a key fingerprint; copy the fingerprint line of the gateway's `agentfed identity` (16 hex bytes separated by colons)"},
				{Path: "federation.discovery.accept[3].token", Message: "required because federation.requireAuth is true"},
			},
		},
		{
			name: "capability versions",
			modify: func(c *Config) {
				c.Federation.Peers[0].Capabilities = []string{"web-search@2.1.0", "summarization@2.1", "@1.0.0", "ok@1.0.0-beta.1+build.5"}
				c.Agents[0].Capabilities = []string{"echo@v1.0.0", "echo@", "echo@1.2.3"}
				c.Gateway.Auth.Peers[0].AllowCapabilities = []string{"web-search@^2", "echo@>=1.2 <2", "echo@^two", "echo@"}
			},
			want: []Problem{
				{Path: "federation.peers[0].capabilities[1]", Message: `"summarization@2.1": version "2.1" is not a semantic version (invalid semantic version); write MAJOR.MINOR.PATCH, like summarization@2.1.0`},
				{Path: "federation.peers[0].capabilities[2]", Message: `"@1.0.0" has no name before the @; write it like web-search@2.1.0`},
				{Path: "gateway.auth.peers[0].allowCapabilities[2]", Message: `"echo@^two": "^two" is not a version constraint (improper constraint: "^two"); write it like echo@^2 or echo@>=2.1 <3`},
				{Path: "gateway.auth.peers[0].allowCapabilities[3]", Message: `"echo@" has no version constraint after the @; write it like echo@^2, or leave out the @ for any version`},
				{Path: "agents[0].capabilities[0]", Message: `"echo@v1.0.0": version "v1.0.0" is not a semantic version (invalid characters in version); write MAJOR.MINOR.PATCH, like echo@2.1.0`},
				{Path: "agents[0].capabilities[1]", Message: `"echo@" has no version after the @; write it like echo@2.1.0, or leave out the @`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.modify(c)
			var got []Problem
			if err := c.Validate(); err != nil {
				var verr *ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("Validate() = %T %v, want *ValidationError", err, err)
				}
				got = verr.Problems
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePeer(t *testing.T) {
	got := ValidatePeer(PeerConfig{ID: "p", Name: "P", URL: "tcp://h:1", AgentID: "a", TimeoutMs: -1}, "peer")
	want := []Problem{
		{Path: "peer.url", Message: `scheme "tcp" is not ws:// or wss://`},
		{Path: "peer.timeoutMs", Message: "must not be negative (got -1); give milliseconds, or 0 for the default"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ValidatePeer() mismatch (-want +got):\n%s", diff)
	}
	if got := ValidatePeer(validConfig().Federation.Peers[0], "peer"); got != nil {
		t.Errorf("ValidatePeer(valid peer) = %v, want none", got)
	}
}

func TestApplyDefaults(t *testing.T) {
	var c Config
	c.Agents = []AgentConfig{{ID: "a"}, {ID: "b", Name: "Bee", Handler: HandlerConfig{Type: "exec"}}}
	c.ApplyDefaults()
	want := Config{
		Federation: FederationConfig{DefaultTimeoutMs: 30000, MaxDynamicPeers: 256, MaxHops: 8,
			Durable:   DurableConfig{MaxAttempts: 10, RetentionMs: 86400000},
			Discovery: DiscoveryConfig{MDNS: MDNSConfig{IntervalMs: 10000}}, Mesh: MeshConfig{MaxHops: 3}},
		Gateway: GatewayConfig{Listen: "127.0.0.1:18789", HeartbeatMs: 5000, ReplayWindowMs: 300000, IdleTimeoutMs: 600000},
		Agents: []AgentConfig{
			{ID: "a", Name: "a", Handler: HandlerConfig{Type: "echo"}, MaxConcurrency: 16, MaxQueue: 1024},
			{ID: "b", Name: "Bee", Handler: HandlerConfig{Type: "exec"}, MaxConcurrency: 16, MaxQueue: 1024},
		},
		Storage: StorageConfig{Dir: "./agentfed-data"},
		Audit:   AuditConfig{MaxSizeMB: 10, MaxFiles: 5},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ApplyDefaults() mismatch (-want +got):\n%s", diff)
	}

	// Set fields are kept, negative ones (where they mean "no limit") too.
	set := want
	set.Agents = []AgentConfig{{ID: "a", Name: "A", Handler: HandlerConfig{Type: "echo"}, MaxConcurrency: 1, MaxQueue: 3}}
	set.Federation.DefaultTimeoutMs, set.Federation.Durable.MaxAttempts = 5, -1
	set.Gateway.Listen, set.Gateway.HeartbeatMs = ":1", 7
	set.Storage.Dir, set.Audit.File = "/d", "/var/log/agentfed/audit.log"
	got := set
	got.Agents = slices.Clone(set.Agents)
	got.ApplyDefaults()
	if diff := cmp.Diff(set, got); diff != "" {
		t.Errorf("ApplyDefaults() changed set fields (-want +got):\n%s", diff)
	}
}

func TestValidationErrorString(t *testing.T) {
	err := &ValidationError{
		File: "agentfed.yaml",
		Problems: []Problem{
			{Path: "federation.peers[0].urll", Line: 7, Message: `unknown key (did you mean "url"?)`},
			{Path: "gateway.listen", Message: "bad"},
			{Line: 3, Message: "invalid YAML: oops"},
		},
	}
	want := `agentfed.yaml: line 7: federation.peers[0].urll: unknown key (did you mean "url"?)
agentfed.yaml: gateway.listen: bad
agentfed.yaml: line 3: invalid YAML: oops`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("Error() mismatch (-want +got):\n%s", diff)
	}
	err.File = ""
	if got, want := err.Error()[:7], "line 7:"; got != want {
		t.Errorf("Error() without file starts %q, want %q", got, want)
	}
}
