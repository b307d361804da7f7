package federation

// The directory over NATS: each gateway puts its entry (its serverId,
// agentfed version, signing key, and its agents with their capabilities
// and descriptions) under its own key, its serverId, in the JetStream KV
// bucket AF_REGISTRY, signed with its Ed25519 identity key. It puts it
// again every natsBeat, each time with a JetStream per-message TTL of
// natsPresenceTTL, so an entry whose site's gateways are all gone expires
// and its watchers learn it from the bucket's expiry marker. The several
// gateways of one site put the same entry under the same key.
//
// Every gateway watches the bucket and answers list_peers,
// query_capabilities and delegate's resolution from what it watched. An
// agent seen once stays a peer while its site is gone (marked not
// connected): requests to it fail with PEER_UNAVAILABLE, durable ones
// wait in JetStream.
//
// Who may announce what: the derived NATS permissions let a gateway put
// only its own key. On a NATS system without them, an entry whose site has
// a publicKey pinned (gateway.auth.peers, federation.peers) must be signed
// by that key;
// any entry must be signed by the key it names and name the serverId of
// its key.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	natsRegistryBucket   = "AF_REGISTRY"
	natsEntryMaxBytes    = 1 << 20  // one gateway's entry
	natsRegistryMaxBytes = 64 << 20 // the bucket
	natsRegistryMaxAge   = 5 * time.Minute
)

// natsPresenceTTL is how long an entry lasts unless put again: its site's
// gateways put it every third of it. A variable for the tests.
var natsPresenceTTL = 10 * time.Second

var errNATSNoJetStream = errors.New("the NATS system has no JetStream, which the directory and synced context need (KV buckets " +
	natsRegistryBucket + ", " + natsContextBucket + "_<serverId>): enable it (nats-server --jetstream, or jetstream {} in its configuration)")

// natsNoJetStream reports whether err says the NATS system has no
// JetStream.
func natsNoJetStream(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, nats.ErrNoResponders)
}

// openNATSBucket opens JetStream on l and the KV bucket kc, asking again
// while JetStream does not answer yet, until ctx ends. With create the
// bucket is made, or updated to kc; without, it is looked up first (a
// gateway whose NATS user may use a bucket but not make it) and made only
// when missing.
func openNATSBucket(ctx context.Context, l *natsLink, kc jetstream.KeyValueConfig, create bool) (jetstream.JetStream, jetstream.KeyValue, error) {
	js, err := jetstream.New(l.bus.Conn())
	if err != nil {
		return nil, nil, err
	}
	var kv jetstream.KeyValue
	err = retryUnanswered(ctx, func(ctx context.Context) (err error) {
		if create {
			kv, err = js.CreateOrUpdateKeyValue(ctx, kc)
			return err
		}
		if kv, err = js.KeyValue(ctx, kc.Bucket); errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, kc)
		}
		return err
	})
	switch {
	case natsNoJetStream(err):
		return nil, nil, errNATSNoJetStream
	case err != nil:
		return nil, nil, fmt.Errorf("JetStream KV bucket %s: %w", kc.Bucket, err)
	}
	return js, kv, nil
}

// natsEntry is what a gateway announces.
type natsEntry struct {
	ServerID   string      `json:"serverId"`
	Version    string      `json:"version"`    // agentfed's
	SigningKey string      `json:"signingKey"` // ed25519:<base64url> of the gateway that put it
	Agents     []natsAgent `json:"agents"`
	IssuedAt   int64       `json:"issuedAt"` // Unix ms of the put: an entry replayed later is refused
}

// natsSignedEntry is an entry as stored: its JSON and the signature of
// those bytes by the key it names.
type natsSignedEntry struct {
	Entry     json.RawMessage `json:"entry"`
	Signature string          `json:"signature"` // base64url
}

// natsRegistry is a gateway's entry and its watch of everyone's.
type natsRegistry struct {
	kv    jetstream.KeyValue
	js    jetstream.JetStream
	w     jetstream.KeyWatcher
	own   natsEntry     // this gateway's, stamped and signed at each put
	ttl   time.Duration // of each put
	done  chan struct{} // closed when the watch has ended
	beats sync.WaitGroup
	quit  chan struct{} // closed to stop beating

	mu     sync.Mutex            // guards sites, agents and dir
	sites  map[string]*natsSites // serverId -> its latest valid entry
	agents int                   // of all sites: at most natsMaxGateway
	dir    []*peer               // every site's agents, sorted by id
}

// natsSites is what one site announced and whether it still does.
type natsSites struct {
	announced []natsAgent
	issued    int64 // the latest stamp of an entry taken, Unix ms
	agents    []*peer
	up        bool
	downAt    time.Time
}

func natsRegistryKey(serverID string) string { return natsBucketToken(serverID) }

// startNATSRegistry puts this gateway's entry, keeps putting it, and
// watches the bucket until it has everyone's current entries.
func (n *Node) startNATSRegistry(l *natsLink) error {
	ctx, cancel := context.WithTimeout(l.ctx, natsSetupTimeout)
	defer cancel()
	js, kv, err := openNATSBucket(ctx, l, n.natsRegistryConfig(), n.cfg.NATS.Embedded != nil)
	if err != nil {
		return err
	}
	own, err := n.natsOwnEntry()
	if err != nil {
		return err
	}
	r := &natsRegistry{kv: kv, js: js, own: own, ttl: max(natsPresenceTTL, time.Second), done: make(chan struct{}), quit: make(chan struct{}),
		sites: map[string]*natsSites{}}
	if err := retryUnanswered(ctx, func(ctx context.Context) error { return n.putNATSEntry(ctx, r) }); err != nil {
		return fmt.Errorf("put this gateway's entry in KV bucket %s: %w", natsRegistryBucket, err)
	}
	if r.w, err = watchNATSBucket(ctx, l.ctx, kv); err != nil {
		return fmt.Errorf("watch JetStream KV bucket %s: %w", natsRegistryBucket, err)
	}
	ready := make(chan struct{})
	go n.watchRegistry(r, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		r.stop()
		return fmt.Errorf("JetStream KV bucket %s: its entries did not arrive within %v", natsRegistryBucket, natsSetupTimeout)
	}
	r.beats.Go(func() { n.beat(r) })
	l.registry = r
	return nil
}

// natsRegistryConfig is the directory's bucket.
func (n *Node) natsRegistryConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: natsRegistryBucket, Description: "agentfed directory: each gateway's agents, by serverId",
		MaxValueSize: natsEntryMaxBytes, MaxBytes: natsRegistryMaxBytes, TTL: natsRegistryMaxAge, LimitMarkerTTL: natsKVMarkerTTL,
		Storage: jetstream.MemoryStorage, Replicas: n.cfg.NATS.replicas()}
}

// natsOwnEntry is this gateway's entry, unstamped.
func (n *Node) natsOwnEntry() (natsEntry, error) {
	e := natsEntry{ServerID: n.serverID, Version: Version, SigningKey: n.identity.Public().SigningKey, Agents: []natsAgent{}}
	for _, id := range sortedKeys(n.agents) {
		a := n.agents[id]
		// As JSON carries it, and as much as a peer's is shown.
		d := strings.ToValidUTF8(a.cfg.Description, "\uFFFD")
		if len(d) > maxDescriptionBytes {
			d = strings.ToValidUTF8(d[:maxDescriptionBytes], "")
		}
		e.Agents = append(e.Agents, natsAgent{ID: id, Capabilities: nonNil(a.cfg.Capabilities), Description: d})
	}
	// Checked as the others check it: signed, encoded and decoded (JSON
	// turns each invalid UTF-8 byte into three, for one).
	probe := e
	probe.IssuedAt = time.Now().UnixMilli()
	data, err := signNATSEntry(n.identity, &probe)
	if err == nil {
		_, err = decodeNATSEntry(n.serverID, data, "", time.Now(), time.Minute, time.Minute)
	}
	if err != nil {
		return e, fmt.Errorf("this gateway's directory entry would be refused by the others: %w", err)
	}
	return e, nil
}

// putNATSEntry puts r's entry of this gateway, stamped now and signed,
// with r's TTL.
func (n *Node) putNATSEntry(ctx context.Context, r *natsRegistry) error {
	e := r.own
	e.IssuedAt = time.Now().UnixMilli()
	data, err := signNATSEntry(n.identity, &e)
	if err != nil {
		return err
	}
	if len(data) > natsEntryMaxBytes {
		return fmt.Errorf("this gateway's directory entry is %d bytes, over the %d-byte limit: fewer agents, capabilities or shorter descriptions", len(data), natsEntryMaxBytes)
	}
	_, err = r.js.PublishMsg(ctx, &nats.Msg{Subject: "$KV." + natsRegistryBucket + "." + natsRegistryKey(n.serverID), Data: data}, jetstream.WithMsgTTL(r.ttl))
	return err
}

// signNATSEntry is e as stored, signed by id.
func signNATSEntry(id *Identity, e *natsEntry) ([]byte, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return json.Marshal(natsSignedEntry{Entry: raw, Signature: b64.EncodeToString(ed25519.Sign(id.sign, raw))})
}

// beat puts r's entry again every third of its TTL until r stops.
func (n *Node) beat(r *natsRegistry) {
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.ttl/3)
		err := n.putNATSEntry(ctx, r)
		cancel()
		if err != nil && !failing {
			n.log.Warn("NATS directory: could not put this gateway's entry again; other gateways will see it gone", "err", err)
		}
		failing = err != nil
	}
}

// watchRegistry keeps r's view of the bucket until the watch stops;
// ready is closed once the entries it had at the start have arrived.
func (n *Node) watchRegistry(r *natsRegistry, ready chan struct{}) {
	defer close(r.done)
	for e := range r.w.Updates() {
		if e == nil {
			close(ready)
			continue
		}
		server, ok := natsUntoken(e.Key())
		if !ok || server == n.serverID || !validIdent(server) || natsIDProblem(server) != "" {
			continue // ourselves, another gateway of our site, or not a serverId
		}
		if e.Operation() != jetstream.KeyValuePut {
			r.down(server)
			continue
		}
		window := time.Duration(n.cfg.Gateway.ReplayWindowMs) * time.Millisecond
		ent, err := decodeNATSEntry(server, e.Value(), n.pinnedKey(server), time.Now(), window+r.ttl, window)
		if err == nil {
			err = r.up(server, ent)
		}
		if err != nil {
			if ok, suppressed := n.remoteLog.Allow(); ok {
				n.log.Warn("NATS directory: entry refused", "serverId", server, "err", err, "suppressed", suppressed)
			}
		}
	}
}

// up records server's entry e, put again or changed. An entry stamped
// before the one taken that announces other agents is a replay and
// refused, as is one that is not newer than the last taken of a site gone; so is one that would take the directory over natsMaxGateway
// sites or agents, unless sites whose gateways are gone make room (the
// longest gone first): a site cannot push out what others announce.
func (r *natsRegistry) up(server string, e *natsEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sites[server]
	if s != nil && !s.up && e.IssuedAt <= s.issued {
		return errors.New("it is the entry of a site whose gateways are gone, put again: a replay")
	}
	if s != nil && slices.EqualFunc(s.announced, e.Agents, sameNATSAgent) {
		s.up, s.issued = true, max(s.issued, e.IssuedAt) // put again, unchanged: the usual beat
		return nil
	}
	if s != nil && e.IssuedAt < s.issued {
		return fmt.Errorf("stamped %d ms before the entry already taken, with other agents: a replay", s.issued-e.IssuedAt)
	}
	had := 0
	if s != nil {
		had = len(s.agents)
	}
	full := func(sites, agents int) bool {
		return (s == nil && sites >= natsMaxGateway) || agents-had+len(e.Agents) > natsMaxGateway
	}
	goneSites, goneAgents := 0, 0
	for id, g := range r.sites {
		if !g.up && id != server {
			goneSites, goneAgents = goneSites+1, goneAgents+len(g.agents)
		}
	}
	if full(len(r.sites)-goneSites, r.agents-goneAgents) {
		return fmt.Errorf("its %d agents would take the directory over its %d sites or %d agents (the NATS system announces more than a gateway keeps)",
			len(e.Agents), natsMaxGateway, natsMaxGateway)
	}
	for full(len(r.sites), r.agents) && r.evictGoneLocked(server) {
	}
	agents := make([]*peer, 0, len(e.Agents))
	for _, a := range e.Agents {
		id := natsPeerID(server, a.ID)
		agents = append(agents, newPeer(PeerConfig{ID: id, Name: id, URL: "nats:" + natsAgentSubject(server, a.ID),
			AgentID: a.ID, Capabilities: a.Capabilities, Description: a.Description}, SourceNATS))
	}
	r.agents += len(agents) - had
	r.sites[server] = &natsSites{announced: e.Agents, issued: e.IssuedAt, agents: agents, up: true}
	r.rebuildLocked()
	return nil
}

func sameNATSAgent(a, b natsAgent) bool {
	return a.ID == b.ID && a.Description == b.Description && slices.Equal(a.Capabilities, b.Capabilities)
}

// evictGoneLocked forgets the site, other than keep, whose gateways have
// been gone longest, and reports whether there was one.
func (r *natsRegistry) evictGoneLocked(keep string) bool {
	var victim string
	var since time.Time
	for id, s := range r.sites {
		if !s.up && id != keep && (victim == "" || s.downAt.Before(since)) {
			victim, since = id, s.downAt
		}
	}
	if victim == "" {
		return false
	}
	r.agents -= len(r.sites[victim].agents)
	delete(r.sites, victim)
	return true
}

// down records that server's entry expired or was removed: its agents
// stay peers.
func (r *natsRegistry) down(server string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sites[server]; s != nil && s.up {
		s.up, s.downAt = false, time.Now()
	}
}

func (r *natsRegistry) rebuildLocked() {
	var dir []*peer
	for _, s := range r.sites {
		dir = append(dir, s.agents...)
	}
	slices.SortFunc(dir, func(a, b *peer) int { return strings.Compare(a.ID, b.ID) })
	r.dir = dir
}

// directory is every remote agent announced on NATS, sorted by id.
func (r *natsRegistry) directory() []*peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dir
}

// isUp reports whether p's site announces itself now.
func (r *natsRegistry) isUp(p *peer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sites[natsServerOf(p)]
	return s != nil && s.up
}

func (r *natsRegistry) stop() {
	close(r.quit)
	r.beats.Wait()
	_ = r.w.Stop()
	<-r.done
}
