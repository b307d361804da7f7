package gateway

import "time"

// OpenClaw's clients (its CLI, its GatewayClient, its plugins) connect to an
// agentfed gateway as operators and check what they receive against
// OpenClaw's protocol schemas, which allow no field they do not define. So
// operators get hello-ok in exactly OpenClaw's shape; agentfed's additions
// (serverId in server and snapshot, federation health in the snapshot) go
// to peers only, which are agentfed gateways.

// Health is OpenClaw's health snapshot (the health method's payload, and
// hello-ok's snapshot.health) in its smallest valid form.
type Health struct {
	OK         bool  `json:"ok"` // always true: an answering gateway is up
	Ts         int64 `json:"ts"` // Unix milliseconds
	DurationMs int64 `json:"durationMs"`
}

// NewHealth returns the health snapshot of an answering gateway.
func NewHealth() *Health {
	return &Health{OK: true, Ts: time.Now().UnixMilli()}
}

// openClawHello puts hello-ok and its snapshot in OpenClaw's shape.
func openClawHello(h *HelloOK, snap *Snapshot) {
	h.Server.ServerID = ""
	snap.ServerID = ""
	snap.Health = NewHealth()
}
