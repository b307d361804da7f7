package gateway

import "encoding/json"

// ProtocolVersion is the gateway protocol version this package speaks,
// OpenClaw's current one. MinProtocolVersion is the oldest it still accepts
// (OpenClaw's legacy v3 nodes and probes). A connect whose
// [minProtocol, maxProtocol] range misses both is refused.
const (
	ProtocolVersion    = 4
	MinProtocolVersion = 3
)

// negotiate picks the highest version both sides speak, or 0.
func negotiate(lo, hi int) int {
	v := min(hi, ProtocolVersion)
	if v < MinProtocolVersion || v < lo {
		return 0
	}
	return v
}

// Roles a connection may ask for in connect. OpenClaw defines operator
// (and node); agentfed adds peer for gateway-to-gateway connections.
const (
	RoleOperator = "operator" // local clients: CLI, MCP server, dashboard
	RolePeer     = "peer"     // another gateway
)

// The client identity agentfed sends, from OpenClaw's allowed values.
const (
	ClientIDGateway = "gateway-client"
	ClientIDCLI     = "cli"
	ClientModeBack  = "backend"
	ClientModeCLI   = "cli"
)

// ClientInfo identifies the connecting program, as in OpenClaw's connect.
type ClientInfo struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
	Version     string `json:"version"`
	Platform    string `json:"platform"`
	Mode        string `json:"mode"`
	InstanceID  string `json:"instanceId,omitempty"`
}

// ConnectAuth carries the caller's credentials.
type ConnectAuth struct {
	Token    string `json:"token,omitempty"`
	Password string `json:"password,omitempty"`
}

// ConnectParams are the params of the first request on every connection.
// Unknown fields sent by OpenClaw clients (device, permissions, ...) are
// accepted and ignored. A peer gateway names its serverId in
// client.instanceId, since OpenClaw's schema allows no extra fields.
type ConnectParams struct {
	MinProtocol int          `json:"minProtocol"`
	MaxProtocol int          `json:"maxProtocol"`
	Client      ClientInfo   `json:"client"`
	Caps        []string     `json:"caps,omitempty"`
	Role        string       `json:"role,omitempty"`
	Scopes      []string     `json:"scopes,omitempty"`
	Auth        *ConnectAuth `json:"auth,omitempty"`
	Locale      string       `json:"locale,omitempty"`
	UserAgent   string       `json:"userAgent,omitempty"`
}

// HelloOK is the payload of a successful connect response.
type HelloOK struct {
	Type     string          `json:"type"` // always "hello-ok"
	Protocol int             `json:"protocol"`
	Server   HelloServer     `json:"server"`
	Features HelloFeatures   `json:"features"`
	Snapshot json.RawMessage `json:"snapshot"`
	Auth     HelloAuth       `json:"auth"`
	Policy   HelloPolicy     `json:"policy"`
}

// HelloAuth says what the connection was granted.
type HelloAuth struct {
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
	Method string   `json:"method,omitempty"` // none or token
}

// Snapshot is the hello-ok snapshot: the minimum OpenClaw requires, plus
// agentfed's serverId. Presence is always empty.
type Snapshot struct {
	Presence     []any        `json:"presence"`
	Health       any          `json:"health"`
	StateVersion StateVersion `json:"stateVersion"`
	UptimeMs     int64        `json:"uptimeMs"`
	ServerID     string       `json:"serverId,omitempty"`
}

// StateVersion counts presence and health changes.
type StateVersion struct {
	Presence int64 `json:"presence"`
	Health   int64 `json:"health"`
}

// HelloServer describes the accepting gateway.
type HelloServer struct {
	Version string `json:"version"`
	Host    string `json:"host,omitempty"`
	ConnID  string `json:"connId"`
	// ServerID is agentfed's addition: the accepting gateway's serverId.
	ServerID string `json:"serverId,omitempty"`
}

// HelloFeatures lists the methods and events the connection may use.
type HelloFeatures struct {
	Methods []string `json:"methods"`
	Events  []string `json:"events"`
}

// HelloPolicy tells the client the limits the server enforces.
type HelloPolicy struct {
	MaxPayload       int64 `json:"maxPayload"`
	MaxBufferedBytes int64 `json:"maxBufferedBytes"`
	TickIntervalMs   int64 `json:"tickIntervalMs"`
}

// Challenge is the payload of the connect.challenge event a server sends
// as soon as a connection opens.
type Challenge struct {
	Nonce string `json:"nonce"`
	TS    int64  `json:"ts"`
}

// TickEvent is the payload of the keepalive tick event.
type TickEvent struct {
	TS int64 `json:"ts"`
}

// Identity is who a connection authenticated as. Handlers receive it with
// every request.
type Identity struct {
	Role string
	// PeerID is the serverId of a peer connection: from its credential when
	// Authenticated, else as claimed in client.instanceId.
	PeerID        string
	Authenticated bool
	Scopes        []string
	ConnID        string
	RemoteAddr    string
	Client        ClientInfo
	// Credential is set by the Authenticator: a fingerprint of what the
	// connection authenticated with (never the secret itself), so that a
	// later Server.Revoke can tell whether it is still valid.
	Credential string
}
