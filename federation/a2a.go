package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/agentfed/agentfed/gateway"
)

// A2APath is where the gateway's listener serves each local agent as an
// A2A 1.0 agent: JSON-RPC at A2APath+"{agent}", HTTP+JSON under
// A2APath+"{agent}/rest", and the agent's card at
// A2APath+"{agent}/.well-known/agent-card.json". The gateway's own
// /.well-known/agent-card.json is the card of its first agent (by id).
const A2APath = "/a2a/"

// maxA2ABody bounds one A2A request body, as the frame limit bounds one
// gateway-protocol frame.
const maxA2ABody = 4 << 20

// a2aWellKnown is the gateway's own agent card.
const a2aWellKnown = "/.well-known/agent-card.json"

// a2aV03 is where, under an agent's A2A path, A2A 0.3 clients find its
// JSON-RPC endpoint and, below it, its 0.3 card and its 0.3 HTTP+JSON
// endpoint (a2aV03+"/rest").
const a2aV03 = "/v0.3"

// a2aSchemeName names the bearer scheme the cards declare.
const a2aSchemeName = "bearer"

// a2aFront is the A2A front door: a caller's bearer token, matched
// against gateway.auth.a2a (or, deprecated, gateway.auth.peers), in front of
// a2a-go's JSON-RPC and HTTP+JSON handlers, onto Node.deliverLocal.
type a2aFront struct {
	n      *Node
	agents map[string]*a2aAgent
	first  string // the agent the gateway's own card describes

	// stopping ends with Shutdown: it cancels every A2A request and
	// every execution of an agent that an A2A message started.
	stopping context.Context
	stop     context.CancelFunc
	mu       sync.Mutex     // guards closed and running's Add
	closed   bool           // no execution starts any more
	running  sync.WaitGroup // executions (a2aExecutor.Execute) under way
}

// a2aAgent is one local agent's A2A surface.
type a2aAgent struct {
	id      string
	rpc     http.Handler
	rest    http.Handler
	v03     http.Handler // A2A 0.3 JSON-RPC, for older clients
	v03rest http.Handler // A2A 0.3 HTTP+JSON
}

// a2aCallerKey carries the authenticated caller's identity to the
// executor.
type a2aCallerKey struct{}

// newA2AFront makes the A2A surface of n's agents, with the tasks and
// message ids an earlier run left in n's store.
func newA2AFront(n *Node) (*a2aFront, error) {
	f := &a2aFront{n: n, agents: map[string]*a2aAgent{}}
	f.stopping, f.stop = context.WithCancel(context.Background())
	now := time.Now()
	for _, id := range sortedKeys(n.agents) {
		if f.first == "" {
			f.first = id
		}
		tasks, err := loadA2ATasks(n.store, id, n.log, now)
		if err != nil {
			return nil, err
		}
		dedup, err := loadA2ADedup(n.store, id, n.log, now)
		if err != nil {
			return nil, fmt.Errorf("load the A2A message ids of agent %q: %w", id, err)
		}
		h := a2asrv.NewHandler(&a2aExecutor{f: f, n: n, agent: id, dedup: dedup}, a2asrv.WithLogger(n.log),
			a2asrv.WithTaskStore(tasks), a2asrv.WithCallInterceptors(a2aUser{}, dedup))
		dedup.h = h
		f.agents[id] = &a2aAgent{id: id, rpc: a2asrv.NewJSONRPCHandler(h),
			rest: http.StripPrefix(A2APath+id+"/rest", a2asrv.NewRESTHandler(h)), v03: a2av0.NewJSONRPCHandler(h),
			v03rest: http.StripPrefix(A2APath+id+a2aV03+"/rest", a2av0.NewRESTHandler(h))}
	}
	return f, nil
}

// card builds the card of local agent id as seen through request r: a
// skill per capability, the bearer scheme it requires, and the two
// transports at the listener's address.
func (f *a2aFront) card(r *http.Request, id string) *a2a.AgentCard {
	cfg := f.n.agents[id].cfg
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host + A2APath + id
	skills := make([]a2a.AgentSkill, 0, len(cfg.Capabilities))
	for _, c := range cfg.Capabilities {
		skills = append(skills, a2a.AgentSkill{ID: c, Name: c, Description: cmpOr(cfg.Description, c), Tags: []string{c}})
	}
	return &a2a.AgentCard{
		Name:        id,
		Description: cmpOr(cfg.Description, fmt.Sprintf("agent %q of agentfed gateway %q", id, f.n.serverID)),
		Version:     Version,
		SupportedInterfaces: []*a2a.AgentInterface{
			a2a.NewAgentInterface(base, a2a.TransportProtocolJSONRPC),
			a2a.NewAgentInterface(base+"/rest", a2a.TransportProtocolHTTPJSON),
		},
		Capabilities:       a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes:  []string{"text/plain"},
		DefaultOutputModes: []string{"text/plain"},
		Skills:             skills,
		SecuritySchemes: a2a.NamedSecuritySchemes{a2aSchemeName: a2a.HTTPAuthSecurityScheme{Scheme: "Bearer",
			Description: "a token of " + a2aTokenSource(f.n.auth())}},
		SecurityRequirements: a2a.SecurityRequirementsOptions{{a2aSchemeName: a2a.SecuritySchemeScopes{}}},
	}
}

// ServeHTTP serves cards without authentication and everything else to
// a caller whose bearer token matches a gateway.auth.a2a entry (or,
// without any, a gateway.auth.peers entry).
func (f *a2aFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == a2asrv.WellKnownAgentCardPath {
		f.serveCard(w, r, f.first)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, A2APath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	id, sub, _ := strings.Cut(rest, "/")
	agent := f.agents[id]
	if agent == nil {
		writeA2AError(w, http.StatusNotFound, gateway.NewError("UNKNOWN_AGENT",
			fmt.Sprintf("gateway %q hosts no agent %q (it hosts %v)", f.n.serverID, id[:min(len(id), 64)], sortedKeys(f.n.agents))))
		return
	}
	if "/"+sub == a2asrv.WellKnownAgentCardPath {
		f.serveCard(w, r, id)
		return
	}
	if "/"+sub == a2aV03+a2asrv.WellKnownAgentCardPath {
		f.serveV03Card(w, r, id)
		return
	}
	caller, err := f.authenticate(r, id)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentfed"`)
		writeA2AError(w, refusalStatus(w, err), gateway.ToError(err))
		return
	}
	limit := int64(maxA2ABody)
	if caller.maxBytes > 0 {
		limit = int64(min(caller.maxBytes, maxA2ABody)) // the whole request body
	}
	// A gateway.auth.peers caller shares the budget of that peer's
	// gateway connections (same serverId); a gateway.auth.a2a one has its own.
	key := caller.id.PeerID
	if len(f.n.auth().A2A) > 0 {
		key = "a2a:" + key
	}
	if err := f.n.limits.allow(key, true, caller.rate); err != nil {
		f.n.audit.refuse(auditEvent{Dir: "in", Kind: "limit", Peer: caller.id.PeerID, Method: "a2a", Outcome: CodeRateLimited}, time.Now())
		writeA2AError(w, http.StatusTooManyRequests, gateway.ToError(err))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(f.stopping, cancel)() // an event stream does not hold Shutdown
	r = r.WithContext(context.WithValue(withRemote(ctx, r.RemoteAddr), a2aCallerKey{}, caller.id))
	if sub == "" {
		agent.rpc.ServeHTTP(w, r)
		return
	}
	if "/"+sub == a2aV03 {
		agent.v03.ServeHTTP(w, r)
		return
	}
	if sub == "rest" || strings.HasPrefix(sub, "rest/") {
		agent.rest.ServeHTTP(w, r)
		return
	}
	if "/"+sub == a2aV03+"/rest" || strings.HasPrefix("/"+sub, a2aV03+"/rest/") {
		agent.v03rest.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

func (f *a2aFront) serveCard(w http.ResponseWriter, r *http.Request, id string) {
	if id == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(f.card(r, id))
}

// serveV03Card serves the card of agent id for A2A 0.3 clients: the same
// card, in the shape both versions read, with the 0.3 JSON-RPC and
// HTTP+JSON endpoints.
func (f *a2aFront) serveV03Card(w http.ResponseWriter, r *http.Request, id string) {
	card := f.card(r, id)
	base := card.SupportedInterfaces[0].URL + a2aV03
	card.SupportedInterfaces = []*a2a.AgentInterface{
		{URL: base, ProtocolBinding: a2a.TransportProtocolJSONRPC, ProtocolVersion: a2av0.Version},
		{URL: base + "/rest", ProtocolBinding: a2a.TransportProtocolHTTPJSON, ProtocolVersion: a2av0.Version}}
	a2asrv.NewAgentCardHandler(a2av0.NewStaticAgentCardProducer(card)).ServeHTTP(w, r)
}

// a2aUser names the authenticated caller to a2a-go, which keeps each
// caller's tasks to itself.
type a2aUser struct {
	a2asrv.PassthroughCallInterceptor
}

func (a2aUser) Before(ctx context.Context, cc *a2asrv.CallContext, _ *a2asrv.Request) (context.Context, any, error) {
	if id, ok := ctx.Value(a2aCallerKey{}).(*gateway.Identity); ok {
		cc.User = a2asrv.NewAuthenticatedUser(id.PeerID, nil)
	}
	return ctx, nil, nil
}

func writeA2AError(w http.ResponseWriter, status int, e *gateway.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// a2aExecutor runs A2A messages on one local agent through
// Node.deliverLocal, exactly as a relayed message runs.
type a2aExecutor struct {
	f     *a2aFront
	n     *Node
	agent string
	dedup *a2aDedup
}

func (x *a2aExecutor) Execute(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		done, ok := x.f.started()
		if !ok {
			yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateFailed,
				a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart(a2aInterrupted))), nil)
			return
		}
		defer done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(x.f.stopping, cancel)()
		from := "a2a"
		if ec.User != nil {
			from = ec.User.Name
		}
		msg := fromA2AMessage(ec.Message, from, x.agent, ec.ContextID)
		x.dedup.remember(ec)
		if ec.StoredTask == nil {
			if !yield(a2a.NewSubmittedTask(ec, ec.Message), nil) {
				return
			}
		}
		if !yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateWorking, nil), nil) {
			return
		}
		reply, err := x.n.deliverLocal(ctx, x.n.agents[x.agent], msg, false)
		if err != nil {
			state := a2a.TaskStateFailed
			e := gateway.ToError(err)
			m := a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart(e.Code+": "+e.Message))
			switch {
			case x.f.stopping.Err() != nil: // the gateway stops: failed, as after a crash
				m = a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart(a2aInterrupted))
			case ctx.Err() != nil:
				state = a2a.TaskStateCanceled
			}
			yield(a2a.NewStatusUpdateEvent(ec, state, m), nil)
			return
		}
		m := a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart(reply.Content))
		if len(reply.Context) > 0 {
			c, err := asDecodedJSON(reply.Context)
			if err != nil {
				m = a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart(gateway.CodeInternal+": the agent's reply context is not JSON: "+clip(err.Error(), 200)))
				yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateFailed, m), nil)
				return
			}
			m.Metadata = map[string]any{"context": c}
		}
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCompleted, m), nil)
	}
}

// started counts an execution in, unless the gateway is stopping; done
// counts it out.
func (f *a2aFront) started() (done func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false
	}
	f.running.Add(1)
	return f.running.Done, true
}

// close cancels every A2A request and execution, and waits until the
// executions have returned or ctx ends; for Shutdown, before the HTTP
// server's, which would otherwise wait for open event streams.
func (f *a2aFront) close(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.stop()
	done := make(chan struct{})
	go func() { f.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("A2A executions still running: %w", ctx.Err())
	}
}

// Cancel marks the task canceled; a2a-go cancels the running Execute's
// context, which deliverLocal hands to the agent.
func (x *a2aExecutor) Cancel(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCanceled, nil), nil)
	}
}

// fromA2AMessage maps an A2A message onto a FederationMessage: its text
// parts joined as content, its contextId as correlationId, metadata
// "context" as context and metadata "priority" as priority.
func fromA2AMessage(m *a2a.Message, fromServer, toAgent, contextID string) *Message {
	var text []string
	for _, p := range m.Parts {
		if t := p.Text(); t != "" {
			text = append(text, t)
		}
	}
	msg := NewMessage(TypeRequest, fromServer, "a2a", toAgent, strings.Join(text, "\n"))
	msg.CorrelationID = cmpOr(m.ContextID, contextID)
	if c, ok := m.Metadata["context"].(map[string]any); ok {
		msg.Context = c
	}
	if s, ok := m.Metadata["priority"].(string); ok {
		if p, err := ParsePriority(s); err == nil {
			msg.Priority = p
		}
	}
	return msg
}

// asDecodedJSON gives v as decoding its JSON gives it: a Go agent's reply
// context may hold any JSON-encodable value ([]string, structs), and
// a2a-go's task store copies metadata with encoding/gob, which knows only
// the types JSON decodes to. A reply from another gateway already is so.
func asDecodedJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}
