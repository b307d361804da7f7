package federation

// Config is a whole agentfed configuration file. The federation section is
// the seed's, unchanged; gateway, agents and storage are agentfed's own.
// The zero Config is not ready: call ApplyDefaults, then Validate.
type Config struct {
	Federation FederationConfig `yaml:"federation" json:"federation"`
	Gateway    GatewayConfig    `yaml:"gateway" json:"gateway"`
	Agents     []AgentConfig    `yaml:"agents" json:"agents"`
	Storage    StorageConfig    `yaml:"storage" json:"storage"`
	Audit      AuditConfig      `yaml:"audit" json:"audit"`
	// NATS is the NATS system of federation.transport nats (nats_config.go).
	NATS NATSConfig `yaml:"nats" json:"nats"`
}

// FederationConfig is the seed's federation section.
type FederationConfig struct {
	// Enabled turns federation on; a disabled gateway still serves its local
	// agents' capabilities but refuses tool actions and relays. Default false.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// ServerID names this gateway to its peers. Default: a stable generated
	// id kept in storage.dir.
	ServerID string `yaml:"serverId" json:"serverId"`
	// DefaultTimeoutMs bounds a request when neither the call nor the peer
	// sets a timeout. Default 30000.
	DefaultTimeoutMs int `yaml:"defaultTimeoutMs" json:"defaultTimeoutMs"`
	// AllowDynamicPeers permits register_peer and unregister_peer. Default true.
	AllowDynamicPeers *bool `yaml:"allowDynamicPeers" json:"allowDynamicPeers"`
	// MaxDynamicPeers caps how many peers register_peer may add. An
	// agentfed addition. Default 256.
	MaxDynamicPeers int `yaml:"maxDynamicPeers" json:"maxDynamicPeers,omitempty"`
	// RequireAuth makes a token mandatory on every peer, and makes the
	// gateway refuse peer connections whose token matches no
	// gateway.auth.peers entry.
	RequireAuth bool         `yaml:"requireAuth" json:"requireAuth"`
	Peers       []PeerConfig `yaml:"peers" json:"peers"`
	// MaxHops is how many relays a chain of agents passing work on (an
	// agent's tool call while it handles a relayed message) may make;
	// a message past it is refused with HOP_LIMIT. Default 8. An agentfed
	// addition to the seed's section.
	MaxHops int `yaml:"maxHops" json:"maxHops,omitempty"`
	// Transport is how this gateway reaches other gateways: "websocket"
	// (the default: federation.peers) or "nats" (the nats section). An
	// agentfed addition to the seed's section.
	Transport string `yaml:"transport" json:"transport,omitempty"`
	// Delegation chooses how delegate picks among capable peers. An
	// agentfed addition to the seed's section.
	Delegation DelegationConfig `yaml:"delegation" json:"delegation"`
	// Durable bounds the retries of durable messages and how long their
	// records are kept. An agentfed addition to the seed's section.
	Durable DurableConfig `yaml:"durable" json:"durable"`
	// Discovery finds gateways on the local network by mDNS; see
	// discovery.go. An agentfed addition.
	Discovery DiscoveryConfig `yaml:"discovery" json:"discovery"`
	// Mesh lets this gateway reach the agents of its peers' peers; see
	// mesh.go. An agentfed addition.
	Mesh MeshConfig `yaml:"mesh" json:"mesh"`
}

// DurableConfig bounds durable delivery.
type DurableConfig struct {
	// MaxAttempts is how many delivery attempts that reached the peer's
	// gateway (it answered with a retryable error, or did not answer in
	// time) a durable message gets before it is dead. Attempts that could
	// not reach the peer do not count. Default 10; negative: no limit.
	MaxAttempts int `yaml:"maxAttempts" json:"maxAttempts,omitempty"`
	// MaxAgeMs is how long a durable message without its own ttlMs may
	// wait for delivery before it is dead. Default 0: no limit.
	MaxAgeMs int `yaml:"maxAgeMs" json:"maxAgeMs,omitempty"`
	// RetentionMs is how long delivered outbox entries, and the records of
	// handled durable messages that deduplicate redeliveries, are kept.
	// Default 86400000 (24 h).
	RetentionMs int `yaml:"retentionMs" json:"retentionMs,omitempty"`
}

// DelegationConfig tunes the delegate action.
type DelegationConfig struct {
	// Strategy is round-robin (default), least-loaded, lowest-latency or
	// random. A delegate call may override it with "strategy".
	Strategy string `yaml:"strategy" json:"strategy,omitempty"`
}

// DynamicPeersAllowed reports the effective allowDynamicPeers.
func (c *FederationConfig) DynamicPeersAllowed() bool {
	return c.AllowDynamicPeers == nil || *c.AllowDynamicPeers
}

// PeerConfig is one entry of federation.peers, exactly the seed's fields.
type PeerConfig struct {
	ID           string   `yaml:"id" json:"id"`
	Name         string   `yaml:"name" json:"name"`
	URL          string   `yaml:"url" json:"url"`
	Token        string   `yaml:"token" json:"token,omitempty"`
	AgentID      string   `yaml:"agentId" json:"agentId"`
	Capabilities []string `yaml:"capabilities" json:"capabilities"`
	Description  string   `yaml:"description" json:"description,omitempty"`
	Enabled      *bool    `yaml:"enabled" json:"enabled,omitempty"`
	TimeoutMs    int      `yaml:"timeoutMs" json:"timeoutMs,omitempty"`
	// ServerID is the peer gateway's serverId, agentfed's addition. When
	// set, the gateway dialled must say it is that server, and while the
	// peer is disabled its inbound connections are refused too.
	ServerID string `yaml:"serverId" json:"serverId,omitempty"`
	// TLS tunes how a wss:// peer's certificate is verified. agentfed's
	// addition; by default system roots verify it.
	TLS *PeerTLSConfig `yaml:"tls" json:"tls,omitempty"`
	// PublicKey pins the peer gateway's Ed25519 signing key
	// (ed25519:<base64url>, from its `agentfed identity`): its replies must
	// be signed by it. agentfed's addition.
	PublicKey string `yaml:"publicKey" json:"publicKey,omitempty"`
	// EncryptionKey is the peer gateway's X25519 key (x25519:<base64url>):
	// when set, the content and context of every message to the peer are
	// sealed so that only it can read them. agentfed's addition.
	EncryptionKey string `yaml:"encryptionKey" json:"encryptionKey,omitempty"`
	// Type is "gateway" (the default: an agentfed gateway at a ws:// or
	// wss:// URL) or "a2a" (an A2A 1.0 agent whose card is at the http://
	// or https:// URL; Token is sent as its bearer token). agentfed's
	// addition; see a2apeer.go.
	Type string `yaml:"type" json:"type,omitempty"`
}

// PeerTLSConfig says how to verify one wss:// peer, and which client
// certificate to present to it.
type PeerTLSConfig struct {
	// CAFile is a PEM bundle of CAs trusted for this peer instead of the
	// system roots.
	CAFile string `yaml:"caFile" json:"caFile,omitempty"`
	// PinSHA256 is the SHA-256 of the peer certificate's public key
	// (SubjectPublicKeyInfo), hex or base64: the connection fails unless a
	// certificate in the chain has it.
	PinSHA256 string `yaml:"pinSha256" json:"pinSha256,omitempty"`
	// InsecureSkipVerify turns verification off. Never for production; the
	// gateway logs a warning for every peer that sets it.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify" json:"insecureSkipVerify,omitempty"`
	// CertFile and KeyFile are this gateway's client certificate, for a
	// peer that requires mutual TLS.
	CertFile string `yaml:"certFile" json:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile" json:"keyFile,omitempty"`
}

// IsEnabled reports the effective enabled flag (default true).
func (p *PeerConfig) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// GatewayConfig says where this gateway listens and who may connect.
type GatewayConfig struct {
	// Listen is the TCP address of the WebSocket server. Default
	// 127.0.0.1:18789.
	Listen string     `yaml:"listen" json:"listen"`
	Auth   AuthConfig `yaml:"auth" json:"auth"`
	// HeartbeatMs is how often connected peers are pinged to measure RTT
	// and notice silent failures. Default 5000.
	HeartbeatMs int `yaml:"heartbeatMs" json:"heartbeatMs,omitempty"`
	// Breaker tunes the per-peer circuit breakers.
	Breaker BreakerConfig `yaml:"breaker" json:"breaker"`
	// Limits bound what each peer connected to this gateway may ask of it.
	Limits LimitsConfig `yaml:"limits" json:"limits"`
	// DynamicPeerHosts restricts where register_peer may make this
	// gateway connect. Each entry is an IP address ("127.0.0.1"), a CIDR
	// ("10.20.0.0/16") or a host name pattern ("*.agents.example.com").
	// A dynamic peer's URL host must match an entry, and at every dial the
	// address connected to must be in an IP or CIDR entry or be public.
	// Empty: any host. Keeps register_peer from making this gateway dial
	// arbitrary internal addresses; see peerhosts.go.
	DynamicPeerHosts []string `yaml:"dynamicPeerHosts" json:"dynamicPeerHosts,omitempty"`
	// ReplayWindowMs is how far a relayed message's timestamp may be from
	// this gateway's clock; messages outside it are refused as stale.
	// Default 300000 (5 minutes).
	ReplayWindowMs int `yaml:"replayWindowMs" json:"replayWindowMs,omitempty"`
	// IdleTimeoutMs closes a connection that has sent nothing, not even a
	// heartbeat ping, for this long. Default 600000 (10 minutes).
	IdleTimeoutMs int `yaml:"idleTimeoutMs" json:"idleTimeoutMs,omitempty"`
	// TickIntervalMs is how often the gateway sends every connection the
	// keepalive event tick, as OpenClaw's gateway does (hello-ok announces
	// it as policy.tickIntervalMs). Default 30000; at least 100.
	TickIntervalMs int `yaml:"tickIntervalMs" json:"tickIntervalMs,omitempty"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose
	// pages may connect. Browsers send an Origin with every WebSocket; a
	// request with an Origin not listed is refused (403), which keeps web
	// pages, rebound DNS names included, away from the gateway. Default
	// empty: no browser origin. Programs (CLI, peers) send no Origin.
	AllowedOrigins []string `yaml:"allowedOrigins" json:"allowedOrigins,omitempty"`
	// Metrics can serve /metrics on a listener of its own.
	Metrics MetricsConfig `yaml:"metrics" json:"metrics"`
	// TLS makes the gateway serve wss:// instead of ws://.
	TLS ServerTLSConfig `yaml:"tls" json:"tls"`
	// Signing turns on application-layer signatures; see docs/SECURITY.md.
	Signing SigningConfig `yaml:"signing" json:"signing"`
}

// SigningConfig says whether this gateway signs what it sends and insists
// on signatures from its peers. The keys are the gateway's identity,
// generated under storage.dir; the peers' keys are pinned on
// gateway.auth.peers[].publicKey and federation.peers[].publicKey.
type SigningConfig struct {
	// Sign signs every outgoing relayed message and every reply.
	Sign bool `yaml:"sign" json:"sign,omitempty"`
	// Require refuses relayed messages that are not signed by a key pinned
	// for their sender, so every gateway.auth.peers entry needs publicKey.
	// Without it, only the peers with a pinned key must sign.
	Require bool `yaml:"require" json:"require,omitempty"`
}

// MetricsConfig is gateway.metrics.
type MetricsConfig struct {
	// Listen, when set, is a separate address (host:port) that serves
	// /metrics and nothing else, for instance for a Prometheus on a
	// private port; gateway.listen then no longer serves it. The same
	// operator credentials, Origin checks and TLS as gateway.listen apply.
	// Default empty: /metrics is on gateway.listen.
	Listen string `yaml:"listen" json:"listen,omitempty"`
}

// ServerTLSConfig is the gateway's own certificate, reloaded when the
// files change, and optional mutual TLS.
type ServerTLSConfig struct {
	CertFile string `yaml:"certFile" json:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile" json:"keyFile,omitempty"`
	// ClientCAFile, when set, makes the gateway ask connecting clients
	// for a certificate signed by these CAs. A peer whose certificate
	// names (CN or a DNS SAN) a gateway.auth.peers serverId is
	// authenticated as that serverId without a token.
	ClientCAFile string `yaml:"clientCaFile" json:"clientCaFile,omitempty"`
	// RequireClientCert refuses TLS connections without a valid client
	// certificate.
	RequireClientCert bool `yaml:"requireClientCert" json:"requireClientCert,omitempty"`
}

// BreakerConfig tunes the circuit breaker kept for each peer.
type BreakerConfig struct {
	// Failures is how many consecutive failed deliveries open the
	// circuit. Default 5.
	Failures int `yaml:"failures" json:"failures,omitempty"`
	// OpenMs is how long the circuit stays open before a probe. Default
	// 10000.
	OpenMs int `yaml:"openMs" json:"openMs,omitempty"`
}

// LimitsConfig bounds inbound load per peer gateway.
type LimitsConfig struct {
	// PeerRatePerSec is the sustained rate of requests one peer may send;
	// beyond it requests fail with RATE_LIMITED. Default 20000; negative
	// means unlimited.
	PeerRatePerSec float64 `yaml:"peerRatePerSec" json:"peerRatePerSec,omitempty"`
	// PeerBurst is how many requests above the rate one peer may send at
	// once. Default 2 x PeerRatePerSec.
	PeerBurst int `yaml:"peerBurst" json:"peerBurst,omitempty"`
	// MaxConnections caps the connections open at once (operators and
	// peers); beyond it new ones are refused with HTTP 503. Default 4096.
	MaxConnections int `yaml:"maxConnections" json:"maxConnections,omitempty"`
	// MaxHandshakes caps the connections that have not completed connect
	// (each may take 15 s); beyond it new ones are refused with HTTP 503.
	// Default 256.
	MaxHandshakes int `yaml:"maxHandshakes" json:"maxHandshakes,omitempty"`
}

// AuthConfig holds the credentials this gateway accepts.
type AuthConfig struct {
	// OperatorToken is required from local clients (CLI, MCP, dashboard).
	// When empty, operator connections are accepted only from loopback
	// with a Host that names this machine (gateway.Guard.Local); `agentfed
	// serve` never leaves it empty (see LoadOperatorToken).
	OperatorToken string `yaml:"operatorToken" json:"operatorToken,omitempty"`
	// Peers lists which peer gateways may connect, and with which token.
	Peers []PeerCredential `yaml:"peers" json:"peers,omitempty"`
	// A2A lists the A2A clients that may call this gateway's agents, and
	// with which token. When empty, gateway.auth.peers tokens are accepted
	// at A2A instead (deprecated).
	A2A []A2ACredential `yaml:"a2a" json:"a2a,omitempty"`
}

// PeerCredential lets the gateway named ServerID connect as a peer when it
// presents Token (or, during a rotation, PreviousToken), and says what it
// may do. Empty allow-lists allow everything.
type PeerCredential struct {
	ServerID string `yaml:"serverId" json:"serverId"`
	Token    string `yaml:"token" json:"token"`
	// PreviousToken stays valid alongside Token while peers switch over;
	// remove it (and reload with SIGHUP) when they have.
	PreviousToken string `yaml:"previousToken" json:"previousToken,omitempty"`
	// AllowAgents lists the local agent ids this peer may reach.
	AllowAgents []string `yaml:"allowAgents" json:"allowAgents,omitempty"`
	// AllowCapabilities: this peer may reach only agents that have at
	// least one of these capabilities.
	AllowCapabilities []string `yaml:"allowCapabilities" json:"allowCapabilities,omitempty"`
	// AllowMethods lists the gateway methods this peer may call (of
	// federation.relay, federation.capabilities, federation.health).
	AllowMethods []string `yaml:"allowMethods" json:"allowMethods,omitempty"`
	// AllowActions lists the tool actions this gateway's agents (llm) may
	// run on behalf of this peer's messages: delegate, send, list_peers...
	// Unlike the lists above, empty allows none: a peer makes this gateway
	// act elsewhere only when configured to.
	AllowActions []string `yaml:"allowActions" json:"allowActions,omitempty"`
	// RatePerSec overrides gateway.limits.peerRatePerSec for this peer.
	RatePerSec float64 `yaml:"ratePerSec" json:"ratePerSec,omitempty"`
	// MaxMessageBytes caps the size of one relayed request from this peer:
	// the whole message with its ids, content, context, seal and
	// signature. Default: the frame limit (4 MiB).
	MaxMessageBytes int `yaml:"maxMessageBytes" json:"maxMessageBytes,omitempty"`
	// PublicKey pins this peer's Ed25519 signing key (ed25519:<base64url>,
	// from its `agentfed identity`): its messages must be signed by it.
	PublicKey string `yaml:"publicKey" json:"publicKey,omitempty"`
}

// AgentConfig is one local agent hosted by this gateway.
type AgentConfig struct {
	ID           string        `yaml:"id" json:"id"`
	Name         string        `yaml:"name" json:"name,omitempty"`
	Capabilities []string      `yaml:"capabilities" json:"capabilities"`
	Description  string        `yaml:"description" json:"description,omitempty"`
	Handler      HandlerConfig `yaml:"handler" json:"handler"`
	// MaxConcurrency is how many messages the agent handles at once; the
	// rest wait in a priority queue (urgent first, with ageing). Default 16.
	MaxConcurrency int `yaml:"maxConcurrency" json:"maxConcurrency,omitempty"`
	// MaxQueue is how many messages may wait, shared fairly by the peers
	// sending them (see internal/queue); beyond it a message is
	// refused with OVERLOADED. Default 1024.
	MaxQueue int `yaml:"maxQueue" json:"maxQueue,omitempty"`
}

// HandlerConfig chooses a built-in agent kind; see package agent.
type HandlerConfig struct {
	// Type is echo, exec, http, openclaw or llm.
	Type string `yaml:"type" json:"type"`
	// Command is the argv of an exec agent.
	Command []string `yaml:"command" json:"command,omitempty"`
	// Dir is the working directory of an exec agent.
	Dir string `yaml:"dir" json:"dir,omitempty"`
	// URL is where an http agent POSTs messages, or the ws:// or wss://
	// address of an openclaw agent's OpenClaw gateway.
	URL string `yaml:"url" json:"url,omitempty"`
	// Token is an openclaw agent's OpenClaw gateway token; ${VAR} expands.
	Token string `yaml:"token" json:"-"`
	// AgentID is the OpenClaw agent an openclaw agent runs. Default "main".
	AgentID string `yaml:"agentId" json:"agentId,omitempty"`
	// TimeoutMs caps one invocation even when the caller allows longer.
	TimeoutMs int `yaml:"timeoutMs" json:"timeoutMs,omitempty"`
	// Env is set in an exec agent's environment, which otherwise holds only
	// a few of the gateway's variables (PATH, HOME, locale, time zone: see
	// agent.BaseEnv). Values may be written ${VAR}.
	Env map[string]string `yaml:"env" json:"env,omitempty"`

	// The fields below configure an llm agent: a model behind an
	// OpenAI-compatible Chat Completions endpoint (see agent.LLM).

	// BaseURL is the API's base, to which /chat/completions is appended:
	// https://api.openai.com/v1, http://127.0.0.1:11434/v1 (Ollama), ...
	BaseURL string `yaml:"baseUrl" json:"baseUrl,omitempty"`
	// Model is the model name the endpoint serves.
	Model string `yaml:"model" json:"model,omitempty"`
	// APIKey is sent as a bearer token; write it ${VAR}. Optional for
	// local servers.
	APIKey string `yaml:"apiKey" json:"-"`
	// System is the system prompt.
	System string `yaml:"system" json:"system,omitempty"`
	// Temperature is passed on when set (0 to 2).
	Temperature *float64 `yaml:"temperature" json:"temperature,omitempty"`
	// MaxTokens caps each completion; 0 leaves it to the endpoint.
	MaxTokens int `yaml:"maxTokens" json:"maxTokens,omitempty"`
	// MaxSteps caps the model calls for one message (each tool-calling
	// round is one). Default 8.
	MaxSteps int `yaml:"maxSteps" json:"maxSteps,omitempty"`
	// Tools are what the model may call.
	Tools LLMToolsConfig `yaml:"tools" json:"tools,omitempty"`
	// MCPServers are MCP servers whose tools the model may call too, as
	// NAME__TOOL.
	MCPServers []MCPServerConfig `yaml:"mcpServers" json:"mcpServers,omitempty"`
}

// MCPServerConfig is an MCP server an llm agent connects to for each
// message it handles: a program on stdio, or a streamable HTTP endpoint.
type MCPServerConfig struct {
	// Name prefixes the server's tools for the model (letters, digits, _
	// and -, at most 32).
	Name string `yaml:"name" json:"name"`
	// Command starts a stdio server (argv, no shell). Its environment is
	// an exec agent's: agent.BaseEnv and Env.
	Command []string `yaml:"command" json:"command,omitempty"`
	// Env is set in a stdio server's environment; values may be ${VAR}.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// URL is a streamable HTTP server's endpoint.
	URL string `yaml:"url" json:"url,omitempty"`
	// Headers are sent with every HTTP request (Authorization, ...);
	// values may be ${VAR}.
	Headers map[string]string `yaml:"headers" json:"-"`
}

// LLMToolsConfig says which tools an llm agent's model may call.
type LLMToolsConfig struct {
	// AllowActions lists the agent_federation actions the model may run on
	// its own gateway, on behalf of the message's sender: only those the
	// sender is granted too (gateway.auth.peers[].allowActions) run.
	// Empty: the model gets no tool.
	AllowActions []string `yaml:"allowActions" json:"allowActions,omitempty"`
}

// StorageConfig says where the gateway keeps state across restarts.
type StorageConfig struct {
	// Dir holds the generated server id, dynamic peers and synced context.
	// Default ./agentfed-data.
	Dir string `yaml:"dir" json:"dir"`
}

// Defaults used when a field is unset.
const (
	DefaultListen    = "127.0.0.1:18789"
	DefaultTimeoutMs = 30000
	DefaultStorage   = "./agentfed-data"
)
