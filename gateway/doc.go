// Package gateway is agentfed's wire: the gateway protocol, compatible with
// OpenClaw's, over WebSocket (github.com/coder/websocket).
//
// Frames are JSON text messages of three shapes: Request ("req"), Response
// ("res") and Event ("event"). A server sends a connect.challenge event when
// a connection opens; the client's first request must be connect, answered
// by a HelloOK payload; after that many requests share the connection
// concurrently, matched by id. Errors carry a stable code (the Code*
// constants) and a message.
//
// Server accepts connections (it is an http.Handler) and dispatches
// requests to a Handler with the caller's Identity. Client dials, performs
// the handshake and runs concurrent Calls. Pool keeps one Client per peer.
// Guard holds the checks every HTTP request to a gateway's listener must
// pass (browser Origin allow-list, a local Host for local trust); Server
// applies it, caps open and handshaking connections (HTTP 503 beyond), and
// Revoke closes the connections whose credentials are withdrawn.
// The machinery that makes the wire fast (write batching under the
// WebSocket library, reads a caller can interrupt so that it reads its own
// answer, handlers served on a connection's reader) lives in
// internal/wsconn, whose doc says what it relies on.
// Server, Client and Pool are safe for concurrent use. docs/PROTOCOL.md
// describes the protocol and agentfed's federation.* methods.
package gateway
