package federation

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// A2ACredential lets an A2A client (an agent framework calling this
// gateway's agents over A2A, gateway.auth.a2a) in when it presents Token
// (or, during a rotation, PreviousToken) as a bearer token, and says what
// it may reach. It is not a peer gateway's credential: its token opens
// the A2A endpoints and nothing else. Empty allow-lists allow everything.
type A2ACredential struct {
	// ID names the caller in logs, audit and metrics, and owns its tasks:
	// a caller sees only its own tasks.
	ID    string `yaml:"id" json:"id"`
	Token string `yaml:"token" json:"token"`
	// PreviousToken stays valid alongside Token while the client switches
	// over; remove it (and reload with SIGHUP) when it has.
	PreviousToken string `yaml:"previousToken" json:"previousToken,omitempty"`
	// AllowAgents lists the local agent ids this caller may reach.
	AllowAgents []string `yaml:"allowAgents" json:"allowAgents,omitempty"`
	// AllowCapabilities: this caller may reach only agents that have at
	// least one of these capabilities.
	AllowCapabilities []string `yaml:"allowCapabilities" json:"allowCapabilities,omitempty"`
	// RatePerSec overrides gateway.limits.peerRatePerSec for this caller.
	RatePerSec float64 `yaml:"ratePerSec" json:"ratePerSec,omitempty"`
	// MaxMessageBytes caps one A2A request body. Default (and at most)
	// 4 MiB.
	MaxMessageBytes int `yaml:"maxMessageBytes" json:"maxMessageBytes,omitempty"`
}

// a2aCaller is who an A2A request authenticated as, with the grants it
// carries.
type a2aCaller struct {
	id                *gateway.Identity
	field             string // the config entry, for messages: gateway.auth.a2a[id=...]
	allowAgents, caps []string
	rate              float64
	maxBytes          int
}

// matchA2A finds the credential token belongs to, comparing every token
// in constant time. With gateway.auth.a2a set only its entries are
// accepted; without it, gateway.auth.peers entries are (deprecated: an
// A2A client then holds a federation peer's token).
func matchA2A(a *AuthConfig, token string) *a2aCaller {
	var match *a2aCaller
	if len(a.A2A) > 0 {
		for _, c := range a.A2A {
			if tokenEqual(token, c.Token) || c.PreviousToken != "" && tokenEqual(token, c.PreviousToken) {
				match = &a2aCaller{id: &gateway.Identity{PeerID: c.ID, Authenticated: true},
					field:       fmt.Sprintf("gateway.auth.a2a[id=%s]", c.ID),
					allowAgents: c.AllowAgents, caps: c.AllowCapabilities, rate: c.RatePerSec, maxBytes: c.MaxMessageBytes}
			}
		}
		return match
	}
	for _, c := range a.Peers {
		if tokenEqual(token, c.Token) || c.PreviousToken != "" && tokenEqual(token, c.PreviousToken) {
			match = &a2aCaller{id: &gateway.Identity{PeerID: c.ServerID, Authenticated: true},
				field:       fmt.Sprintf("gateway.auth.peers[serverId=%s]", c.ServerID),
				allowAgents: c.AllowAgents, caps: c.AllowCapabilities, rate: c.RatePerSec, maxBytes: c.MaxMessageBytes}
		}
	}
	return match
}

// a2aTokenSource names where A2A tokens are configured, for messages and
// cards: gateway.auth.peers only while it stands in for an empty
// gateway.auth.a2a; with neither, where to add one.
func a2aTokenSource(a *AuthConfig) string {
	if len(a.A2A) == 0 && len(a.Peers) > 0 {
		return "gateway.auth.peers"
	}
	return "gateway.auth.a2a"
}

// authenticate matches r's bearer token (see matchA2A) and applies that
// entry's allowAgents and allowCapabilities for agent.
func (f *a2aFront) authenticate(r *http.Request, agent string) (*a2aCaller, error) {
	auth := f.n.auth()
	token := bearerToken(r)
	refused := func(err error) (*a2aCaller, error) {
		f.n.metrics.refused("auth")
		f.n.audit.refuse(auditEvent{Dir: "in", Kind: "auth", Remote: r.RemoteAddr, Method: "a2a", Outcome: gateway.CodeOf(err)}, time.Now())
		return nil, err
	}
	if len(auth.A2A) == 0 && len(auth.Peers) == 0 {
		return refused(unauthorized("AUTH_TOKEN_NOT_CONFIGURED", "this gateway has no A2A clients: add one to gateway.auth.a2a (id and token), then send its token in the header Authorization: Bearer TOKEN"))
	}
	if token == "" {
		return refused(unauthorized("AUTH_TOKEN_MISSING", "A2A at "+A2APath+" needs a token of "+a2aTokenSource(auth)+" in the header Authorization: Bearer TOKEN"))
	}
	if err := f.n.guesses.check(r); err != nil {
		return refused(err)
	}
	c := matchA2A(auth, token)
	if c == nil {
		f.n.guesses.failed(r)
		return refused(unauthorized("AUTH_TOKEN_MISMATCH", "the bearer token matches no "+a2aTokenSource(auth)+" entry"))
	}
	f.n.warnA2AAuth(c)
	if len(c.allowAgents) > 0 && !slices.Contains(c.allowAgents, agent) {
		return nil, f.n.deny(c.id, "a2a", agent, fmt.Sprintf("agent %q is not in the allowAgents of %s", agent, c.field))
	}
	if len(c.caps) > 0 && !grantAllows(c.caps, f.n.agents[agent].cfg.Capabilities) {
		return nil, f.n.deny(c.id, "a2a", agent, fmt.Sprintf("agent %q has none of the allowCapabilities %q of %s", agent, c.caps, c.field))
	}
	return c, nil
}

// a2aAuth checks gateway.auth.a2a.
func (ch *checker) a2aAuth(entries []A2ACredential) {
	first := make(map[string]int) // id, folded -> index of its first use
	for i, c := range entries {
		path := fmt.Sprintf("gateway.auth.a2a[%d]", i)
		switch {
		case c.ID == "":
			ch.add(path+".id", "required; name the A2A client this token is for")
		case !validIdent(c.ID):
			ch.ident(path+".id", c.ID, "a name for the A2A client")
		default:
			if j, dup := first[strings.ToLower(c.ID)]; dup {
				ch.add(path+".id", "%q is also gateway.auth.a2a[%d].id (ids are compared ignoring case here); give each client its own id", c.ID, j)
			} else {
				first[strings.ToLower(c.ID)] = i
			}
		}
		if c.Token == "" {
			ch.add(path+".token", "required; set the bearer token this A2A client presents")
		}
		if c.PreviousToken != "" && c.PreviousToken == c.Token {
			ch.add(path+".previousToken", "is the same as token; set it to the token being replaced, or remove it")
		}
		for j, cap := range c.AllowCapabilities {
			if _, err := parseRequirement(cap); err != nil {
				ch.add(fmt.Sprintf("%s.allowCapabilities[%d]", path, j), "%v", err)
			}
		}
		ch.count(path+".maxMessageBytes", c.MaxMessageBytes)
		if c.RatePerSec < 0 {
			ch.add(path+".ratePerSec", "%g is negative; leave it out for gateway.limits.peerRatePerSec", c.RatePerSec)
		}
	}
}

// warnA2AAuth warns, once, when an A2A caller is let in with a peer
// gateway's token because gateway.auth.a2a is empty: a gateway with peers
// and no A2A clients says nothing.
func (n *Node) warnA2AAuth(c *a2aCaller) {
	if strings.HasPrefix(c.field, "gateway.auth.peers") {
		n.a2aPeerTokenWarning.Do(func() {
			n.log.Warn("an A2A client was accepted with a gateway.auth.peers token because gateway.auth.a2a is empty (deprecated): list A2A clients under gateway.auth.a2a with tokens of their own",
				"credential", c.field, "a2aPath", A2APath)
		})
	}
}
