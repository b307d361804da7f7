package federation

import (
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// BenchmarkMetricsRelay is what the metrics add to one relay's two ends.
func BenchmarkMetricsRelay(b *testing.B) {
	n := &Node{agents: map[string]*localAgent{"echo": {}}}
	m := newMetrics(n)
	id := &gateway.Identity{PeerID: "main", Authenticated: true}
	res := &Result{}
	b.ReportAllocs()
	for b.Loop() {
		m.relayIn(id, "echo", nil, time.Millisecond)
		m.relayOut("research", "echo", res, time.Millisecond)
	}
}
