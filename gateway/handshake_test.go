package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestHelloOK(t *testing.T) {
	methods := map[string][]string{
		gateway.RoleOperator: {"federation.health", "federation.send"},
		gateway.RolePeer:     {"federation.deliver"},
	}
	srv := startServer(t, &gateway.Server{
		Version:  "1.2.3",
		ServerID: "gw-a",
		Methods:  func(role string) []string { return methods[role] },
		Events:   []string{"agent"},
		Health:   func() any { return map[string]any{"ok": true} },
		Authenticate: func(r *http.Request, p *gateway.ConnectParams) (*gateway.Identity, error) {
			return &gateway.Identity{Role: p.Role, PeerID: p.Client.InstanceID, Scopes: p.Scopes, Authenticated: p.Auth != nil}, nil
		},
		MaxPayload:   1 << 20,
		TickInterval: time.Hour,
	})

	tests := []struct {
		name     string
		opts     *gateway.DialOptions
		wantAuth gateway.HelloAuth
		wantID   gateway.Identity // ConnID and RemoteAddr are checked apart
		// wantServerID is agentfed's addition to server and snapshot, for
		// peers only: operators (OpenClaw's clients) get OpenClaw's shapes.
		wantServerID string
	}{
		{
			name:     "default operator",
			opts:     nil,
			wantAuth: gateway.HelloAuth{Role: gateway.RoleOperator, Scopes: []string{}, Method: "none"},
			wantID: gateway.Identity{Role: gateway.RoleOperator,
				Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Version: "dev", Platform: "go", Mode: gateway.ClientModeBack}},
		},
		{
			name: "peer with token",
			opts: &gateway.DialOptions{Role: gateway.RolePeer, Token: "s3cret", Scopes: []string{"federation"},
				Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Version: "0.9", Platform: "linux", Mode: gateway.ClientModeBack, InstanceID: "gw-b"}},
			wantAuth: gateway.HelloAuth{Role: gateway.RolePeer, Scopes: []string{"federation"}, Method: "token"},
			wantID: gateway.Identity{Role: gateway.RolePeer, PeerID: "gw-b", Authenticated: true, Scopes: []string{"federation"},
				Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Version: "0.9", Platform: "linux", Mode: gateway.ClientModeBack, InstanceID: "gw-b"}},
			wantServerID: "gw-a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv.URL, tt.opts)
			hello := c.Hello()
			want := &gateway.HelloOK{
				Type:     "hello-ok",
				Protocol: gateway.ProtocolVersion,
				Server:   gateway.HelloServer{Version: "1.2.3", ServerID: tt.wantServerID},
				Features: gateway.HelloFeatures{Methods: append(slices.Clone(methods[tt.wantAuth.Role]), gateway.MethodCancel), Events: []string{"tick", "agent"}},
				Auth:     tt.wantAuth,
				Policy:   gateway.HelloPolicy{MaxPayload: 1 << 20, MaxBufferedBytes: 2 << 20, TickIntervalMs: time.Hour.Milliseconds()},
			}
			ignore := cmpopts.IgnoreFields(gateway.HelloOK{}, "Snapshot", "Server.ConnID")
			if diff := cmp.Diff(want, hello, ignore); diff != "" {
				t.Errorf("hello-ok mismatch (-want +got):\n%s", diff)
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(hello.Server.ConnID) {
				t.Errorf("server.connId = %q, want 32 hex digits", hello.Server.ConnID)
			}

			var snap gateway.Snapshot
			if err := json.Unmarshal(hello.Snapshot, &snap); err != nil {
				t.Fatalf("decode snapshot %s: %v", hello.Snapshot, err)
			}
			wantSnap := gateway.Snapshot{Presence: []any{}, Health: map[string]any{"ok": true}, ServerID: tt.wantServerID}
			if tt.wantServerID == "" { // OpenClaw's health snapshot: ok, ts, durationMs
				h, _ := snap.Health.(map[string]any)
				if h["ok"] != true || h["ts"] == nil || h["durationMs"] == nil || len(h) != 3 {
					t.Errorf("operator snapshot.health = %v; want OpenClaw's {ok: true, ts, durationMs}", snap.Health)
				}
				snap.Health = wantSnap.Health
			}
			if diff := cmp.Diff(wantSnap, snap, cmpopts.IgnoreFields(gateway.Snapshot{}, "UptimeMs")); diff != "" {
				t.Errorf("snapshot mismatch (-want +got):\n%s", diff)
			}
			if snap.UptimeMs < 0 {
				t.Errorf("snapshot.uptimeMs = %d, want >= 0", snap.UptimeMs)
			}
			// The wire form must carry every snapshot field OpenClaw requires.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(hello.Snapshot, &raw); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"presence", "health", "stateVersion", "uptimeMs"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("snapshot %s lacks %q", hello.Snapshot, k)
				}
			}

			// The handler sees the identity the handshake established.
			var got gateway.Identity
			if err := c.Call(context.Background(), "whoami", nil, &got); err != nil {
				t.Fatalf("whoami: %v", err)
			}
			if got.ConnID != hello.Server.ConnID {
				t.Errorf("identity ConnID = %q, want the hello's connId %q", got.ConnID, hello.Server.ConnID)
			}
			if !strings.HasPrefix(got.RemoteAddr, "127.0.0.1:") {
				t.Errorf("identity RemoteAddr = %q, want a loopback address", got.RemoteAddr)
			}
			if diff := cmp.Diff(tt.wantID, got, cmpopts.IgnoreFields(gateway.Identity{}, "ConnID", "RemoteAddr")); diff != "" {
				t.Errorf("identity mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelloOKZeroServer(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	hello := dialRaw(t, srv.URL).connect()
	want := gateway.HelloFeatures{Methods: []string{gateway.MethodCancel}, Events: []string{"tick"}}
	if diff := cmp.Diff(want, hello.Features); diff != "" {
		t.Errorf("features mismatch (-want +got):\n%s", diff)
	}
	wantPolicy := gateway.HelloPolicy{MaxPayload: 4 << 20, MaxBufferedBytes: 8 << 20, TickIntervalMs: 30_000}
	if diff := cmp.Diff(wantPolicy, hello.Policy); diff != "" {
		t.Errorf("default policy mismatch (-want +got):\n%s", diff)
	}
}

func TestProtocolNegotiation(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	tests := []struct {
		name   string
		lo, hi int
		want   int
	}{
		{"current", 4, 4, 4},
		{"range", 3, 4, 4},
		{"future range", 3, 9, 4},
		{"v3 only", 3, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.URL)
			c.send(connectFrame("c", tt.lo, tt.hi))
			f := c.response("c")
			if !f.OK {
				t.Fatalf("connect [%d,%d] refused: %+v", tt.lo, tt.hi, f.Error)
			}
			var hello gateway.HelloOK
			if err := json.Unmarshal(f.Payload, &hello); err != nil {
				t.Fatal(err)
			}
			if hello.Protocol != tt.want {
				t.Errorf("hello protocol = %d, want %d", hello.Protocol, tt.want)
			}
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	tests := []struct {
		name        string
		frame       string
		wantCode    string // "" when the frame cannot be answered
		wantDetails string // details.code
		wantClose   websocket.StatusCode
	}{
		{
			name:      "request before connect",
			frame:     `{"type":"req","id":"1","method":"federation.health"}`,
			wantCode:  gateway.CodeInvalidRequest,
			wantClose: websocket.StatusPolicyViolation,
		},
		{
			name:        "protocol too new",
			frame:       connectFrame("1", 5, 6),
			wantCode:    gateway.CodeInvalidRequest,
			wantDetails: "PROTOCOL_MISMATCH",
			wantClose:   websocket.StatusProtocolError,
		},
		{
			name:        "protocol too old",
			frame:       connectFrame("1", 1, 2),
			wantCode:    gateway.CodeInvalidRequest,
			wantDetails: "PROTOCOL_MISMATCH",
			wantClose:   websocket.StatusProtocolError,
		},
		{
			name:        "null params",
			frame:       `{"type":"req","id":"1","method":"connect","params":null}`,
			wantCode:    gateway.CodeInvalidRequest,
			wantDetails: "PROTOCOL_MISMATCH",
			wantClose:   websocket.StatusProtocolError,
		},
		{
			name:      "connect without params",
			frame:     `{"type":"req","id":"1","method":"connect"}`,
			wantCode:  gateway.CodeInvalidRequest,
			wantClose: websocket.StatusPolicyViolation,
		},
		{
			name:      "params of the wrong type",
			frame:     `{"type":"req","id":"1","method":"connect","params":{"minProtocol":"4"}}`,
			wantCode:  gateway.CodeInvalidRequest,
			wantClose: websocket.StatusPolicyViolation,
		},
		{
			name:      "connect without method",
			frame:     `{"type":"req","id":"1","params":{}}`,
			wantCode:  gateway.CodeInvalidRequest,
			wantClose: websocket.StatusPolicyViolation,
		},
		{name: "not JSON", frame: `hello`, wantClose: websocket.StatusPolicyViolation},
		{name: "JSON array", frame: `[]`, wantClose: websocket.StatusPolicyViolation},
		{name: "event first", frame: `{"type":"event","event":"connect"}`, wantClose: websocket.StatusPolicyViolation},
		{name: "connect without id", frame: `{"type":"req","method":"connect","params":{}}`, wantClose: websocket.StatusPolicyViolation},
		{name: "id too long", frame: connectFrame(strings.Repeat("x", 129), 4, 4), wantClose: websocket.StatusPolicyViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.URL)
			c.send(tt.frame)
			if tt.wantCode != "" {
				f := c.response("1")
				if f.OK || f.Error == nil {
					t.Fatalf("got %+v, want a refusal", f)
				}
				if f.Error.Code != tt.wantCode {
					t.Errorf("error code = %q (%s), want %q", f.Error.Code, f.Error.Message, tt.wantCode)
				}
				details, _ := f.Error.Details.(map[string]any)
				if got, _ := details["code"].(string); got != tt.wantDetails {
					t.Errorf("error details = %v, want code %q", f.Error.Details, tt.wantDetails)
				}
			}
			c.expectClose(tt.wantClose)
		})
	}
}

func TestProtocolMismatchDetails(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	c := dialRaw(t, srv.URL)
	c.send(connectFrame("1", 5, 6))
	f := c.response("1")
	want := map[string]any{"code": "PROTOCOL_MISMATCH", "clientMinProtocol": 5.0, "clientMaxProtocol": 6.0, "expectedProtocol": 4.0}
	if diff := cmp.Diff(want, f.Error.Details); diff != "" {
		t.Errorf("details mismatch (-want +got):\n%s", diff)
	}
	c.expectClose(websocket.StatusProtocolError)
}

func TestAuthenticatorRefuses(t *testing.T) {
	tests := []struct {
		name  string
		token string
		err   error
	}{
		{"no token", "", gateway.NewError(gateway.CodeUnauthorized, "a token is required: set auth.token")},
		{"wrong role", "op", gateway.NewError(gateway.CodeForbidden, "operators may not connect as peers")},
		{"plain error", "boom", errors.New("token store unreachable")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := make(chan string, 1)
			srv := startServer(t, &gateway.Server{
				Authenticate: func(r *http.Request, p *gateway.ConnectParams) (*gateway.Identity, error) {
					token := ""
					if p.Auth != nil {
						token = p.Auth.Token
					}
					tokens <- token
					return nil, tt.err
				},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := gateway.Dial(ctx, srv.URL, &gateway.DialOptions{Role: gateway.RolePeer, Token: tt.token})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded, want the authenticator's refusal")
			}
			want := gateway.ToError(tt.err)
			var got *gateway.Error
			if !errors.As(err, &got) {
				t.Fatalf("Dial error %v (%T) is not a *gateway.Error", err, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Dial error mismatch (-want +got):\n%s", diff)
			}
			if !errors.Is(err, gateway.NewError(want.Code, "")) {
				t.Errorf("errors.Is(%v, code %s) = false", err, want.Code)
			}
			if gotToken := <-tokens; gotToken != tt.token {
				t.Errorf("authenticator saw token %q, want %q", gotToken, tt.token)
			}
		})
	}
}

// TestHandshakeTimeout checks that a client that never sends connect is
// closed with a policy-violation close frame once HandshakeTimeout passes.
func TestHandshakeTimeout(t *testing.T) {
	srv := startServer(t, &gateway.Server{HandshakeTimeout: 100 * time.Millisecond})
	c := dialRaw(t, srv.URL)
	start := time.Now()
	c.expectClose(websocket.StatusPolicyViolation)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v, want about 100ms", d)
	}
	checkServing(t, srv.URL)
}

// TestPreConnectReadLimit checks that before connect the server reads at
// most 64 KiB in one frame, whatever its MaxPayload.
func TestPreConnectReadLimit(t *testing.T) {
	srv := startServer(t, &gateway.Server{MaxPayload: 1 << 20})
	tests := []struct {
		name      string
		size      int
		wantClose websocket.StatusCode // 0: connect succeeds
	}{
		{"64 KiB connect", 64 << 10, 0},
		{"64 KiB + 1", 64<<10 + 1, websocket.StatusMessageTooBig},
		{"1 MiB", 1 << 20, websocket.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, srv.URL)
			c.send(paddedConnect(t, tt.size))
			if tt.wantClose == 0 {
				if f := c.response("1"); !f.OK {
					t.Fatalf("connect of %d bytes refused: %+v", tt.size, f.Error)
				}
				return
			}
			c.expectClose(tt.wantClose)
			checkServing(t, srv.URL)
		})
	}
}

// paddedConnect returns a valid connect frame of exactly size bytes.
func paddedConnect(t *testing.T, size int) string {
	t.Helper()
	const head = `{"type":"req","id":"1","method":"connect","params":{"minProtocol":4,"maxProtocol":4,` +
		`"client":{"id":"cli","version":"1","platform":"test","mode":"cli"},"userAgent":"`
	const tail = `"}}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("cannot pad a connect frame to %d bytes", size)
	}
	f := head + strings.Repeat("a", pad) + tail
	if len(f) != size {
		t.Fatalf("padded connect has %d bytes, want %d", len(f), size)
	}
	return f
}
