package federation_test

// A hostile client of a NATS system without the derived permissions may
// put anything in AF_REGISTRY and AF_CTX_<serverId>: these tests put it
// there with a bare NATS client and check that a gateway is neither
// misled nor stalled.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// hostileEntry is a directory entry for server announcing agents, stamped
// at (Unix ms) and signed by id: each agent is an id, or a whole agent
// object.
func hostileEntry(t *testing.T, id *federation.Identity, server string, at int64, agents ...any) []byte {
	t.Helper()
	var list []any
	for _, a := range agents {
		if s, ok := a.(string); ok {
			a = map[string]any{"id": s, "capabilities": []string{}}
		}
		list = append(list, a)
	}
	e, err := json.Marshal(map[string]any{"serverId": server, "version": "x", "signingKey": id.Public().SigningKey, "agents": list, "issuedAt": at})
	if err != nil {
		t.Fatal(err)
	}
	return federation.SignNATSEntry(id, e)
}

func peerIDs(g *gw) []string {
	var ids []string
	for _, p := range g.ListPeers().Peers {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestNATSDirectoryRefusesMalformedEntries: a signed entry whose agents
// could not be addressed on NATS, alias another site's, exceed the bounds
// of a peer, or that was stamped far from now (a replay) is refused whole;
// an entry older than the one taken that announces other agents is a
// replay too.
func TestNATSDirectoryRefusesMalformedEntries(t *testing.T) {
	hub, url := natsHub(t, "hub", "")
	_, js, _ := rawNATS(t, url, "", "")
	id := newIdentity(t)
	now := time.Now().UnixMilli()
	withCaps := func(caps ...string) map[string]any { return map[string]any{"id": "ghost", "capabilities": caps} }
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprint("c", i)
	}
	for _, tt := range []struct {
		site  string
		entry []byte
	}{
		{"dotted", hostileEntry(t, id, "dotted", now, "ghost.x")},      // subject af.agent.dotted.ghost.x
		{"at", hostileEntry(t, id, "at", now, "ghost@x")},              // peer id ghost@x@at, as agent ghost of site x@at
		{"twice", hostileEntry(t, id, "twice", now, "ghost", "ghost")}, // one peer id, two agents
		{"caps", hostileEntry(t, id, "caps", now, withCaps(many...))},
		{"badcap", hostileEntry(t, id, "badcap", now, withCaps("search@not-a-version"))},
		{"desc", hostileEntry(t, id, "desc", now, map[string]any{"id": "ghost", "description": strings.Repeat("d", 5000)})},
		{"unstamped", hostileEntry(t, id, "unstamped", 0, "ghost")},
		{"old", hostileEntry(t, id, "old", now-time.Hour.Milliseconds(), "ghost")},
		{"ahead", hostileEntry(t, id, "ahead", now+time.Hour.Milliseconds(), "ghost")},
	} {
		putEntry(t, js, tt.site, tt.entry)
	}
	// A replay is older than the entry the hub has taken: wait until it
	// has taken the current one (a watch that starts after both puts is
	// handed only the last).
	putEntry(t, js, "replay", hostileEntry(t, id, "replay", now, "current"))
	waitPeerState(t, hub, "current@replay", "connected")
	putEntry(t, js, "replay", hostileEntry(t, id, "replay", now-1000, "ghost"))
	putEntry(t, js, "site-z", hostileEntry(t, id, "site-z", now, "marker"))
	waitPeerState(t, hub, "marker@site-z", "connected") // after the others, in order
	if diff := cmp.Diff([]string{"current@replay", "marker@site-z"}, peerIDs(hub)); diff != "" {
		t.Errorf("peers after the hostile entries (-want +got):\n%s", diff)
	}
}

// TestNATSDirectoryFull: an entry with more agents than the directory
// has room for is refused, instead of pushing other sites' agents out of
// it; sites whose gateways are gone make room, the longest gone first.
func TestNATSDirectoryFull(t *testing.T) {
	federation.SetNATSPresenceTTL(t, time.Second)
	hub, url := natsHub(t, "hub", "")
	b := natsMember(t, url, "site-b", "data", "sql")
	waitPeerState(t, hub, "data@site-b", "connected")
	_, js, _ := rawNATS(t, url, "", "")
	id := newIdentity(t)
	var flood []any
	for i := range 4095 { // with site-b's and site-z's agents, one too many
		flood = append(flood, fmt.Sprintf("a%04d", i)) // sorted before data@site-b
	}
	mark := func(agent string) { // and wait until the hub has taken what was put before
		putEntry(t, js, "site-z", hostileEntry(t, id, "site-z", time.Now().UnixMilli(), agent))
		waitPeerState(t, hub, agent+"@site-z", "connected")
	}
	mark("marker")
	putEntry(t, js, "flood", hostileEntry(t, id, "flood", time.Now().UnixMilli(), flood...))
	mark("marker2")
	if ids := peerIDs(hub); !slices.Contains(ids, "data@site-b") || slices.Contains(ids, "a0000@flood") {
		t.Errorf("after a 4,095-agent entry, the hub lists %d peers (data@site-b: %v, a0000@flood: %v); want site-b's, not the flood's",
			len(ids), slices.Contains(ids, "data@site-b"), slices.Contains(ids, "a0000@flood"))
	}

	b.stop(t)
	waitPeerState(t, hub, "data@site-b", "down")
	putEntry(t, js, "flood", hostileEntry(t, id, "flood", time.Now().UnixMilli(), flood...))
	mark("marker3")
	if ids := peerIDs(hub); slices.Contains(ids, "data@site-b") || !slices.Contains(ids, "a0000@flood") {
		t.Errorf("with site-b gone, the hub lists %d peers (data@site-b: %v, a0000@flood: %v); want the flood's in site-b's room",
			len(ids), slices.Contains(ids, "data@site-b"), slices.Contains(ids, "a0000@flood"))
	}
}

// TestNATSSyncedContextHostileValues: a session value in the site's
// bucket that its gateways could not have written (not JSON, or over the
// per-session limit) is never handed to an agent; the relay says what is
// wrong, and the next sync into the session replaces it.
func TestNATSSyncedContextHostileValues(t *testing.T) {
	s := newNATSSite(t, false)
	r := s.gateway("site-r", "r1")
	federation.SetContextLimits(r.Node, 10<<10, 1<<20)
	sender := s.gateway("site-s", "")
	_, js, _ := rawNATS(t, s.url, "", "")
	big, err := json.Marshal(map[string]any{"data": map[string]any{"k": strings.Repeat("v", 20<<10)}})
	if err != nil {
		t.Fatal(err)
	}
	for key, v := range map[string][]byte{"site-s.junk": []byte("not json"), "site-s.big": big} {
		if _, err := js.Publish(context.Background(), "$KV.AF_CTX_site-r."+key, v); err != nil {
			t.Fatal(err)
		}
	}
	for session, want := range map[string]string{"junk": "is not the JSON", "big": "over the 10240-byte limit"} {
		tstest.WaitFor(t, 10*time.Second, func() error {
			res, err := sender.Send(context.Background(), federation.SendRequest{PeerID: "worker@site-r", Message: "x",
				MessageOptions: federation.MessageOptions{CorrelationID: session}})
			switch {
			case err != nil:
				return err
			case res.Error == nil:
				return fmt.Errorf("send in session %s: %+v; want an error", session, res.Response)
			case !strings.Contains(res.Error.Message, want), !strings.Contains(res.Error.Message, "KV bucket AF_CTX_site-r"):
				return fmt.Errorf("send in session %s: %s; want it to say %q and name the bucket", session, res.Error.Message, want)
			case strings.Contains(res.Error.Message, "agentfed.db"):
				return fmt.Errorf("send in session %s: %s; names storage.dir's file, but the context is on NATS", session, res.Error.Message)
			}
			return nil
		})
		if r := syncCtx(t, sender, session, map[string]any{"fresh": session}); r.Status != federation.StatusOK {
			t.Fatalf("sync into session %s over a hostile value: %+v; want ok", session, r)
		}
		if diff := cmp.Diff(map[string]any{"fresh": session}, seenBy(t, sender, session, "r1")); diff != "" {
			t.Errorf("context of session %s after the sync (-want +got):\n%s", session, diff)
		}
	}
}

// TestNATSBroadcastFlood: a broadcast holding more requests for a gateway
// than it has agents runs no more than its agents, and the requests past
// them get the empty answer, not an explained error each (a small publish
// answered by a large one).
func TestNATSBroadcastFlood(t *testing.T) {
	_, url := natsHub(t, "hub", "public")
	nc, _, _ := rawNATS(t, url, "", "")
	replies, err := nc.SubscribeSync("af.reply.evil.b1.hub")
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]json.RawMessage, 2000)
	for i := range reqs {
		reqs[i] = json.RawMessage("{}")
	}
	data, err := json.Marshal(map[string]any{"id": "b1", "requests": map[string]any{"hub": reqs}})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("af.bcast.evil", data); err != nil {
		t.Fatal(err)
	}
	m, err := replies.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Answers []json.RawMessage `json:"answers"`
	}
	if err := json.Unmarshal(m.Data, &rep); err != nil || len(rep.Answers) != len(reqs) {
		t.Fatalf("reply to %d requests for a gateway of one agent: %d bytes, %d answers, %v; want one each", len(reqs), len(m.Data), len(rep.Answers), err)
	}
	if max := 16 * len(reqs); len(m.Data) > max {
		t.Errorf("reply to %d requests for a gateway of one agent: %d bytes; want at most %d", len(reqs), len(m.Data), max)
	}
	for i, a := range rep.Answers[1:] {
		if string(a) != `{"ok":false}` {
			t.Fatalf("answer %d to a request past the gateway's one agent: %s; want the empty answer", i+1, a)
		}
	}
}

// TestNATSDirectoryReplay: the last entry of a site whose gateways are
// gone, put again by another client, does not make it connected; a new
// entry of the site does.
func TestNATSDirectoryReplay(t *testing.T) {
	ctx := context.Background()
	hub, url := natsHub(t, "hub", "")
	_, js, _ := rawNATS(t, url, "", "")
	id := newIdentity(t)
	last := hostileEntry(t, id, "site-q", time.Now().UnixMilli(), "data")
	putEntry(t, js, "site-q", last)
	waitPeerState(t, hub, "data@site-q", "connected")
	kv, err := js.KeyValue(ctx, "AF_REGISTRY")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "site-q"); err != nil { // as when its entry expires
		t.Fatal(err)
	}
	waitPeerState(t, hub, "data@site-q", "down")

	putEntry(t, js, "site-q", last)
	putEntry(t, js, "site-z", hostileEntry(t, id, "site-z", time.Now().UnixMilli(), "marker"))
	waitPeerState(t, hub, "marker@site-z", "connected") // after the replay, in order
	if got := peerState(hub, "data@site-q"); got != "down" {
		t.Errorf("after its last entry was put again, data@site-q is %q; want down", got)
	}
	putEntry(t, js, "site-q", hostileEntry(t, id, "site-q", time.Now().UnixMilli()+1, "data"))
	waitPeerState(t, hub, "data@site-q", "connected")
}

// TestNATSDirectoryLongDescription: an agent whose description is longer
// than a peer's may be is announced with as much of it as fits, not
// refused by the other gateways.
func TestNATSDirectoryLongDescription(t *testing.T) {
	hub, url := natsHub(t, "hub", "")
	cfg := natsConfig(t, url, "site-b", "data")
	cfg.Agents[0].Description = strings.Repeat("d", 5000)
	start(t, cfg, listen(t), nil)
	waitPeerState(t, hub, "data@site-b", "connected")
	caps, err := hub.QueryCapabilities(context.Background(), "data@site-b", 0)
	if err != nil || len(caps.Description) != 4096 {
		t.Fatalf("query_capabilities of an agent with a 5,000-byte description: %+v, %v; want its first 4,096 bytes", caps, err)
	}
	// Invalid UTF-8 grows in JSON (a byte becomes U+FFFD, three): what is
	// announced is cut after that, as the others measure it.
	cfg = natsConfig(t, url, "site-c", "data")
	cfg.Agents[0].Description = strings.Repeat("\xff", 2000)
	start(t, cfg, listen(t), nil)
	waitPeerState(t, hub, "data@site-c", "connected")
	caps, err = hub.QueryCapabilities(context.Background(), "data@site-c", 0)
	if err != nil || len(caps.Description) > 4096 || !utf8.ValidString(caps.Description) {
		t.Fatalf("query_capabilities of an agent with 2,000 invalid UTF-8 bytes of description: %d bytes, %v; want valid UTF-8 of at most 4,096", len(caps.Description), err)
	}
}

// TestNATSSyncedContextKeyFlood: a gateway tracks no more keys of its
// site's bucket than the site may hold sessions; keys put past that by
// another client are not handed to agents.
func TestNATSSyncedContextKeyFlood(t *testing.T) {
	ctx := context.Background()
	s := newNATSSite(t, false)
	r := s.gateway("site-r", "r1")
	federation.SetContextSessionLimit(r.Node, 2)
	sender := s.gateway("site-s", "")
	_, js, _ := rawNATS(t, s.url, "", "")
	for _, session := range []string{"s1", "s2", "s3"} {
		v := []byte(`{"data":{"session":"` + session + `"}}`)
		if _, err := js.Publish(ctx, "$KV.AF_CTX_site-r.site-s."+session, v); err != nil {
			t.Fatal(err)
		}
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		if got := seenBy(t, sender, "s2", "r1"); len(got) == 0 {
			return errors.New("session s2 has no context yet")
		}
		return nil
	})
	// A sync into s3, in the bucket but not kept, is refused as a third
	// session would be, not answered ok with a context no agent sees.
	if r := syncCtx(t, sender, "s3", map[string]any{"fresh": true}); r.Status == federation.StatusOK || r.Error == nil || r.Error.Code != "OVERLOADED" {
		t.Errorf("sync into session s3, past the limit of 2 sessions: %+v; want OVERLOADED", r)
	}
	kv, err := js.KeyValue(ctx, "AF_CTX_site-r")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "site-s.s2"); err != nil { // after s3: once r1 has seen it, it has seen s3
		t.Fatal(err)
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		if got := seenBy(t, sender, "s2", "r1"); len(got) != 0 {
			return fmt.Errorf("session s2 still has %v", got)
		}
		return nil
	})
	if diff := cmp.Diff(map[string]any{"session": "s1"}, seenBy(t, sender, "s1", "r1")); diff != "" {
		t.Errorf("context of session s1, within the limit (-want +got):\n%s", diff)
	}
	if got := seenBy(t, sender, "s3", "r1"); len(got) != 0 {
		t.Errorf("session s3, a key put past the limit of 2 sessions, handed the agent %v; want nothing", got)
	}
}

// TestNATSHandlerLimit: a gateway handles at most its limit of messages
// from NATS at once; past it a request is answered OVERLOADED at once,
// instead of getting a goroutine that holds it for as long as the agent
// takes, and once one ends the next is served.
func TestNATSHandlerLimit(t *testing.T) {
	ctx := context.Background()
	_, url := natsHub(t, "hub", "public")
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	slow := natsMemberWith(t, url, "site-s", "slow", federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		entered <- struct{}{}
		<-release
		return &federation.Answer{Content: msg.Content}, nil
	}))
	federation.SetNATSHandlerLimit(slow.Node, 2)
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	t.Cleanup(done) // before slow stops, which waits for its handlers
	b := natsMember(t, url, "site-b", "data")

	held := make(chan *federation.Result, 2)
	for range 2 {
		go func() {
			r, err := b.Send(ctx, federation.SendRequest{PeerID: "slow@site-s", Message: "hold"})
			if err != nil {
				t.Error(err)
			}
			held <- r
		}()
	}
	<-entered
	<-entered // both handled at once: the limit is reached

	r, err := b.Send(ctx, federation.SendRequest{PeerID: "slow@site-s", Message: "one too many", MessageOptions: federation.MessageOptions{TimeoutMs: 5000}})
	if err != nil || r.Status == federation.StatusOK || r.Error == nil || r.Error.Code != federation.CodeOverloaded || !strings.Contains(r.Error.Message, `"site-s"`) || !strings.Contains(r.Error.Message, "its limit") {
		t.Fatalf("a request past the receiver's 2 handlers = %+v, %v; want OVERLOADED naming the gateway and its limit, at once", r, err)
	}
	done()
	for range 2 {
		if r := <-held; r == nil || r.Status != federation.StatusOK || r.Response.Content != "hold" {
			t.Errorf("a request within the limit = %+v; want ok", r)
		}
	}
	if r, err := b.Send(ctx, federation.SendRequest{PeerID: "slow@site-s", Message: "next"}); err != nil || r.Status != federation.StatusOK {
		t.Errorf("a request once the handlers are done = %+v, %v; want ok", r, err)
	}
}
