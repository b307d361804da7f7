package gateway

import (
	"context"
	"sync"
	"time"
)

// Pool keeps one Client per key (a peer id) and reuses it for every call.
// A connection that has ended is redialled on the next Get. Concurrent Gets
// for the same key share one dial. A Pool is safe for concurrent use; its
// zero value is ready.
type Pool struct {
	// DialTimeout bounds one dial, independent of the first caller's
	// deadline, so that one impatient caller does not fail the others.
	// Default 10s.
	DialTimeout time.Duration

	mu      sync.Mutex // guards entries and closed
	entries map[string]*poolEntry
	closed  bool
	wg      sync.WaitGroup // dials in progress
}

type poolEntry struct {
	ready  chan struct{} // closed when the dial finished
	client *Client       // set before ready is closed, on success
	err    error         // set before ready is closed, on failure
}

// DialFunc opens a new connection for a pool key.
type DialFunc func(ctx context.Context) (*Client, error)

// Get returns the open connection for key, dialling with dial when there
// is none or it has ended.
func (p *Pool) Get(ctx context.Context, key string, dial DialFunc) (*Client, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, NewError(CodeShuttingDown, "gateway: connection pool closed")
	}
	e := p.entries[key]
	if e != nil && e.finished() && (e.err != nil || e.client.Err() != nil) {
		e = nil // dead: dial again
	}
	if e == nil {
		e = &poolEntry{ready: make(chan struct{})}
		if p.entries == nil {
			p.entries = make(map[string]*poolEntry)
		}
		p.entries[key] = e
		p.wg.Add(1)
		go p.dial(key, e, dial)
	}
	p.mu.Unlock()

	select {
	case <-e.ready:
		if e.err != nil {
			return nil, e.err
		}
		return e.client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Pool) dial(key string, e *poolEntry, dial DialFunc) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), orDefault(p.DialTimeout, 10*time.Second))
	defer cancel()
	c, err := dial(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil && (p.closed || p.entries[key] != e) {
		c.Close() // dropped while dialling
		err = NewError(CodeShuttingDown, "gateway: connection dropped while dialling")
		c = nil
	}
	e.client, e.err = c, err
	if err != nil && p.entries[key] == e {
		delete(p.entries, key) // the next Get dials afresh
	}
	close(e.ready)
}

func (e *poolEntry) finished() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// Connected reports whether key has an open connection now.
func (p *Pool) Connected(key string) bool {
	p.mu.Lock()
	e := p.entries[key]
	p.mu.Unlock()
	return e != nil && e.finished() && e.err == nil && e.client.Err() == nil
}

// Drop closes and forgets the connection for key, if any; the next Get
// dials again. Use it when a peer's URL or token changes.
func (p *Pool) Drop(key string) {
	p.mu.Lock()
	e := p.entries[key]
	delete(p.entries, key)
	p.mu.Unlock()
	if e != nil && e.finished() && e.client != nil {
		e.client.Close()
	}
}

// Close closes every connection with a close frame and waits for dials in
// progress. Later Gets fail.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = nil
	p.mu.Unlock()
	p.wg.Wait()
	var wg sync.WaitGroup
	for _, e := range entries {
		if e.client != nil {
			wg.Go(func() { e.client.Close() })
		}
	}
	wg.Wait()
}
