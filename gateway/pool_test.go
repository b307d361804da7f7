package gateway_test

import (
	"context"
	"errors"
	"github.com/agentfed/agentfed/internal/tstest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// countingDialer dials url and counts the dials; while gate is set, each
// dial waits for it to close.
type countingDialer struct {
	url   string
	gate  chan struct{}
	fail  error
	dials atomic.Int32
}

func (d *countingDialer) dial(ctx context.Context) (*gateway.Client, error) {
	d.dials.Add(1)
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if d.fail != nil {
		return nil, d.fail
	}
	return gateway.Dial(ctx, d.url, nil)
}

func get(t *testing.T, p *gateway.Pool, key string, d *countingDialer) *gateway.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.Get(ctx, key, d.dial)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return c
}

func TestPoolSharesOneDial(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	var p gateway.Pool
	defer p.Close()
	d := &countingDialer{url: srv.URL, gate: make(chan struct{})}

	const n = 20
	clients := make([]*gateway.Client, n)
	errs := make([]error, n)
	var calling atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			calling.Add(1)
			clients[i], errs[i] = p.Get(context.Background(), "peer-a", d.dial)
		})
	}
	tstest.WaitFor(t, 5*time.Second, func() error {
		if calling.Load() < n {
			return errors.New("not every Get has started")
		}
		return nil
	})
	close(d.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Get %d: %v", i, errs[i])
		}
		if clients[i] != clients[0] {
			t.Errorf("Get %d returned another client than Get 0", i)
		}
	}
	if got := d.dials.Load(); got != 1 {
		t.Errorf("%d concurrent Gets dialled %d times, want 1", n, got)
	}
	if !p.Connected("peer-a") {
		t.Error("Connected(peer-a) = false after Get")
	}
	if p.Connected("peer-b") {
		t.Error("Connected(peer-b) = true for a key never dialled")
	}
	if err := clients[0].Call(context.Background(), "echo", nil, nil); err != nil {
		t.Errorf("echo over the pooled client: %v", err)
	}
}

func TestPoolRedialsDeadConnection(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	var p gateway.Pool
	defer p.Close()
	d := &countingDialer{url: srv.URL}

	first := get(t, &p, "peer-a", d)
	if again := get(t, &p, "peer-a", d); again != first || d.dials.Load() != 1 {
		t.Fatalf("second Get dialled again (%d dials) or returned a new client", d.dials.Load())
	}
	srv.conns.cut()
	<-first.Done()
	if p.Connected("peer-a") {
		t.Error("Connected = true after the connection died")
	}
	second := get(t, &p, "peer-a", d)
	if second == first {
		t.Fatal("Get returned the dead client")
	}
	if got := d.dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
	if err := second.Call(context.Background(), "echo", nil, nil); err != nil {
		t.Errorf("echo over the redialled client: %v", err)
	}
}

func TestPoolDialError(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	p := gateway.Pool{MinBackoff: time.Hour}
	defer p.Close()
	refused := gateway.NewError(gateway.CodeUnauthorized, "bad token")
	d := &countingDialer{url: srv.URL, fail: refused}

	_, err := p.Get(context.Background(), "peer-a", d.dial)
	if !errors.Is(err, refused) {
		t.Fatalf("Get = %v, want the dial error", err)
	}
	if p.Connected("peer-a") {
		t.Error("Connected = true after a failed dial")
	}
	// While the key backs off, Gets fail at once with the last error.
	_, err = p.Get(context.Background(), "peer-a", d.dial)
	if !errors.Is(err, refused) || gateway.CodeOf(err) != gateway.CodeUnauthorized {
		t.Errorf("Get while backing off = %v (code %s), want the last dial error", err, gateway.CodeOf(err))
	}
	if got := d.dials.Load(); got != 1 {
		t.Errorf("dials = %d while backing off, want 1", got)
	}
	// Drop forgets the backoff: the next Get dials at once.
	d.fail = nil // no dial is running: Get returned
	p.Drop("peer-a")
	get(t, &p, "peer-a", d)
	if got := d.dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
}

func TestPoolRetriesAfterBackoff(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	p := gateway.Pool{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	defer p.Close()
	d := &countingDialer{url: srv.URL, fail: errors.New("connection refused")}
	if _, err := p.Get(context.Background(), "peer-a", d.dial); err == nil {
		t.Fatal("Get succeeded with a failing dial")
	}
	d.fail = nil
	tstest.WaitFor(t, 5*time.Second, func() error {
		_, err := p.Get(context.Background(), "peer-a", d.dial)
		return err
	})
	if got := d.dials.Load(); got != 2 {
		t.Errorf("dials = %d, want 2: Gets during the backoff must not dial", got)
	}
}

func TestPoolGetContext(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	var p gateway.Pool
	defer p.Close()
	d := &countingDialer{url: srv.URL, gate: make(chan struct{})}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(ctx, "peer-a", d.dial); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want context.DeadlineExceeded", err)
	}
	// The dial outlives the impatient caller and serves the next one.
	close(d.gate)
	get(t, &p, "peer-a", d)
	if got := d.dials.Load(); got != 1 {
		t.Errorf("dials = %d, want 1", got)
	}
}

func TestPoolDrop(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	var p gateway.Pool
	defer p.Close()
	d := &countingDialer{url: srv.URL}

	first := get(t, &p, "peer-a", d)
	other := get(t, &p, "peer-b", d)
	p.Drop("peer-a")
	select {
	case <-first.Done():
	default:
		t.Error("Drop did not close the connection")
	}
	if p.Connected("peer-a") {
		t.Error("Connected = true after Drop")
	}
	if second := get(t, &p, "peer-a", d); second == first {
		t.Error("Get after Drop returned the dropped client")
	}
	if got := d.dials.Load(); got != 3 {
		t.Errorf("dials = %d, want 3", got)
	}
	if other.Err() != nil || !p.Connected("peer-b") {
		t.Errorf("Drop(peer-a) affected peer-b: %v", other.Err())
	}
	p.Drop("never-dialled") // no-op
}

func TestPoolClose(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	var p gateway.Pool
	d := &countingDialer{url: srv.URL}
	a, b := get(t, &p, "peer-a", d), get(t, &p, "peer-b", d)
	p.Close()
	for _, c := range []*gateway.Client{a, b} {
		select {
		case <-c.Done():
		default:
			t.Error("Close left a connection open")
		}
	}
	_, err := p.Get(context.Background(), "peer-a", d.dial)
	if got := gateway.CodeOf(err); got != gateway.CodeShuttingDown {
		t.Errorf("Get after Close = %v (code %s), want SHUTTING_DOWN", err, got)
	}
	if got := d.dials.Load(); got != 2 {
		t.Errorf("dials = %d, want no dial after Close (2)", got)
	}
	p.Close() // idempotent
}

// TestPoolCloseDuringDial checks that Close abandons a dial in progress
// (its ctx ends), that the waiting caller fails with SHUTTING_DOWN, and
// that a dial which completes anyway does not leave its connection open.
func TestPoolCloseDuringDial(t *testing.T) {
	srv := startServer(t, &gateway.Server{})
	for _, ignoresCtx := range []bool{false, true} {
		var p gateway.Pool
		d := &countingDialer{url: srv.URL, gate: make(chan struct{})}
		dial := d.dial
		if ignoresCtx { // a dialer that finishes its dial despite Close
			dial = func(ctx context.Context) (*gateway.Client, error) {
				d.dials.Add(1)
				<-d.gate
				return gateway.Dial(context.Background(), d.url, nil)
			}
		}
		got := make(chan error, 1)
		go func() {
			_, err := p.Get(context.Background(), "peer-a", dial)
			got <- err
		}()
		tstest.WaitFor(t, 5*time.Second, func() error {
			if d.dials.Load() == 0 {
				return errors.New("dial not started")
			}
			return nil
		})
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		if ignoresCtx {
			close(d.gate)
		}
		<-closed
		if err := <-got; gateway.CodeOf(err) != gateway.CodeShuttingDown {
			t.Errorf("ignoresCtx=%v: Get = %v, want SHUTTING_DOWN", ignoresCtx, err)
		}
	}
	// startServer's cleanup checks the dialled connection was closed.
}
