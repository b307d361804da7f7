package federation_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// Many durable messages over NATS answered at once: their outcomes reach
// the sender in batches, each settled in one outbox transaction, and every
// entry is delivered with its own reply (some while their entries were
// still pending their first write).
func TestNATSDurableOutcomeBatch(t *testing.T) {
	hub, url := natsHub(t, "hub", "")
	cfg := newConfig(t, "site-r", "worker")
	cfg.Federation.Transport = federation.TransportNATS
	cfg.NATS.URL = url
	start(t, cfg, listen(t), map[string]federation.Handler{
		"worker": federation.HandlerFunc(func(_ context.Context, msg *federation.Message) (*federation.Answer, error) {
			return &federation.Answer{Content: "done: " + msg.Content}, nil
		}),
	})
	hub.ListPeers()

	const n = 200
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := hub.Send(context.Background(), federation.SendRequest{PeerID: "worker@site-r", Message: fmt.Sprint("job ", i),
				MessageOptions: federation.MessageOptions{Durable: true}})
			if err != nil || res.Status != federation.StatusQueued {
				errs <- fmt.Errorf("durable send %d = %+v, %v; want queued", i, res, err)
				return
			}
			ids[i] = res.MessageID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, id := range ids {
		e := waitState(t, hub, id, federation.StateDelivered)
		if r := e.Result; r == nil || r.Status != federation.StatusOK || r.Response == nil || r.Response.Content != fmt.Sprint("done: job ", i) {
			t.Fatalf("message %d delivered with %+v; want its own reply", i, r)
		}
	}
}
