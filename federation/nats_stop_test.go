package federation_test

import (
	"testing"
	"time"
)

// TestNATSStopWithSystemGone: a gateway whose NATS system has gone away
// stops at once, instead of waiting out every drain and acknowledgement
// that can no longer come (about 25 s before).
func TestNATSStopWithSystemGone(t *testing.T) {
	hub, url := natsHub(t, "hub", "")
	member := natsMember(t, url, "site-b", "data", "sql")
	hub.stop(t) // and with it the embedded nats-server
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		member.stop(t)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second): // the drains alone waited 10 s each
		t.Error("a gateway whose NATS system is gone still stopping after 5 s")
		<-stopped
	}
}
