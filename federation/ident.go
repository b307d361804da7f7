package federation

import (
	"fmt"
	"github.com/agentfed/agentfed/gateway"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Identifiers that cross the wire (messageId, correlationId, fromAgent,
// toAgent, fromServer, targetAgent, peer and server ids) are at most
// MaxIDBytes long and made of letters, digits and the punctuation in
// identPunct. UUIDs, "main-agent-server", "agent-research-01" and
// "user@host:port" forms all fit; whitespace, control characters, quotes
// and anything a terminal or a log reader could misread do not.
const (
	MaxIDBytes = 128
	identPunct = "._:@-"
)

// Bounds on the other fields of a peer (federation.peers and
// register_peer).
const (
	maxPeerNameBytes    = 256
	maxPeerURLBytes     = 2048
	maxPeerTokenBytes   = 1024
	maxDescriptionBytes = 4096
	maxCapabilities     = 64
	maxCapabilityBytes  = 128
	// DefaultMaxDynamicPeers is federation.maxDynamicPeers when unset.
	DefaultMaxDynamicPeers = 256
)

// Bounds on the envelope of a sealed or signed message: every legitimate
// value is far shorter.
const maxEnvelopeBytes = 128

// validIdent reports whether s is a well-formed identifier (empty is not).
func validIdent(s string) bool {
	if s == "" || len(s) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(identPunct, c) >= 0) {
			return false
		}
	}
	return true
}

// identProblem says what is wrong with the identifier s, or "" when it is
// well formed. required says whether empty is wrong.
func identProblem(s string, required bool) string {
	switch {
	case s == "" && required:
		return "is empty"
	case s == "":
		return ""
	case len(s) > MaxIDBytes:
		return fmt.Sprintf("is %d bytes long; identifiers are at most %d", len(s), MaxIDBytes)
	case !validIdent(s):
		return fmt.Sprintf("%s has a character other than letters, digits and %q", quoteBounded(s), identPunct)
	}
	return ""
}

// checkIdent returns INVALID_PARAMS naming field when s is not a well-formed
// identifier.
func checkIdent(field, s string, required bool) error {
	if p := identProblem(s, required); p != "" {
		return fmt.Errorf("%w: %s %s", ErrInvalidParams, field, p)
	}
	return nil
}

// quoteBounded quotes s for an error message or a log, cut to a few dozen
// bytes (on a rune boundary) with its full length noted: an error never
// echoes unbounded input.
func quoteBounded(s string) string {
	const keep = 48
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	n := keep
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// sameNameFolded reports whether a and b are different spellings of one
// name: equal once case and surrounding or inner whitespace are ignored.
func sameNameFolded(a, b string) bool {
	squash := func(s string) string {
		return strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s)
	}
	return strings.EqualFold(squash(a), squash(b))
}

// checkUnauthenticatedName refuses the name a peer without credentials
// gives itself (client.instanceId) unless it is a well-formed identifier
// that no configured peer's serverId resembles. A configured peer must
// prove it is that peer, or anyone could claim its name and escape its
// pins and grants; and a near-spelling ("Signer", "signer " beside
// "signer") would pass for it in logs, audit and list_peers.
func checkUnauthenticatedName(name string, creds []PeerCredential) error {
	if p := identProblem(name, true); p != "" {
		return gateway.NewError(gateway.CodeInvalidRequest, "client.instanceId "+p+"; a peer names its serverId there")
	}
	for _, c := range creds {
		switch {
		case c.ServerID == name:
			return unauthorized("AUTH_TOKEN_MISSING", fmt.Sprintf("%q is a configured peer (gateway.auth.peers): connect with its token", name))
		case sameNameFolded(c.ServerID, name):
			return unauthorized("AUTH_NAME_RESERVED", fmt.Sprintf("%q differs only in case from the configured peer %q (gateway.auth.peers): connect as that peer, with its token, or pick another serverId", name, c.ServerID))
		}
	}
	return nil
}
