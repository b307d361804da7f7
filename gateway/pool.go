package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Pool keeps one Client per key (a peer id) and reuses it for every call.
// A connection that has ended is redialled on the next Get. After a failed
// dial the key backs off (jittered, exponential, reset by a success):
// until the next attempt is due, Gets fail at once with the last error
// rather than piling dials onto a dead peer. Concurrent Gets for one key
// share one dial. A Pool is safe for concurrent use; its zero value is
// ready.
type Pool struct {
	// DialTimeout bounds one dial, independent of the first caller's
	// deadline, so that one impatient caller does not fail the others.
	// Default 10s.
	DialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed dials.
	// Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// RefusedBackoff is the wait after a dial the server refused for good
	// (see RefusedError): a wrong token or role is a configuration to fix,
	// not a flaky network. Default 5 minutes; RetryRefused ends it early.
	RefusedBackoff time.Duration

	mu     sync.RWMutex // guards slots, closed and base
	slots  map[string]*poolSlot
	closed bool
	base   context.Context // parent of every dial; ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // dials in progress
}

// poolSlot is the state kept for one key across connections.
type poolSlot struct {
	entry   *poolEntry // the current or in-progress connection, or nil
	bo      *backoff.ExponentialBackOff
	retryAt time.Time // no dial before this, after a failure
	lastErr error     // why the last dial failed
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
	if c := p.Peek(key); c != nil {
		return c, nil // the common case, under the read lock only
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, NewError(CodeShuttingDown, "gateway: connection pool closed")
	}
	s := p.slotLocked(key)
	if e := s.entry; e != nil && e.finished() && (e.err != nil || e.client.Err() != nil) {
		s.entry = nil // ended: dial again
	}
	if s.entry == nil {
		if wait := time.Until(s.retryAt); wait > 0 {
			err := s.lastErr
			p.mu.Unlock()
			return nil, &backoffError{err: err, wait: wait}
		}
		s.entry = &poolEntry{ready: make(chan struct{})}
		if p.base == nil {
			p.base, p.cancel = context.WithCancel(context.Background())
		}
		p.wg.Add(1)
		go p.dial(p.base, key, s, s.entry, dial)
	}
	e := s.entry
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

// backoffError is returned while a key waits before its next dial. It
// unwraps to the last dial error, so its code survives.
type backoffError struct {
	err  error
	wait time.Duration
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("%v (reconnecting; next attempt in %v)", e.err, e.wait.Round(time.Millisecond))
}
func (e *backoffError) Unwrap() error { return e.err }

func (p *Pool) slotLocked(key string) *poolSlot {
	if p.slots == nil {
		p.slots = make(map[string]*poolSlot)
	}
	s := p.slots[key]
	if s == nil {
		s = &poolSlot{bo: &backoff.ExponentialBackOff{
			InitialInterval:     orDefault(p.MinBackoff, 100*time.Millisecond),
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         orDefault(p.MaxBackoff, 10*time.Second),
		}}
		p.slots[key] = s
	}
	return s
}

func (p *Pool) dial(base context.Context, key string, s *poolSlot, e *poolEntry, dial DialFunc) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(base, orDefault(p.DialTimeout, 10*time.Second))
	defer cancel()
	c, err := dial(ctx)
	var orphan *Client // dropped while dialling: closed outside the lock
	defer func() {
		if orphan != nil {
			orphan.Close()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	current := !p.closed && p.slots[key] == s && s.entry == e
	switch {
	case !current:
		orphan = c
		c, err = nil, NewError(CodeShuttingDown, "gateway: connection dropped while dialling")
	case err == nil:
		s.bo.Reset()
		s.retryAt, s.lastErr = time.Time{}, nil
	case current:
		s.entry = nil
		s.lastErr = err
		s.retryAt = time.Now().Add(s.bo.NextBackOff())
		if Refused(err) {
			s.retryAt = time.Now().Add(orDefault(p.RefusedBackoff, defaultRefusedBackoff))
		}
	}
	e.client, e.err = c, err
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

// Peek returns the open connection for key, or nil; it never dials.
func (p *Pool) Peek(key string) *Client {
	p.mu.RLock()
	var e *poolEntry
	if s := p.slots[key]; s != nil && !p.closed {
		e = s.entry
	}
	p.mu.RUnlock()
	if e == nil || !e.finished() || e.err != nil {
		return nil
	}
	select {
	case <-e.client.Done():
		return nil
	default:
		return e.client
	}
}

// Known reports whether key has been dialled before (its connection may
// have dropped since). Drop forgets a key.
func (p *Pool) Known(key string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.slots[key] != nil
}

// Connected reports whether key has an open connection now.
func (p *Pool) Connected(key string) bool { return p.Peek(key) != nil }

// Drop closes and forgets the connection and backoff state for key; the
// next Get dials at once. Use it when a peer's URL or token changes.
func (p *Pool) Drop(key string) {
	p.mu.Lock()
	s := p.slots[key]
	delete(p.slots, key)
	p.mu.Unlock()
	if s != nil && s.entry != nil && s.entry.finished() && s.entry.client != nil {
		s.entry.client.Close()
	}
}

// Close closes every connection with a close frame and waits for dials in
// progress. Later Gets fail.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	slots := p.slots
	p.slots = nil
	if p.cancel != nil {
		p.cancel() // abandon dials in progress
	}
	p.mu.Unlock()
	p.wg.Wait()
	var wg sync.WaitGroup
	for _, s := range slots {
		if s.entry != nil && s.entry.client != nil {
			wg.Go(func() { s.entry.client.Close() })
		}
	}
	wg.Wait()
}
