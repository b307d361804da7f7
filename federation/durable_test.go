package federation_test

import (
	"context"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
)

// counter is an agent that counts how often it saw each content.
type counter struct {
	mu    sync.Mutex
	seen  map[string]int
	delay time.Duration
}

func newCounter() *counter { return &counter{seen: map[string]int{}} }

func (c *counter) Handle(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
	c.mu.Lock()
	c.seen[m.Content]++
	c.mu.Unlock()
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	return &federation.Answer{Content: "done: " + m.Content}, nil
}

func (c *counter) count(content string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[content]
}

func waitState(t *testing.T, g *gw, id, state string) *federation.OutboxEntry {
	t.Helper()
	var e *federation.OutboxEntry
	tstest.WaitFor(t, 15*time.Second, func() error {
		var err error
		if e, err = g.MessageStatus(id); err != nil {
			return err
		}
		if e.State != state {
			return fmt.Errorf("message %s is %s (attempts %d, last error %v); want %s", id, e.State, e.Attempts, e.LastError, state)
		}
		return nil
	})
	return e
}

// TestDurableSendWaitsForPeer: a durable message to a peer that is not
// running is queued, and delivered once when the peer comes up.
func TestDurableSendWaitsForPeer(t *testing.T) {
	lnPeer := listen(t)
	addr := lnPeer.Addr().String()
	lnPeer.Close() // nobody listens yet
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "later", Name: "Later", URL: "ws://" + addr, AgentID: "c"}}
	main := start(t, cfg, listen(t), nil)
	op := operator(t, main, "")
	r := mustTool(t, op, `{"action":"send","peerId":"later","message":"hello","durable":true}`)
	if r["status"] != "queued" || r["messageId"] == "" {
		t.Fatalf("durable send: %v", r)
	}
	id := r["messageId"].(string)
	tstest.WaitFor(t, 10*time.Second, func() error {
		if e, _ := main.MessageStatus(id); e.Attempts < 1 {
			return fmt.Errorf("no attempt yet")
		}
		return nil
	})
	c := newCounter()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("rebind %s: %v", addr, err)
	}
	start(t, newConfig(t, "later-server", "c"), ln, map[string]federation.Handler{"c": c})
	e := waitState(t, main, id, federation.StateDelivered)
	if e.Result == nil || e.Result.Response.Content != "done: hello" || c.count("hello") != 1 {
		t.Fatalf("delivered entry %+v; handled %d times", e.Result, c.count("hello"))
	}
}

// TestDurableRedeliveryIsHandledOnce: a sender that gives up on a slow
// answer and retries does not make the agent run twice, and gets the
// first run's answer.
func TestDurableRedeliveryIsHandledOnce(t *testing.T) {
	c := newCounter()
	c.delay = 400 * time.Millisecond
	lnPeer := listen(t)
	start(t, newConfig(t, "slow-server", "c"), lnPeer, map[string]federation.Handler{"c": c})
	cfg := newConfig(t, "main", "")
	p := peerConf("slow", "c", lnPeer)
	p.TimeoutMs = 100 // every attempt times out while the agent still works
	cfg.Federation.Peers = []federation.PeerConfig{p}
	main := start(t, cfg, listen(t), nil)
	r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "slow", Message: "once", MessageOptions: federation.MessageOptions{Durable: true}})
	if err != nil {
		t.Fatal(err)
	}
	e := waitState(t, main, r.MessageID, federation.StateDelivered)
	if e.Attempts < 2 {
		t.Fatalf("expected retries after timeouts, got %d attempts", e.Attempts)
	}
	if n := c.count("once"); n != 1 {
		t.Fatalf("agent ran %d times for one durable message", n)
	}
}

func TestDurableTTLDeadLettersRetryAndDrop(t *testing.T) {
	lnPeer := listen(t)
	addr := lnPeer.Addr().String()
	lnPeer.Close()
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "gone", Name: "Gone", URL: "ws://" + addr, AgentID: "c", Capabilities: []string{"x"}}}
	main := start(t, cfg, listen(t), nil)
	op := operator(t, main, "")

	out, err := tool(t, op, `{"action":"broadcast","message":"b","durable":true,"ttlMs":300}`)
	if err != nil || at(out, 0, "status") != "queued" {
		t.Fatalf("durable broadcast: %v %v", out, err)
	}
	d := mustTool(t, op, `{"action":"delegate","requiredCapabilities":["x"],"task":"d","durable":true,"ttlMs":300}`)
	for _, id := range []string{at(out, 0, "messageId").(string), d["messageId"].(string)} {
		e := waitState(t, main, id, federation.StateDead)
		if e.LastError == nil || e.Attempts < 1 {
			t.Fatalf("dead entry without a reason: %+v", e)
		}
	}
	list, err := main.Outbox([]string{federation.StateDead}, 0)
	if err != nil || len(list.Messages) != 2 {
		t.Fatalf("dead letters: %+v %v", list, err)
	}

	// The peer comes up; an operator retries one and drops the other.
	c := newCounter()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("rebind %s: %v", addr, err)
	}
	start(t, newConfig(t, "gone-server", "c"), ln, map[string]federation.Handler{"c": c})
	tstest.WaitFor(t, 15*time.Second, func() error { // past the pool's reconnect backoff
		r, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "gone", Message: "ping"})
		return r.Err()
	})
	var res map[string]any
	ctx := context.Background()
	if err := op.Call(ctx, federation.MethodOutbox, federation.OutboxParams{Op: "retry", MessageID: d["messageId"].(string)}, &res); err != nil || res["state"] != "queued" {
		t.Fatalf("retry: %v %v", res, err)
	}
	waitState(t, main, d["messageId"].(string), federation.StateDelivered)
	if c.count("d") != 1 {
		t.Fatalf("retried delegate handled %d times", c.count("d"))
	}
	if err := op.Call(ctx, federation.MethodOutbox, federation.OutboxParams{Op: "drop", MessageID: at(out, 0, "messageId").(string)}, nil); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if _, err := main.MessageStatus(at(out, 0, "messageId").(string)); code(err) != "UNKNOWN_MESSAGE" {
		t.Fatalf("status after drop: %v", err)
	}
	if err := op.Call(ctx, federation.MethodOutbox, federation.OutboxParams{Op: "drop", MessageID: d["messageId"].(string)}, nil); err != nil {
		t.Fatalf("drop a delivered message: %v", err)
	}
	if err := op.Call(ctx, federation.MethodOutbox, federation.OutboxParams{Op: "explode"}, nil); code(err) != "INVALID_PARAMS" {
		t.Fatalf("unknown op: %v", err)
	}
}

// TestDurableSurvivesSenderRestart: queued messages are resumed by a
// restarted sender.
func TestDurableSurvivesSenderRestart(t *testing.T) {
	lnPeer := listen(t)
	addr := lnPeer.Addr().String()
	lnPeer.Close()
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "p", Name: "P", URL: "ws://" + addr, AgentID: "c"}}
	main := start(t, cfg, listen(t), nil)
	var ids []string
	for i := range 20 {
		r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: fmt.Sprint(i), MessageOptions: federation.MessageOptions{Durable: true}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.MessageID)
	}
	main.stop(t)

	c := newCounter()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("rebind %s: %v", addr, err)
	}
	start(t, newConfig(t, "p-server", "c"), ln, map[string]federation.Handler{"c": c})
	main2 := start(t, cfg, listen(t), nil)
	for i, id := range ids {
		waitState(t, main2, id, federation.StateDelivered)
		if n := c.count(fmt.Sprint(i)); n != 1 {
			t.Fatalf("message %d handled %d times", i, n)
		}
	}
}
