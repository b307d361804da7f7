package federation

// Hooks for the black-box tests: shrink limits so that an attack fills
// them in a test's time.

import (
	"crypto/ed25519"
	"encoding/json"
	"time"
)

// SetUnauthenticatedReplayPool sets the bytes and senders of the replay
// guard's pool for unauthenticated senders.
func SetUnauthenticatedReplayPool(n *Node, bytes, senders int) {
	n.replay.mu.Lock()
	defer n.replay.mu.Unlock()
	n.replay.limits.unauthTotal, n.replay.limits.unauthSenders = bytes, senders
}

// SetContextLimits sets the synced-context limits per session and per
// sender, in bytes (in storage.dir and, over NATS, in the site's bucket).
func SetContextLimits(n *Node, session, sender int) {
	for _, s := range []*contextStore{n.contexts, n.sharedContextAccounts()} {
		if s != nil {
			s.mu.Lock()
			s.limits.sessionBytes, s.limits.senderBytes = session, sender
			s.mu.Unlock()
		}
	}
}

// SetContextSessionLimit sets how many synced sessions n keeps in all
// (over NATS, how many keys of the site's bucket it tracks).
func SetContextSessionLimit(n *Node, sessions int) {
	for _, s := range []*contextStore{n.contexts, n.sharedContextAccounts()} {
		if s != nil {
			s.mu.Lock()
			s.limits.totalSessions = sessions
			s.mu.Unlock()
		}
	}
}

func (n *Node) sharedContextAccounts() *contextStore {
	if n.sharedContexts == nil {
		return nil
	}
	return n.sharedContexts.acct
}

// MeshVias lists the peers through which n has a route to agent of server,
// best first.
func (n *Node) MeshVias(server, agent string) []string {
	var out []string
	for _, r := range n.mesh.to(server, agent) {
		out = append(out, r.via)
	}
	return out
}

// SetMeshKeyLimit sets how many signing keys first seen across the mesh n
// keeps.
func SetMeshKeyLimit(n *Node, limit int) {
	n.meshTrust.mu.Lock()
	defer n.meshTrust.mu.Unlock()
	n.meshTrust.limit = limit
}

// SetNATSPresenceTTL sets how long a NATS directory entry lasts unless
// its gateway puts it again, for the gateways started after, until the
// test ends.
func SetNATSPresenceTTL(t interface{ Cleanup(func()) }, d time.Duration) {
	old := natsPresenceTTL
	natsPresenceTTL = d
	t.Cleanup(func() { natsPresenceTTL = old })
}

// NATSEntry is a NATS directory entry for serverID announcing agents,
// signed by id, as a gateway puts it in the KV bucket now.
func NATSEntry(id *Identity, serverID string, agents ...string) []byte {
	return NATSEntryAt(id, serverID, time.Now(), agents...)
}

// NATSEntryAt is NATSEntry stamped at.
func NATSEntryAt(id *Identity, serverID string, at time.Time, agents ...string) []byte {
	e := natsEntry{ServerID: serverID, Version: Version, SigningKey: id.Public().SigningKey, IssuedAt: at.UnixMilli()}
	for _, a := range agents {
		e.Agents = append(e.Agents, natsAgent{ID: a, Capabilities: []string{}})
	}
	b, err := signNATSEntry(id, &e)
	if err != nil {
		panic(err)
	}
	return b
}

// SignNATSEntry is the directory entry whose JSON is entry, signed by id,
// as stored: whatever entry holds.
func SignNATSEntry(id *Identity, entry []byte) []byte {
	b, err := json.Marshal(natsSignedEntry{Entry: entry, Signature: b64.EncodeToString(ed25519.Sign(id.sign, entry))})
	if err != nil {
		panic(err)
	}
	return b
}

// ExpireHeldNATS runs, as at time at, the outbox's check for durable
// messages held by a NATS peer's stream whose ttl has passed.
func ExpireHeldNATS(n *Node, at time.Time) { n.outbox.ExpireHeld(at) }

// AppendResult is appendResult, for TestResultEncode.
var AppendResult = appendResult

// SetNATSHandlerLimit sets how many messages n handles from NATS at once.
func SetNATSHandlerLimit(n *Node, limit int) { n.nats.limit.Store(int64(limit)) }

// OutboundBusy is how many of the outbound slots to peer n's deliveries
// hold; -1 if n never delivered to peer.
func OutboundBusy(n *Node, peer string) int {
	n.tracker.mu.RLock()
	h := n.tracker.peers[peer]
	n.tracker.mu.RUnlock()
	if h == nil {
		return -1
	}
	busy, _ := h.outbound.Stats()
	return busy
}
