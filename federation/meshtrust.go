package federation

import (
	"cmp"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

// Which signing key a gateway trusts for another gateway across the mesh.
// A key carried by a message or advertised in a route is only a claim: any
// hop in between can put its own there. So the key of a gateway X is, in
// this order:
//
//  1. pinned: the publicKey of X's gateway.auth.peers entry, or of a
//     federation.peers entry with serverId X (an accepted discovery rule
//     with a fingerprint pins one too);
//  2. direct: the key X advertises for itself (a route of one gateway)
//     to this gateway over a connection to a configured or registered peer
//     whose serverId is X;
//  3. first seen (trust on first use): the first key that verified a
//     message from X here, or that X's replies verified with, kept in the
//     store (bucket meshkeys). A later, different key for X is refused
//     with BAD_SIGNATURE naming X. Pinning a key for X overrides it;
//     `agentfed store forget-key X` (gateway stopped) forgets it.
//
// With federation.mesh.requireKnownKeys (or gateway.signing.require), only
// 1 and 2 count. A route's encryptionKey is used only with a keyProof by
// the signing key: trusting the signing key is trusting the sealing key.

// maxLearnedMeshKeys bounds the first-seen keys kept: past it, new gateways
// are refused until an operator pins or forgets keys.
const maxLearnedMeshKeys = 1024

// keyProofContext prefixes what a keyProof signs.
const keyProofContext = "agentfed mesh encryption key v1\x00"

// keySource says where a trusted key came from.
type keySource int

const (
	keyPinned keySource = iota // configured
	keyDirect                  // advertised by the gateway itself to this one
	keyStored                  // first seen earlier, in the store
	keyNew                     // offered now, nothing known: remember once verified
)

// known reports whether the key is known by config or a direct peer.
func (s keySource) known() bool { return s == keyPinned || s == keyDirect }

// meshTrust holds the first-seen keys, loaded from the store on first use.
type meshTrust struct {
	once  sync.Once
	mu    sync.Mutex
	keys  map[string]string // serverId → signing key
	limit int               // the most keys kept; 0: maxLearnedMeshKeys
}

// learnedKey is a meshkeys record.
type learnedKey struct {
	SigningKey string `json:"signingKey"`
	FirstSeen  int64  `json:"firstSeen"` // Unix ms
}

func (t *meshTrust) load(st *store.Store) {
	t.once.Do(func() {
		t.keys = make(map[string]string)
		_ = st.ForEach(store.MeshKeys, func(k string, v []byte) error {
			var r learnedKey
			if json.Unmarshal(v, &r) == nil && r.SigningKey != "" {
				t.keys[k] = r.SigningKey
			}
			return nil
		})
	})
}

// meshKey returns the signing key this gateway trusts for gateway server,
// given the key offered for it (by a message's originKey or a route; may be
// empty), and where it came from. An offered key that differs from a
// trusted one is BAD_SIGNATURE. A keyNew key must be remembered (remember)
// once something it signed verified.
func (n *Node) meshKey(server, offered string) (string, keySource, error) {
	if key := n.pinnedKey(server); key != "" {
		if offered != "" && offered != key {
			return "", 0, fmt.Errorf("%w: the key offered for gateway %q (fingerprint %s) differs from the publicKey pinned for it here; a key learned through the mesh never replaces a pinned one",
				ErrBadSignature, server, fingerprintOf(offered))
		}
		return key, keyPinned, nil
	}
	if key := n.directKey(server); key != "" {
		if offered != "" && offered != key {
			return "", 0, fmt.Errorf("%w: the key offered for gateway %q (fingerprint %s) differs from the one it advertises itself to this gateway as a direct peer (fingerprint %s)",
				ErrBadSignature, server, fingerprintOf(offered), fingerprintOf(key))
		}
		return key, keyDirect, nil
	}
	if n.cfg.Federation.Mesh.RequireKnownKeys || n.cfg.Gateway.Signing.Require {
		return "", 0, fmt.Errorf("%w: no signing key is known here for gateway %q: pin its publicKey (gateway.auth.peers or federation.peers) or peer with it directly; federation.mesh.requireKnownKeys or gateway.signing.require refuses keys learned through the mesh",
			ErrBadSignature, server)
	}
	n.meshTrust.load(n.store)
	n.meshTrust.mu.Lock()
	stored := n.meshTrust.keys[server]
	n.meshTrust.mu.Unlock()
	switch {
	case stored != "" && offered != "" && offered != stored:
		return "", 0, fmt.Errorf("%w: the key offered for gateway %q (fingerprint %s) differs from the one first seen for it here (fingerprint %s); if %q changed its key, pin the new one in its gateway.auth.peers or federation.peers entry, or stop this gateway and run `agentfed store forget-key %s`",
			ErrBadSignature, server, fingerprintOf(offered), fingerprintOf(stored), server, server)
	case stored != "":
		return stored, keyStored, nil
	case offered == "":
		return "", 0, fmt.Errorf("%w: no signing key is known here for gateway %q and none is offered for it", ErrBadSignature, server)
	}
	return offered, keyNew, nil
}

// remember keeps key as the first-seen key of server. It refuses when
// maxLearnedMeshKeys are kept, or another key got there first.
func (n *Node) remember(server, key string) error {
	n.meshTrust.load(n.store)
	t := &n.meshTrust
	t.mu.Lock()
	defer t.mu.Unlock()
	switch old := t.keys[server]; {
	case old == key:
		return nil
	case old != "":
		return fmt.Errorf("%w: another key was first seen for gateway %q meanwhile", ErrBadSignature, server)
	case len(t.keys) >= cmp.Or(t.limit, maxLearnedMeshKeys):
		return fmt.Errorf("%w: gateway %q keeps the keys of %d gateways first seen across the mesh, the most it may; pin the key of gateway %q, or forget unused ones (`agentfed store forget-key`)",
			ErrOverloaded, n.serverID, len(t.keys), server)
	}
	b, _ := json.Marshal(learnedKey{SigningKey: key, FirstSeen: time.Now().UnixMilli()})
	if err := n.store.PutBatch(store.MeshKeys, store.KV{Key: server, Value: b}); err != nil {
		return fmt.Errorf("keep the key of gateway %q: %w", server, err)
	}
	t.keys[server] = key
	return nil
}

// pinnedKey returns the publicKey configured for server, or "".
func (n *Node) pinnedKey(server string) string {
	if c := n.credentialOf(server); c != nil && c.PublicKey != "" {
		return c.PublicKey
	}
	for _, p := range n.peers.list() {
		if p.ServerID == server && p.PublicKey != "" {
			return p.PublicKey
		}
	}
	return ""
}

// directKey returns the key server advertises for itself over the
// connection to a configured or registered peer whose serverId is server,
// or "".
func (n *Node) directKey(server string) string {
	for _, p := range n.peers.list() {
		if p.ServerID != server || (p.source != SourceStatic && p.source != SourceDynamic) {
			continue
		}
		for _, r := range n.mesh.from(p.ID) {
			if r.ServerID == server && len(r.Path) == 1 && r.SigningKey != "" {
				return r.SigningKey
			}
		}
	}
	return ""
}

// verifyOrigin checks that msg is signed by its origin gateway with the key
// this gateway trusts for it (offered: the relay's originKey), and remembers
// a first-seen key. known says the key is known by config or a direct peer.
func (n *Node) verifyOrigin(origin, offered string, msg *Message) (known bool, err error) {
	key, src, err := n.meshKey(origin, offered)
	if err != nil {
		return false, fmt.Errorf("mesh message %q from origin gateway %q: %w", msg.MessageID, origin, err)
	}
	pub, err := ParseSigningKey(key)
	if err == nil {
		err = msg.Verify(pub)
	}
	if err != nil {
		return false, fmt.Errorf("mesh message from origin gateway %q: %w", origin, err)
	}
	if src == keyNew {
		if err := n.remember(origin, key); err != nil {
			return false, err
		}
	}
	return src.known(), nil
}

// keyProof signs this gateway's encryption key for its routes.
func (n *Node) keyProof() string { return n.identity.KeyProof(n.serverID) }

// KeyProof returns the keyProof of federation.routes for this identity as
// gateway serverID: its signature of its encryption key.
func (id *Identity) KeyProof(serverID string) string {
	return b64.EncodeToString(ed25519.Sign(id.sign, keyProofBytes(serverID, id.Public().EncryptionKey)))
}

func keyProofBytes(server, encKey string) []byte {
	return []byte(keyProofContext + server + "\x00" + encKey)
}

// checkKeyProof reports whether proof is server's signature, by signKey,
// of its encryption key encKey.
func checkKeyProof(server, signKey, encKey, proof string) bool {
	pub, err := ParseSigningKey(signKey)
	if err != nil {
		return false
	}
	sig, err := b64.DecodeString(proof)
	return err == nil && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, keyProofBytes(server, encKey), sig)
}

// fingerprintOf is the fingerprint of a signing key, or "(malformed)".
func fingerprintOf(key string) string {
	pub, err := ParseSigningKey(key)
	if err != nil {
		return "(malformed)"
	}
	return Fingerprint(pub)
}
