package federation_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// natsWorker is a gateway site-r on the NATS system at url whose agent
// worker records the content of every message it handles.
type natsWorker struct {
	cfg     *federation.Config
	mu      sync.Mutex
	handled []string
}

func newNATSWorker(t *testing.T, url string) *natsWorker {
	return &natsWorker{cfg: natsConfig(t, url, "site-r", "worker")}
}

func (w *natsWorker) start(t *testing.T) *gw {
	h := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		w.mu.Lock()
		w.handled = append(w.handled, msg.Content)
		w.mu.Unlock()
		return &federation.Answer{Content: "done"}, nil
	})
	return start(t, w.cfg, listen(t), map[string]federation.Handler{"worker": h})
}

// waitHandled waits until content has been handled, then returns all
// that has been.
func (w *natsWorker) waitHandled(t *testing.T, content string) []string {
	t.Helper()
	var got []string
	tstest.WaitFor(t, 20*time.Second, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		got = append([]string(nil), w.handled...)
		for _, c := range got {
			if c == content {
				return nil
			}
		}
		return fmt.Errorf("handled %q; waiting for %q", got, content)
	})
	return got
}

// A durable message whose ttlMs passes while its receiver is down is not
// delivered when the receiver comes back; one without a ttl is.
func TestNATSDurableTTL(t *testing.T) {
	ctx := context.Background()
	hub, url := natsHub(t, "hub", "")
	w := newNATSWorker(t, url)
	r := w.start(t)
	hub.ListPeers() // hub now knows worker@site-r
	r.stop(t)
	res, err := hub.Send(ctx, federation.SendRequest{PeerID: "worker@site-r", Message: "expires", MessageOptions: federation.MessageOptions{Durable: true, TTLMs: 1000}})
	if err != nil || res.Status != federation.StatusQueued {
		t.Fatalf("durable send with ttlMs = %+v, %v; want queued", res, err)
	}
	_, js, _ := rawNATS(t, url, "", "")
	tstest.WaitFor(t, 10*time.Second, func() error { // JetStream removes it when its ttl has passed
		s, err := js.Stream(ctx, "AF_DURABLE_site-r")
		if err != nil {
			return err
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			return fmt.Errorf("the stream holds %d messages", n)
		}
		return nil
	})
	res, err = hub.Send(ctx, federation.SendRequest{PeerID: "worker@site-r", Message: "keeps", MessageOptions: federation.MessageOptions{Durable: true}})
	if err != nil || res.Status != federation.StatusQueued {
		t.Fatalf("durable send = %+v, %v; want queued", res, err)
	}
	w.start(t)
	if got := w.waitHandled(t, "keeps"); len(got) != 1 {
		t.Errorf("handled %q; want only the message without a ttl", got)
	}
}

// A durable message stamped longer ago than the receiver's replay window
// (gateway.replayWindowMs) is refused STALE and terminated: never handled,
// never redelivered.
func TestNATSDurableStale(t *testing.T) {
	_, url := natsHub(t, "hub", "")
	w := newNATSWorker(t, url)
	w.start(t)
	_, js, _ := rawNATS(t, url, "", "")
	for _, c := range []struct {
		content string
		age     time.Duration
	}{{"stale", 10 * time.Minute}, {"fresh", 0}} {
		msg := federation.NewMessage(federation.TypeRequest, "site-s", "client", "worker", c.content)
		msg.Timestamp = time.Now().Add(-c.age).UnixMilli()
		data, err := (&federation.RelayParams{TargetAgent: "worker", Message: msg, Durable: true}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(context.Background(), "af.durable.site-r.worker.site-s", data); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.waitHandled(t, "fresh"); len(got) != 1 {
		t.Errorf("handled %q; want only the fresh message", got)
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		c, err := js.Consumer(context.Background(), "AF_DURABLE_site-r", "af-worker")
		if err != nil {
			return err
		}
		if i := c.CachedInfo(); i.NumAckPending != 0 || i.NumPending != 0 || i.NumRedelivered != 0 {
			return fmt.Errorf("consumer: %d pending ack, %d pending, %d redelivered; want the stale message terminated", i.NumAckPending, i.NumPending, i.NumRedelivered)
		}
		return nil
	})
}
