package federation_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// A durable message over NATS whose agent always fails (retryably) is
// delivered federation.durable.maxAttempts times, then JetStream's
// max-deliveries advisory makes it a dead letter in the sender's outbox:
// state dead, lastError naming the max deliveries and the agent's last
// error. The sender's operator retries one (delivered once the agent
// works) and drops the other. The receiver joins an embedded server with
// the permissions derived from its grant, so they allow all of this.
func TestNATSDeadLetter(t *testing.T) {
	ctx := context.Background()
	cfg := newConfig(t, "hub", "")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "site-r", Token: "token-r"}}
	cfg.Federation.Transport = federation.TransportNATS
	cfg.NATS.Embedded = &federation.NATSEmbeddedConfig{Listen: "127.0.0.1:0"}
	hub := start(t, cfg, listen(t), nil)

	var works atomic.Bool
	var calls atomic.Int32
	h := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		calls.Add(1)
		if !works.Load() {
			return nil, fmt.Errorf("%w: busy", federation.ErrOverloaded)
		}
		return &federation.Answer{Content: "done"}, nil
	})
	rc := newConfig(t, "site-r", "worker")
	rc.Federation.Transport = federation.TransportNATS
	rc.NATS.URL, rc.NATS.Token = hub.NATSClientURL(), "token-r"
	rc.Federation.Durable.MaxAttempts = 2
	rc.Federation.DefaultTimeoutMs = 500
	start(t, rc, listen(t), map[string]federation.Handler{"worker": h})

	hub.ListPeers()
	var ids []string
	for _, content := range []string{"first", "second"} {
		res, err := hub.Send(ctx, federation.SendRequest{PeerID: "worker@site-r", Message: content, MessageOptions: federation.MessageOptions{Durable: true}})
		if err != nil || res.Status != federation.StatusQueued {
			t.Fatalf("durable send = %+v, %v; want queued", res, err)
		}
		ids = append(ids, res.MessageID)
	}
	for _, id := range ids {
		var e *federation.OutboxEntry
		tstest.WaitFor(t, 15*time.Second, func() error {
			var err error
			if e, err = hub.MessageStatus(id); err != nil {
				return err
			}
			if e.State != federation.StateDead {
				return fmt.Errorf("state %s", e.State)
			}
			return nil
		})
		if e.PeerID != "worker@site-r" || e.Attempts != 2 || e.LastError == nil || e.LastError.Code != federation.CodeOverloaded ||
			!strings.Contains(e.LastError.Message, "max deliveries") || !strings.Contains(e.LastError.Message, `agent "worker" failed`) {
			t.Fatalf("dead letter %+v, lastError %+v; want peer worker@site-r, 2 attempts, OVERLOADED naming max deliveries and the agent's error", e, e.LastError)
		}
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("the agent ran %d times; want 2 per message", n)
	}
	list, err := hub.Outbox([]string{federation.StateDead}, 10)
	if err != nil || len(list.Messages) != 2 {
		t.Fatalf("outbox list dead = %+v, %v; want both messages", list, err)
	}

	works.Store(true)
	if _, err := hub.RetryMessage(ids[0]); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		e, err := hub.MessageStatus(ids[0])
		if err != nil {
			return err
		}
		if e.State != federation.StateDelivered || e.Result == nil || e.Result.Response == nil || e.Result.Response.Content != "done" {
			return fmt.Errorf("state %s, result %+v", e.State, e.Result)
		}
		return nil
	})
	if err := hub.DropMessage(ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.MessageStatus(ids[1]); code(err) != federation.CodeUnknownMessage {
		t.Errorf("status of a dropped dead letter: %v; want UNKNOWN_MESSAGE", err)
	}
}
