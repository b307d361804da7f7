package federation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/agentfed/agentfed/gateway"
)

// Peer types (federation.peers[].type).
const (
	PeerTypeGateway = "gateway"
	PeerTypeA2A     = "a2a"
)

// maxA2AResponse bounds one response an A2A peer sends, card or answer.
const maxA2AResponse = 4 << 20

// a2aClients caches one a2a-go client per A2A peer, made from the card at
// the peer's URL. Its zero value is ready for use.
type a2aClients struct {
	mu sync.Mutex                // guards m
	m  map[string]*a2aPeerClient // by peer id
}

type a2aPeerClient struct {
	url, token string
	tls        PeerTLSConfig  // the peer's tls settings hc was built with
	guard      *hostAllowList // whose dialer hc was built with; a reloaded list builds a new client
	c          *a2aclient.Client
	hc         *http.Client
}

// a2aHTTPClient returns an HTTP client for A2A peer p that sends p's
// token and follows no redirect. A peer not from the config file
// (register_peer, discovery) is held to gateway.dynamicPeerHosts: its URL
// here, and every address any request connects to (the card's interface
// URLs included), as a gateway peer's dial is.
func (n *Node) a2aHTTPClient(p *peer) (_ *http.Client, _ *hostAllowList, err error) {
	var guard *hostAllowList
	if p.source != SourceStatic {
		guard = n.hostAllow.Load()
	}
	if err = guard.checkURL(p.URL); err != nil {
		return nil, nil, fmt.Errorf("A2A peer %q: %w", p.ID, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(p.URL, "https:") { // verified as a wss:// gateway peer is: caFile, client certificate, pin
		if tr.TLSClientConfig, err = peerTLSConfig(p.ID, p.TLS, n.log); err != nil {
			return nil, nil, err
		}
	}
	if guard != nil {
		tr.Proxy = nil // the address checked must be the peer's, not a proxy's
		tr.DialContext = guard.dialer(p.ID).DialContext
	}
	return &http.Client{Transport: a2aTransport{token: p.Token, next: tr},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, guard, nil
}

// client returns the client for p, resolving p's card on first use or
// after p's URL, token or gateway.dynamicPeerHosts changed.
func (cs *a2aClients) client(ctx context.Context, n *Node, p *peer) (*a2aclient.Client, error) {
	hc, guard, err := n.a2aHTTPClient(p)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	pc := cs.m[p.ID]
	cs.mu.Unlock()
	var tlsCfg PeerTLSConfig
	if p.TLS != nil {
		tlsCfg = *p.TLS
	}
	if pc != nil && pc.url == p.URL && pc.token == p.Token && pc.tls == tlsCfg && pc.guard == guard {
		return pc.c, nil
	}
	card, err := agentcard.NewResolver(hc).Resolve(ctx, strings.TrimSuffix(p.URL, "/"))
	if err != nil {
		hc.CloseIdleConnections()
		return nil, fmt.Errorf("%w: A2A peer %q: read its agent card at %s: %v", ErrPeerUnavailable, p.ID, p.URL, err)
	}
	c, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(hc), a2aclient.WithRESTTransport(hc),
		a2aclient.WithConfig(a2aclient.Config{PreferredTransports: []a2a.TransportProtocol{a2a.TransportProtocolJSONRPC, a2a.TransportProtocolHTTPJSON}}))
	if err != nil {
		hc.CloseIdleConnections()
		return nil, fmt.Errorf("%w: A2A peer %q: no transport of its card at %s works: %v", ErrPeerUnavailable, p.ID, p.URL, err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if old := cs.m[p.ID]; old != nil {
		old.close()
	}
	if cs.m == nil {
		cs.m = map[string]*a2aPeerClient{}
	}
	cs.m[p.ID] = &a2aPeerClient{url: p.URL, token: p.Token, tls: tlsCfg, guard: guard, c: c, hc: hc}
	n.peers.setCardSkills(p, card.Skills)
	return c, nil
}

// known reports whether p has been used: it has a client.
func (cs *a2aClients) known(id string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.m[id] != nil
}

// drop ends the client of a peer that is gone.
func (cs *a2aClients) drop(id string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if pc := cs.m[id]; pc != nil {
		pc.close()
		delete(cs.m, id)
	}
}

func (pc *a2aPeerClient) close() {
	pc.c.Destroy()
	pc.hc.CloseIdleConnections()
}

// closeAll ends every client; for Shutdown.
func (cs *a2aClients) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for id, pc := range cs.m {
		pc.close()
		delete(cs.m, id)
	}
}

// a2aTransport sends the peer's token as a bearer token and bounds what
// the peer may send back.
type a2aTransport struct {
	token string
	next  http.RoundTripper
}

func (t a2aTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.next.RoundTrip(r)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		resp.Body.Close()
		return nil, errA2ARefused{resp.Status}
	}
	if err == nil {
		resp.Body = &limitedBody{ReadCloser: resp.Body, left: maxA2AResponse}
	}
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport underneath.
func (t a2aTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// errA2ARefused is an A2A peer's HTTP 401 or 403.
type errA2ARefused struct{ status string }

func (e errA2ARefused) Error() string { return "the A2A peer answered " + e.status }

// limitedBody fails a read past its limit instead of truncating quietly.
type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("A2A response is over %d bytes", maxA2AResponse)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// sendA2A delivers d.msg to an A2A peer as a blocking SendMessage and
// keeps the answer in d.answer. The A2A message id is the message's id,
// so that a durable message retried is the same A2A message.
func (d *delivery) sendA2A() error {
	c, err := d.n.a2aPeers.client(d.ctx, d.n, d.p)
	if err != nil {
		return err
	}
	res, err := c.SendMessage(d.ctx, &a2a.SendMessageRequest{Message: toA2AMessage(d.msg)})
	if err != nil {
		if refused := (errA2ARefused{}); errors.As(err, &refused) || errors.Is(err, a2a.ErrUnauthenticated) {
			return gateway.NewError(gateway.CodeUnauthorized, fmt.Sprintf("A2A peer %q refused its token (federation.peers[].token): %v", d.p.ID, err))
		}
		if d.ctx.Err() != nil {
			return d.ctx.Err()
		}
		return fmt.Errorf("%w: A2A peer %q: %v", ErrPeerUnavailable, d.p.ID, err)
	}
	var m *a2a.Message
	switch r := res.(type) {
	case *a2a.Message:
		m = r
	case *a2a.Task:
		m = r.Status.Message
		if r.Status.State != a2a.TaskStateCompleted {
			return &AgentError{Public: fmt.Sprintf("A2A task ended %s: %s", r.Status.State, a2aText(m)),
				Err: fmt.Errorf("%w: A2A peer %q: task %s is %s", ErrAgentFailed, d.p.ID, r.ID, r.Status.State)}
		}
		if m == nil && len(r.Artifacts) > 0 {
			m = &a2a.Message{Parts: r.Artifacts[len(r.Artifacts)-1].Parts}
		}
	}
	var ctx map[string]any
	if m != nil {
		ctx, _ = m.Metadata["context"].(map[string]any)
	}
	d.answer = d.msg.Reply(cmpOr(d.p.ServerID, d.p.ID), a2aText(m), ctx)
	return nil
}

// toA2AMessage maps a FederationMessage onto an A2A message: content as
// one text part, correlationId as contextId, and context, priority,
// type and sender as metadata.
func toA2AMessage(msg *Message) *a2a.Message {
	m := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(msg.Content))
	m.ID = msg.MessageID
	m.ContextID = msg.CorrelationID
	m.Metadata = map[string]any{"type": string(msg.Type), "priority": string(msg.Priority),
		"fromServer": msg.FromServer, "fromAgent": msg.FromAgent}
	if len(msg.Context) > 0 {
		m.Metadata["context"] = msg.Context
	}
	return m
}

// a2aText joins the text parts of m.
func a2aText(m *a2a.Message) string {
	if m == nil {
		return ""
	}
	var text []string
	for _, p := range m.Parts {
		if t := p.Text(); t != "" {
			text = append(text, t)
		}
	}
	return strings.Join(text, "\n")
}

// queryA2ACapabilities reads an A2A peer's card live: its skills' ids are
// its capabilities.
func (n *Node) queryA2ACapabilities(ctx context.Context, p *peer, timeout time.Duration) (*CapabilityReport, error) {
	hc, _, err := n.a2aHTTPClient(p)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	card, err := agentcard.NewResolver(hc).Resolve(ctx, strings.TrimSuffix(p.URL, "/"))
	if err == nil {
		n.peers.setCardSkills(p, card.Skills)
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: A2A peer %q did not answer within %v", ErrTimeout, p.ID, timeout)
	case err != nil:
		return nil, fmt.Errorf("%w: A2A peer %q: read its agent card at %s: %v", ErrPeerUnavailable, p.ID, p.URL, err)
	}
	caps := make([]string, 0, len(card.Skills))
	for _, s := range card.Skills {
		caps = append(caps, s.ID)
	}
	return &CapabilityReport{PeerID: p.ID, PeerName: p.Name, Capabilities: caps, Description: card.Description}, nil
}
