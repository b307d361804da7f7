package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// Two `agentfed serve` processes of site-b serve agent data in one NATS
// queue group; one is killed with SIGKILL while 16 requesters keep
// sending. Only requests in flight on it may fail (at most 16); the other
// process answers everything after.
func TestNATSQueueGroupSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two gateway processes and kills one (-short skips it)")
	}
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()}) // the directory is a KV bucket
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown) // after the gateways (cleanups run last first): they stop while it runs
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	var procs []*server
	for i := range 2 {
		cfg := fmt.Sprintf(`federation: {enabled: true, serverId: site-b, transport: nats}
nats: {url: %q}
agents: [{id: data, capabilities: [sql], handler: {type: echo}}]
storage: {dir: %q}
`, srv.ClientURL(), filepath.Join(t.TempDir(), "data"))
		procs = append(procs, serve(t, "--config", writeFile(t, fmt.Sprintf("site-b-%d.yaml", i), cfg)))
	}

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				msg := federation.NewMessage(federation.TypeRequest, "site-s", "client", "data", "ping")
				data, err := (&federation.RelayParams{TargetAgent: "data", Message: msg, TimeoutMs: 2000}).MarshalJSON()
				if err != nil {
					panic(err)
				}
				var ans struct{ OK bool }
				m, err := nc.Request("af.agent.site-b.data.site-s", data, 2*time.Second)
				if err == nil && json.Unmarshal(m.Data, &ans) == nil && ans.OK {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	tstest.WaitFor(t, 20*time.Second, func() error {
		if ok.Load() < 200 {
			return fmt.Errorf("%d answered", ok.Load())
		}
		return nil
	})
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed before the kill", failed.Load())
	}
	if err := procs[0].Stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("the killed gateway exited cleanly")
	}
	after := ok.Load()
	tstest.WaitFor(t, 20*time.Second, func() error {
		if ok.Load() < after+200 {
			return fmt.Errorf("%d answered after the kill", ok.Load()-after)
		}
		return nil
	})
	if f := failed.Load(); f > 16 {
		t.Errorf("%d requests failed; want at most the 16 that may have been in flight on the killed gateway", f)
	}
	t.Logf("answered %d, failed %d (in flight on the killed gateway)", ok.Load(), failed.Load())
}
