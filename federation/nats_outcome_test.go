package federation_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/tstest"
)

// gatedAgent answers "done" once its gate is open, and says on started
// each time it begins a message.
func gatedAgent(gate <-chan struct{}, started chan<- string) federation.Handler {
	return federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		started <- msg.MessageID
		select {
		case <-gate:
			return &federation.Answer{Content: "done: " + msg.Content}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
}

// sendDurable is a durable send from g that must be queued.
func sendDurable(t *testing.T, g *gw, peerID, content string) string {
	t.Helper()
	res, err := g.Send(context.Background(), federation.SendRequest{PeerID: peerID, Message: content, MessageOptions: federation.MessageOptions{Durable: true}})
	if err != nil || res.Status != federation.StatusQueued {
		t.Fatalf("durable send to %s = %+v, %v; want queued", peerID, res, err)
	}
	return res.MessageID
}

// The answer to a durable message over NATS reaches its sender as over
// WebSocket: its outbox entry is queued (held by the receiver's stream)
// while the agent works, then delivered with the reply; a message the
// agent fails for good is failed with the agent's error.
func TestNATSDurableOutcomeReachesSender(t *testing.T) {
	hub, url := natsHub(t, "hub", "")
	gate, started := make(chan struct{}), make(chan string, 4)
	cfg := newConfig(t, "site-r", "worker")
	cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "refuser", Handler: federation.HandlerConfig{Type: "echo"}})
	cfg.Federation.Transport = federation.TransportNATS
	cfg.NATS.URL = url
	start(t, cfg, listen(t), map[string]federation.Handler{
		"worker": gatedAgent(gate, started),
		"refuser": federation.HandlerFunc(func(context.Context, *federation.Message) (*federation.Answer, error) {
			return nil, errors.New("cannot do that")
		}),
	})
	hub.ListPeers()

	id := sendDurable(t, hub, "worker@site-r", "job")
	<-started
	e, err := hub.MessageStatus(id)
	if err != nil || e.State != federation.StateQueued || e.Stream != "AF_DURABLE_site-r" || e.PeerID != "worker@site-r" {
		t.Fatalf("status while the agent works = %+v, %v; want queued, held by stream AF_DURABLE_site-r", e, err)
	}
	if _, err := hub.CancelMessage(id); code(err) != gateway.CodeInvalidParams || !strings.Contains(err.Error(), "AF_DURABLE_site-r") {
		t.Errorf("cancel of a message held by a NATS stream: %v; want INVALID_PARAMS naming the stream", err)
	}
	close(gate)
	e = waitState(t, hub, id, federation.StateDelivered)
	if r := e.Result; r == nil || r.Status != federation.StatusOK || r.Response == nil || r.Response.Content != "done: job" || r.Response.FromServer != "site-r" {
		t.Errorf("delivered entry's result = %+v; want ok with the agent's reply from site-r", r)
	}
	list, err := hub.Outbox([]string{federation.StateDelivered}, 10)
	if err != nil || len(list.Messages) != 1 || list.Messages[0].MessageID != id {
		t.Errorf("outbox list delivered = %+v, %v; want the message", list, err)
	}

	id = sendDurable(t, hub, "refuser@site-r", "job")
	e = waitState(t, hub, id, federation.StateFailed)
	if e.LastError == nil || e.LastError.Code != federation.CodeAgentError || !strings.Contains(e.LastError.Message, `agent "refuser" failed`) {
		t.Errorf("failed entry's lastError = %+v; want AGENT_ERROR from agent refuser", e.LastError)
	}
}

// The outcome of a durable message waits in the sender's outcome stream
// while the sender is down: a reply given and a dead letter made meanwhile
// are both seen once it is back. An outcome published by a gateway the
// message was not sent to changes nothing. Every gateway joins an
// embedded server with the permissions derived from its grant.
func TestNATSDurableOutcomeWhileSenderDown(t *testing.T) {
	hcfg := newConfig(t, "hub", "")
	hcfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "site-s", Token: "token-s"}, {ServerID: "site-r", Token: "token-r"}, {ServerID: "site-x", Token: "token-x"}}
	hcfg.Federation.Transport = federation.TransportNATS
	hcfg.NATS.Embedded = &federation.NATSEmbeddedConfig{Listen: "127.0.0.1:0"}
	hub := start(t, hcfg, listen(t), nil)
	url := hub.NATSClientURL()

	gate, started := make(chan struct{}), make(chan string, 4)
	rcfg := newConfig(t, "site-r", "worker")
	rcfg.Agents = append(rcfg.Agents, federation.AgentConfig{ID: "busy", Handler: federation.HandlerConfig{Type: "echo"}})
	rcfg.Federation.Transport = federation.TransportNATS
	rcfg.NATS.URL, rcfg.NATS.Token = url, "token-r"
	rcfg.Federation.Durable.MaxAttempts = 2
	rcfg.Federation.DefaultTimeoutMs = 2000
	start(t, rcfg, listen(t), map[string]federation.Handler{
		"worker": gatedAgent(gate, started),
		"busy": federation.HandlerFunc(func(context.Context, *federation.Message) (*federation.Answer, error) {
			return nil, fmt.Errorf("%w: busy", federation.ErrOverloaded)
		}),
	})

	scfg := newConfig(t, "site-s", "")
	scfg.Federation.Transport = federation.TransportNATS
	scfg.NATS.URL, scfg.NATS.Token = url, "token-s"
	s := start(t, scfg, listen(t), nil)
	s.ListPeers()
	replied := sendDurable(t, s, "worker@site-r", "job")
	dead := sendDurable(t, s, "busy@site-r", "job")
	<-started
	s.stop(t)

	// Meanwhile a gateway the message was not sent to says it is done.
	x := natsJetStream(t, url, "site-x", "token-x")
	forged := fmt.Sprintf(`[{"messageId":%q,"state":"failed","error":{"code":"FORGED","message":"forged"}}]`, dead)
	if _, err := x.Publish(context.Background(), "af.result.site-s.site-x", []byte(forged)); err != nil {
		t.Fatal(err)
	}
	js := natsJetStream(t, url, "site-s", "token-s")
	close(gate)                                      // the reply is given while its sender is down
	tstest.WaitFor(t, 20*time.Second, func() error { // the reply, the forgery and the dead letter
		st, err := js.Stream(context.Background(), "AF_RESULT_site-s")
		if err != nil {
			return err
		}
		if n := st.CachedInfo().State.Msgs; n < 3 {
			return fmt.Errorf("the sender's outcome stream holds %d outcomes", n)
		}
		return nil
	})

	s = start(t, scfg, listen(t), nil)
	e := waitState(t, s, replied, federation.StateDelivered)
	if e.Result == nil || e.Result.Response == nil || e.Result.Response.Content != "done: job" {
		t.Errorf("reply given while the sender was down: result %+v; want the agent's reply", e.Result)
	}
	e = waitState(t, s, dead, federation.StateDead) // not failed by the forgery
	if e.Attempts != 2 || e.LastError == nil || e.LastError.Code != federation.CodeOverloaded || !strings.Contains(e.LastError.Message, "max deliveries") {
		t.Errorf("dead letter made while the sender was down: %+v, lastError %+v; want 2 attempts, OVERLOADED naming max deliveries", e, e.LastError)
	}
}

// natsJetStream is JetStream on the NATS system at url as gateway user.
func natsJetStream(t *testing.T, url, user, token string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, token), nats.CustomInboxPrefix("_INBOX_"+user))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Only a gateway's own site may take its outcomes, and a gateway may
// publish outcomes only as itself: the permissions derived from the grants
// say so.
func TestNATSOutcomePermissions(t *testing.T) {
	_, url := grantedHub(t, true, "")
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, nats.UserInfo("site-c", "token-c"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	allowed := []string{"af.result.hub.site-c", "$JS.API.CONSUMER.MSG.NEXT.AF_RESULT_site-c.af-results"}
	denied := []string{
		"af.result.hub.site-b",                                // an outcome as another gateway
		"$JS.API.CONSUMER.CREATE.AF_RESULT_site-b.steal",      // a consumer on another's outcomes
		"$JS.API.CONSUMER.MSG.NEXT.AF_RESULT_hub.af-results",  // another's outcomes
		"$JS.API.CONSUMER.DURABLE.CREATE.AF_RESULT_hub.steal", // the older API too
	}
	for _, subject := range append(allowed, denied...) {
		if err := nc.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < len(denied) {
		select {
		case err := <-errs:
			got = append(got, err.Error())
		case <-time.After(5 * time.Second):
			t.Fatalf("refusals %q; want one for each of %q", got, denied)
		}
	}
	all := strings.Join(got, "\n")
	for _, s := range denied {
		if !strings.Contains(all, fmt.Sprintf("Publish to %q", s)) {
			t.Errorf("publish to %s was not refused; refusals:\n%s", s, all)
		}
	}
	for _, s := range allowed {
		if strings.Contains(all, fmt.Sprintf("Publish to %q", s)) {
			t.Errorf("publish to %s was refused; want allowed", s)
		}
	}
}

// A durable message over NATS whose ttlMs passes while its receiver is
// down is dead at the sender: JetStream removed it, and nobody answers.
func TestNATSDurableOutcomeTTL(t *testing.T) {
	hub, url := natsHub(t, "hub", "")
	w := newNATSWorker(t, url)
	r := w.start(t)
	hub.ListPeers()
	r.stop(t)
	res, err := hub.Send(context.Background(), federation.SendRequest{PeerID: "worker@site-r", Message: "expires",
		MessageOptions: federation.MessageOptions{Durable: true, TTLMs: 1000, TimeoutMs: 1000}})
	if err != nil || res.Status != federation.StatusQueued {
		t.Fatalf("durable send with ttlMs = %+v, %v; want queued", res, err)
	}
	tstest.WaitFor(t, 5*time.Second, func() error { // written with the next batch of entries
		list, err := hub.Outbox([]string{federation.StateQueued}, 10)
		if err != nil || len(list.Messages) != 1 {
			return fmt.Errorf("queued entries %+v, %v; want the message", list, err)
		}
		return nil
	})
	federation.ExpireHeldNATS(hub.Node, time.Now()) // too early: it may still be handled
	if e, err := hub.MessageStatus(res.MessageID); err != nil || e.State != federation.StateQueued {
		t.Fatalf("status before its ttl passed = %+v, %v; want queued", e, err)
	}
	federation.ExpireHeldNATS(hub.Node, time.Now().Add(3*time.Second)) // ttl, timeout and a second later
	e := waitState(t, hub, res.MessageID, federation.StateDead)
	if e.LastError == nil || !strings.Contains(e.LastError.Message, "ttlMs 1000") {
		t.Errorf("lastError %+v; want one naming ttlMs", e.LastError)
	}
}

// A durable message that finds its agent busy (its wait in the queue past
// the timeout, or the queue full of senders over WebSocket: OVERLOADED)
// is tried again after the consumer's backoff, as the outbox retries over
// WebSocket, not at once: a nak without a delay is redelivered
// immediately, so a burst spent every delivery in milliseconds and became
// dead letters while the agent was only busy.
func TestNATSDurableBusyAgentIsRetriedLater(t *testing.T) {
	hub, _, gate, started := gatedWorkerSite(t, 1000) // the consumer's backoff: 1 s, 2 s, 4 s, ...
	ids := sendJobs(t, hub, 6, 1000)
	// The first message holds the agent until its timeout; the second waits
	// in the queue and starts then; the others wait in the stream.
	<-started
	<-started
	close(gate)
	for _, id := range ids {
		if e := waitState(t, hub, id, federation.StateDelivered); e.Result == nil || e.Result.Status != federation.StatusOK {
			t.Errorf("message %s: %+v; want delivered ok", id, e.Result)
		}
	}
}

// TestNATSDurableBurstWaitsInStream: a burst of durable messages beyond
// what the agent can take at once (maxConcurrency + maxQueue) waits in
// the stream, not fetched, while the agent is busy, and each message is
// delivered once. The receiving gateway used to fetch up to 500 of a
// consumer's messages, refuse those past the agent's queue as OVERLOADED,
// and have them delivered again after a backoff, spending a delivery of
// federation.durable.maxAttempts each time; then a prefetch of a few
// waited in the client, beyond the gateway's reach.
func TestNATSDurableBurstWaitsInStream(t *testing.T) {
	hub, url, gate, started := gatedWorkerSite(t, 0)
	const burst = 12
	ids := sendJobs(t, hub, burst, 0)
	<-started
	cons := workerConsumer(t, url)
	var err error
	// The gateway fetches two, for the agent's places, and no more.
	var info *jetstream.ConsumerInfo
	tstest.WaitFor(t, 10*time.Second, func() error {
		if info, err = cons.Info(context.Background()); err != nil {
			return err
		}
		if out := info.NumAckPending; out < 2 {
			return fmt.Errorf("%d messages fetched; want the agent's 2", out)
		}
		return nil
	})
	if pending := info.NumPending; pending != burst-2 || info.NumAckPending != 2 {
		t.Errorf("with the agent busy, %d of %d messages still wait in the stream (%d fetched); want %d (2 fetched)",
			pending, burst, info.NumAckPending, burst-2)
	}
	close(gate)
	for _, id := range ids {
		if e := waitState(t, hub, id, federation.StateDelivered); e.Result == nil || e.Result.Status != federation.StatusOK {
			t.Errorf("message %s: %+v; want delivered ok", id, e.Result)
		}
	}
	if info, err = cons.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := info.Delivered.Consumer; n != burst { // counts every delivery, again or not
		t.Errorf("JetStream made %d deliveries of %d messages; want each delivered once", n, burst)
	}
}

// TestNATSDurableHeldPastAckWait: a durable message that its agent works
// on, that waits in the agent's queue, or that waits in the stream behind
// them, for longer than the consumer's AckWait is not delivered again
// meanwhile: the gateway marks those it holds in progress, and fetches no
// more than it holds. Before, JetStream delivered them again after the
// AckWait, spending a delivery, and to another gateway of the site, which
// would run the agent a second time; later, the few fetched beyond the
// agent's places waited in the client, unmarked, and were delivered again.
func TestNATSDurableHeldPastAckWait(t *testing.T) {
	// The consumer's AckWait: marked every 500 ms, so a stall of the
	// process of up to half a second (a loaded machine, -race) is allowed.
	hub, url, gate, started := gatedWorkerSite(t, 1000)
	const sent = 6
	ids := sendJobs(t, hub, sent, 20_000)
	<-started
	time.Sleep(3500 * time.Millisecond) // three and a half AckWaits: what must not happen would have
	close(gate)
	for _, id := range ids {
		if e := waitState(t, hub, id, federation.StateDelivered); e.Result == nil || e.Result.Status != federation.StatusOK {
			t.Errorf("message %s: %+v; want delivered ok", id, e.Result)
		}
	}
	info, err := workerConsumer(t, url).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := info.Delivered.Consumer; n != sent {
		t.Errorf("JetStream made %d deliveries of %d messages held past the AckWait; want each delivered once", n, sent)
	}
}

// gatedWorkerSite starts the hub of a NATS system and site-r, whose agent
// "worker" takes one message at a time with one waiting (maxConcurrency
// and maxQueue 1) and holds each until gate closes; started names each it
// starts. defaultTimeoutMs, unless 0, is site-r's, its consumers' AckWait.
func gatedWorkerSite(t *testing.T, defaultTimeoutMs int) (hub *gw, url string, gate chan struct{}, started chan string) {
	t.Helper()
	hub, url = natsHub(t, "hub", "")
	gate, started = make(chan struct{}), make(chan string, 64)
	cfg := newConfig(t, "site-r", "worker")
	cfg.Agents[0].MaxConcurrency, cfg.Agents[0].MaxQueue = 1, 1
	cfg.Federation.Transport = federation.TransportNATS
	if defaultTimeoutMs != 0 {
		cfg.Federation.DefaultTimeoutMs = defaultTimeoutMs
	}
	cfg.NATS.URL = url
	start(t, cfg, listen(t), map[string]federation.Handler{"worker": gatedAgent(gate, started)})
	hub.ListPeers()
	return hub, url, gate, started
}

// sendJobs sends n durable messages from hub to worker@site-r, each with
// timeoutMs (0: the default), and returns their ids.
func sendJobs(t *testing.T, hub *gw, n, timeoutMs int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		res, err := hub.Send(context.Background(), federation.SendRequest{PeerID: "worker@site-r", Message: fmt.Sprint("job ", i),
			MessageOptions: federation.MessageOptions{Durable: true, TimeoutMs: timeoutMs}})
		if err != nil || res.Status != federation.StatusQueued {
			t.Fatalf("durable send = %+v, %v; want queued", res, err)
		}
		ids = append(ids, res.MessageID)
	}
	return ids
}

// workerConsumer is site-r's JetStream consumer of worker's messages,
// seen by a bare client of the NATS system at url.
func workerConsumer(t *testing.T, url string) jetstream.Consumer {
	t.Helper()
	_, js, _ := rawNATS(t, url, "", "")
	cons, err := js.Consumer(context.Background(), "AF_DURABLE_site-r", "af-worker")
	if err != nil {
		t.Fatal(err)
	}
	return cons
}
