package natsbus

import (
	"errors"
	"regexp"
	"sync"

	"github.com/nats-io/nats.go"
)

// A publish the server's subject permissions refuse is reported to the
// connection asynchronously, and a request on it would otherwise wait
// for its timeout: OnDenied lets the requester give up at once.

var deniedPublishRe = regexp.MustCompile(`Publish to "(\S+)"`)

// denials are the callbacks waiting for a refused publish, by subject.
type denials struct {
	mu    sync.Mutex
	next  int
	calls map[string]map[int]func()
}

// OnDenied calls f if the server refuses this connection's publish to
// subject, until stop is called.
func (b *Bus) OnDenied(subject string, f func()) (stop func()) {
	d := &b.denied
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.calls == nil {
		d.calls = map[string]map[int]func(){}
	}
	if d.calls[subject] == nil {
		d.calls[subject] = map[int]func(){}
	}
	d.next++
	k := d.next
	d.calls[subject][k] = f
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.calls[subject], k)
		if len(d.calls[subject]) == 0 {
			delete(d.calls, subject)
		}
	}
}

// asyncError is the connection's error callback.
func (b *Bus) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	m := deniedPublishRe.FindStringSubmatch(err.Error())
	if m == nil {
		return
	}
	d := &b.denied
	d.mu.Lock()
	var fs []func()
	for _, f := range d.calls[m[1]] {
		fs = append(fs, f)
	}
	d.mu.Unlock()
	for _, f := range fs {
		f()
	}
}
