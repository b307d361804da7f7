package natsbus

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LocalCluster is n embedded nats-servers with JetStream clustered on
// 127.0.0.1 ports, each storing under its own directory: what the tests
// and the benchmark use to kill and restart servers of one cluster.
type LocalCluster struct {
	mu   sync.Mutex // guards bus
	opts []Options
	bus  []*Bus // nil: killed
}

// StartLocalCluster starts the servers, named core-1, core-2, ..., under
// dir, and waits until JetStream's meta group has a leader.
func StartLocalCluster(dir string, n int) (*LocalCluster, error) {
	ports := make([]string, n)
	for i := range ports { // free ports for the routes, known before any server starts
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	c := &LocalCluster{opts: make([]Options, n), bus: make([]*Bus, n)}
	for i := range c.opts {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, "nats-route://"+p)
			}
		}
		name := fmt.Sprintf("core-%d", i+1)
		c.opts[i] = Options{Name: name, Embedded: &Embedded{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, name),
			Cluster: Cluster{Name: "local", Listen: ports[i], Routes: routes}}}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range c.bus { // together: a clustered JetStream server waits for its peers
		wg.Go(func() { c.bus[i], errs[i] = Open(c.opts[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	if err := waitFor(readyTimeout*3, func() bool { // the meta leader knows every server, with its stats
		for _, b := range c.bus {
			if len(b.srv.JetStreamClusterPeers()) == n {
				return true
			}
		}
		return false
	}); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: the JetStream cluster did not form: %v", ErrNotReady, err)
	}
	return c, nil
}

// waitFor polls ok until it holds or d has passed.
func waitFor(d time.Duration, ok func() bool) error {
	for deadline := time.Now().Add(d); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
	}
	return nil
}

// URL lists the client URLs of the servers running now.
func (c *LocalCluster) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var urls []string
	for _, b := range c.bus {
		if b != nil {
			urls = append(urls, b.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// Kill stops the running server named name, abruptly for its clients and
// peers, and returns its index for Restart.
func (c *LocalCluster) Kill(name string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, o := range c.opts {
		if o.Name == name && c.bus[i] != nil {
			c.bus[i].Close()
			c.bus[i] = nil
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: no running server %q", ErrOptions, name)
}

// Restart starts killed server i again on its storage and waits until
// its JetStream has caught up with the cluster.
func (c *LocalCluster) Restart(i int) error {
	b, err := Open(c.opts[i])
	if err != nil {
		return err
	}
	if err := waitFor(readyTimeout*3, b.srv.JetStreamIsCurrent); err != nil {
		b.Close()
		return fmt.Errorf("%w: restarted %s did not catch up: %v", ErrNotReady, c.opts[i].Name, err)
	}
	c.mu.Lock()
	c.bus[i] = b
	c.mu.Unlock()
	return nil
}

// Close stops every server.
func (c *LocalCluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, b := range c.bus {
		if b != nil {
			b.Close()
			c.bus[i] = nil
		}
	}
}
