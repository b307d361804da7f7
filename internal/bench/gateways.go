package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/config"
	"github.com/agentfed/agentfed/internal/tstest/fedtest"
)

// echoAgent is the id of the echo agent every peer gateway hosts.
const echoAgent = "echo"

// gateways starts federation nodes on loopback ports, each with its own
// storage directory under one temporary directory, and shuts them down.
// Not safe for concurrent use.
type gateways struct {
	dir   string
	log   *slog.Logger
	nodes []*federation.Node
}

func newGateways(log *slog.Logger) (*gateways, error) {
	dir, err := os.MkdirTemp("", "agentfed-bench-")
	if err != nil {
		return nil, err
	}
	return &gateways{dir: dir, log: log}, nil
}

// start serves a gateway named serverID on a fresh 127.0.0.1 port. It
// hosts the echo agent when echo is true, and knows peers. It is the
// no-config gateway of `agentfed serve` with one change: no per-peer rate
// limit, which would otherwise cap every throughput figure at the limit.
// tweak, when given, changes the configuration before the node is built.
func (g *gateways) start(serverID string, echo bool, peers []federation.PeerConfig, tweak ...func(*federation.Config)) (*federation.Node, error) {
	cfg := config.Default()
	cfg.Federation.ServerID = serverID
	cfg.Federation.Peers = peers
	cfg.Gateway.Listen = "127.0.0.1:0"
	cfg.Gateway.Limits.PeerRatePerSec = -1
	cfg.Storage.Dir = filepath.Join(g.dir, serverID)
	if echo {
		cfg.Agents[0].ID = echoAgent
	} else {
		cfg.Agents = nil
	}
	for _, f := range tweak {
		f(cfg)
	}
	ln, err := net.Listen("tcp", cfg.Gateway.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", serverID, err)
	}
	n, err := fedtest.Serve(cfg, ln, federation.Options{Logger: g.log})
	if err != nil {
		return nil, err
	}
	g.nodes = append(g.nodes, n)
	return n, nil
}

// stop shuts n down before the others.
func (g *gateways) stop(n *federation.Node) error {
	for i, m := range g.nodes {
		if m == n {
			g.nodes = append(g.nodes[:i], g.nodes[i+1:]...)
			break
		}
	}
	return fedtest.Shutdown(n)
}

// close shuts every gateway down, concurrently, and removes the storage.
func (g *gateways) close() error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, n := range g.nodes {
		wg.Go(func() {
			if err := fedtest.Shutdown(n); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	g.nodes = nil
	errs = append(errs, os.RemoveAll(g.dir))
	return errors.Join(errs...)
}

// echoPeer is the configuration of a peer named id whose gateway is n,
// answering with its echo agent.
func echoPeer(id string, n *federation.Node, caps ...string) federation.PeerConfig {
	return federation.PeerConfig{ID: id, Name: id, URL: n.URL(), AgentID: echoAgent, Capabilities: caps}
}

// send sends content to peer and fails unless the answer came back ok.
func send(ctx context.Context, n *federation.Node, peer, content string) error {
	res, err := n.Send(ctx, federation.SendRequest{PeerID: peer, Message: content})
	if err != nil {
		return err
	}
	if res.Status != federation.StatusOK {
		return fmt.Errorf("%w: send to %s: %s %v", errNotOK, peer, res.Status, res.Error)
	}
	return nil
}
