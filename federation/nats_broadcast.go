package federation

// broadcast over NATS as one publish. The sender publishes, on
// af.bcast.<sender>, the relay requests for every NATS peer of the
// broadcast grouped by serverId, with a broadcast id. One gateway of each
// site (every gateway subscribes af.bcast.* in its site's queue group)
// serves the requests for its agents, each as a send over NATS would be
// served (the sender's grant applies: a refused agent answers FORBIDDEN),
// and publishes its answers on af.reply.<sender>.<broadcastId>.<itself>:
// the last token names the answering gateway, as the NATS system's
// permissions let only it publish there. The sender collects them until
// every site has answered or the timeout passes; a peer whose site did
// not answer is a timeout.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentfed/agentfed/gateway"
)

const natsBroadcastAll = "af.bcast.*"

func natsBroadcastSubject(sender string) string { return "af.bcast." + sender }
func natsReplySubject(sender, broadcastID, receiver string) string {
	return "af.reply." + sender + "." + broadcastID + "." + receiver
}

// natsBroadcast is what the sender publishes: per serverId, the relay
// requests for its agents.
type natsBroadcast struct {
	ID       string                       `json:"id"`
	Requests map[string][]json.RawMessage `json:"requests"`
}

// natsBroadcastReply is a site's answers, in the order of its requests.
type natsBroadcastReply struct {
	Answers []natsAnswer `json:"answers"`
}

// natsPending is one peer of a broadcast over NATS: its index in the
// broadcast and the request as sent.
type natsPending struct {
	i   int
	req *Message
}

// broadcastNATS prepares the delivery of msgs[i] to targets[i] for every
// i in idx (NATS peers) with one publish, and returns what makes it and
// fills results[i]. It returns nil, having done nothing, when the publish
// would be larger than the NATS system takes (then each is sent on its
// own).
func (n *Node) broadcastNATS(ctx context.Context, targets []*peer, msgs []*Message, idx []int, timeoutMs int, results []Result) func() {
	timeout := n.timeout(timeoutMs, targets[idx[0]])
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	b := natsBroadcast{ID: newID(), Requests: map[string][]json.RawMessage{}}
	bySite := map[string][]natsPending{}
	for _, i := range idx {
		p := targets[i]
		params := RelayParams{TargetAgent: p.AgentID, Message: msgs[i], TimeoutMs: timeout.Milliseconds()}
		if _, err := n.protectOutbound(p, &params); err != nil {
			return nil
		}
		data, err := params.MarshalJSON()
		if err != nil {
			return nil
		}
		s := natsServerOf(p)
		b.Requests[s] = append(b.Requests[s], data)
		bySite[s] = append(bySite[s], natsPending{i, params.Message})
	}
	data, err := json.Marshal(&b)
	if err != nil || int64(len(data)) > n.nats.bus.Conn().MaxPayload() {
		return nil
	}
	return func() {
		start := time.Now()
		for _, i := range idx { // until answered
			p := targets[i]
			results[i] = Result{PeerID: p.ID, MessageID: msgs[i].MessageID, Status: StatusTimeout,
				Error: gateway.NewError(gateway.CodeTimeout, fmt.Sprintf("peer %q did not answer the broadcast within %v", p.ID, timeout))}
		}
		if err := n.publishBroadcast(ctx, timeout, b.ID, data, func(site string, reply []byte) bool {
			ps := bySite[site]
			delete(bySite, site) // a repeat, or a site not asked, changes nothing
			n.takeBroadcastReply(targets, ps, reply, results)
			return len(bySite) == 0
		}); err != nil {
			for _, i := range idx {
				results[i] = Result{PeerID: targets[i].ID, MessageID: msgs[i].MessageID, Status: StatusError, Error: gateway.ToError(err)}
			}
		}
		for _, i := range idx {
			r := &results[i]
			r.LatencyMs = millis(time.Since(start))
			outcome := "ok"
			if r.Error != nil {
				outcome = r.Error.Code
			}
			m := msgs[i]
			n.audit.write(auditEvent{Dir: "out", Kind: "deliver", Peer: r.PeerID, Agent: m.ToAgent, MessageID: m.MessageID,
				CorrelationID: m.CorrelationID, Type: string(m.Type), Outcome: outcome, LatencyMs: r.LatencyMs, Content: m.Content})
		}
	}
}

// publishBroadcast publishes data and passes each site's reply to take
// until take says all have answered or timeout passes.
func (n *Node) publishBroadcast(ctx context.Context, timeout time.Duration, id string, data []byte, take func(site string, reply []byte) bool) error {
	conn := n.nats.bus.Conn()
	replies := make(chan *nats.Msg, 64)
	sub, err := conn.ChanSubscribe(natsReplySubject(n.serverID, id, "*"), replies)
	if err != nil {
		return fmt.Errorf("%w: broadcast over NATS: %v", ErrPeerUnavailable, err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, stop := n.natsDeniable(ctx, natsBroadcastSubject(n.serverID))
	defer stop()
	if err := conn.Publish(natsBroadcastSubject(n.serverID), data); err != nil {
		return fmt.Errorf("%w: broadcast over NATS: %v", ErrPeerUnavailable, err)
	}
	for {
		select {
		case m := <-replies:
			if take(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], m.Data) {
				return nil
			}
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errNATSDenied) {
				return fmt.Errorf("%w: the NATS system's subject permissions do not let gateway %q broadcast", ErrForbidden, n.serverID)
			}
			return nil
		}
	}
}

// takeBroadcastReply fills the results of one site's peers ps from its
// reply.
func (n *Node) takeBroadcastReply(targets []*peer, ps []natsPending, data []byte, results []Result) {
	var rep natsBroadcastReply
	bad := json.Unmarshal(data, &rep) != nil || len(rep.Answers) != len(ps)
	for j, q := range ps {
		p := targets[q.i]
		r := &results[q.i]
		if bad {
			r.Status, r.Error = StatusError, gateway.ToError(fmt.Errorf("%w: peer %q sent a malformed broadcast answer over NATS", ErrPeerUnavailable, p.ID))
			continue
		}
		reply, err := n.natsAnswerOf(p, q.req, &rep.Answers[j], nil)
		switch {
		case err == nil:
			r.Status, r.Response, r.Error = StatusOK, reply, nil
		case gateway.CodeOf(err) == gateway.CodeTimeout:
			r.Status, r.Error = StatusTimeout, gateway.ToError(err)
		default:
			r.Status, r.Error = StatusError, gateway.ToError(err)
		}
	}
}

// answerBroadcast serves the requests of a broadcast for this gateway's
// agents, concurrently, and publishes the answers for its sender; with
// refused set it serves none and answers each with refused.
func (n *Node) answerBroadcast(l *natsLink, m *nats.Msg, refused error) {
	ctx := l.ctx
	sender := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	var b natsBroadcast
	if checkIdent("sender", sender, true) != nil || json.Unmarshal(m.Data, &b) != nil || checkIdent("broadcast id", b.ID, true) != nil {
		return // nobody to answer: the sender's name or the broadcast id is not usable
	}
	reqs := b.Requests[n.serverID]
	if len(reqs) == 0 {
		return
	}
	// Each agent at most once: no more work than agents. The requests past
	// that get the empty answer, {"ok":false}, which the sender reports as
	// malformed for those peers alone: an explained error for each of a
	// flood of requests would make a small publish a large one, and no
	// answers at all would fail the requests this gateway can serve (a
	// site's gateways may differ in their agents during a rollout).
	served := min(len(reqs), len(n.agents))
	answers := make([]natsAnswer, len(reqs))
	if refused != nil {
		for i := range served {
			answers[i].Error = gateway.ToError(refused)
		}
	} else {
		copy(answers, n.answerBroadcastRequests(ctx, m.Subject, reqs[:served]))
	}
	data, err := json.Marshal(natsBroadcastReply{Answers: answers})
	if err != nil {
		return
	}
	_ = l.bus.Conn().Publish(natsReplySubject(sender, b.ID, n.serverID), data) // the sender may have given up
}

// answerBroadcastRequests serves the requests reqs of the broadcast on
// subject, concurrently, and returns their answers in order.
func (n *Node) answerBroadcastRequests(ctx context.Context, subject string, reqs []json.RawMessage) []natsAnswer {
	id, err := n.natsSender(subject)
	answers := make([]natsAnswer, len(reqs))
	var wg sync.WaitGroup
	for i, raw := range reqs {
		if err != nil {
			answers[i].Error = gateway.ToError(err)
			continue
		}
		wg.Go(func() { answers[i] = n.serveNATSRequest(ctx, id, raw) })
	}
	wg.Wait()
	return answers
}

// broadcastOverNATS starts, on wg, the broadcast over NATS to the NATS
// peers among targets (when there are at least two) and reports which
// targets it took.
func (n *Node) broadcastOverNATS(ctx context.Context, wg *sync.WaitGroup, targets []*peer, msgs []*Message, timeoutMs int, results []Result) []bool {
	taken := make([]bool, len(targets))
	if n.nats == nil {
		return taken
	}
	var idx []int
	for i, p := range targets {
		if p.source == SourceNATS {
			idx = append(idx, i)
		}
	}
	if len(idx) < 2 {
		return taken
	}
	run := n.broadcastNATS(ctx, targets, msgs, idx, timeoutMs, results)
	if run == nil {
		return taken
	}
	for _, i := range idx {
		taken[i] = true
	}
	wg.Go(run)
	return taken
}
