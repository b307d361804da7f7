package federation

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"

	"github.com/agentfed/agentfed/gateway"
)

// A connection keeps a fingerprint of the credential it authenticated
// with (gateway.Identity.Credential), so that a reload can close the
// connections whose credential it removed, and only those.

// certCredential marks a connection authenticated by its client
// certificate: valid while its serverId has a gateway.auth.peers entry.
const certCredential = "cert"

// tokenFingerprint is the SHA-256 of a token, in hex: enough to recognise
// it later, useless for presenting it.
func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "token:" + hex.EncodeToString(sum[:])
}

// presented reports whether fp is the fingerprint of token, in constant
// time. An empty token never matches.
func presented(fp, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(fp), []byte(tokenFingerprint(token))) == 1
}

// admits reports whether a connection that authenticated as id would
// still be admitted under auth, disabled being the serverIds of the
// disabled peers.
func admits(id *gateway.Identity, auth *AuthConfig, disabled map[string]bool) bool {
	if id.Role == gateway.RoleOperator {
		if id.Authenticated {
			return presented(id.Credential, auth.OperatorToken)
		}
		return auth.OperatorToken == "" // loopback operators end when a token is set
	}
	if disabled[id.PeerID] {
		return false
	}
	i := slices.IndexFunc(auth.Peers, func(c PeerCredential) bool { return c.ServerID == id.PeerID })
	switch {
	case !id.Authenticated:
		return i < 0 // a configured serverId must now prove itself
	case i < 0:
		return false
	case id.Credential == certCredential:
		return true
	}
	c := auth.Peers[i]
	ok := presented(id.Credential, c.Token)
	return presented(id.Credential, c.PreviousToken) || ok
}

// revokeStale closes the connections whose credentials auth no longer
// accepts.
func (n *Node) revokeStale(auth *AuthConfig) {
	disabled := make(map[string]bool)
	for _, p := range n.peers.list() {
		if p.ServerID != "" && !p.IsEnabled() {
			disabled[p.ServerID] = true
		}
	}
	closed := n.srv.Revoke(func(id *gateway.Identity) bool { return !admits(id, auth, disabled) },
		"credential revoked by a configuration reload")
	if closed > 0 {
		n.log.Info("closed connections whose credentials were revoked", "connections", closed)
	}
}
