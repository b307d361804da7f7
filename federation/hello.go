package federation

import "time"

// helloHealth is the health in every hello-ok snapshot: the gateway's
// serverId, status and uptime only. It is the same for every caller,
// whatever its grants (a peer may be denied federation.health), and its
// size does not grow with the number of peers or agents, so that no number
// of them can push hello-ok past a client's frame limit. The full picture
// is federation.health's.
func (n *Node) helloHealth() *Health {
	return &Health{ServerID: n.serverID, Status: "ok", UptimeMs: time.Since(n.started).Milliseconds()}
}
