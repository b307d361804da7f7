package federation

// A directory entry as another gateway put it in AF_REGISTRY, decoded and
// checked before anything in it is believed (nats_registry.go). Whoever
// may put in the bucket (any client of a NATS system without the derived
// permissions) controls every byte of it, so each size is bounded here,
// not by the bucket's configuration, which such a client may change too.

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// natsEntryProblem says what is wrong with the agents of an entry, or "".
// Their ids become subject tokens and peer ids (<agentId>@<serverId>): a
// dot would split a subject, an '@' make two agents of two sites one peer
// id.
func natsEntryProblem(e *natsEntry) string {
	if len(e.Agents) > natsMaxGateway {
		return fmt.Sprintf("it announces %d agents; at most %d", len(e.Agents), natsMaxGateway)
	}
	seen := make(map[string]bool, len(e.Agents))
	for i, a := range e.Agents {
		field := fmt.Sprintf("agents[%d]", i)
		switch {
		case !validIdent(a.ID):
			return fmt.Sprintf("%s.id %s", field, identProblem(a.ID, true))
		case natsIDProblem(a.ID) != "":
			return fmt.Sprintf("%s.id %s %s", field, quoteBounded(a.ID), natsIDProblem(a.ID))
		case seen[a.ID]:
			return fmt.Sprintf("%s.id %s is announced twice", field, quoteBounded(a.ID))
		case len(a.Description) > maxDescriptionBytes:
			return fmt.Sprintf("%s.description is %d bytes long; at most %d", field, len(a.Description), maxDescriptionBytes)
		case len(a.Capabilities) > maxCapabilities:
			return fmt.Sprintf("%s.capabilities has %d entries; at most %d", field, len(a.Capabilities), maxCapabilities)
		}
		for j, c := range a.Capabilities {
			if _, err := parseCapability(c); len(c) > maxCapabilityBytes || err != nil {
				return fmt.Sprintf("%s.capabilities[%d] %s is not a capability", field, j, quoteBounded(c))
			}
		}
		seen[a.ID] = true
	}
	return ""
}

// natsIDProblem says why id cannot be a serverId or agentId on NATS, or
// "". It is a well-formed identifier already.
func natsIDProblem(id string) string {
	if strings.ContainsAny(id, ".@") {
		return "has a dot or an '@'"
	}
	return ""
}

// decodeNATSEntry is the entry data found under server's key, verified:
// it names server, is signed by the key it names (pin, when set), and was
// stamped no longer than maxAge before now nor more than maxAhead after.
// Otherwise it says why the entry is refused, without echoing it.
func decodeNATSEntry(server string, data []byte, pin string, now time.Time, maxAge, maxAhead time.Duration) (*natsEntry, error) {
	if len(data) > natsEntryMaxBytes {
		return nil, fmt.Errorf("it is %d bytes, over the %d-byte limit", len(data), natsEntryMaxBytes)
	}
	var se natsSignedEntry
	var e natsEntry
	if err := json.Unmarshal(data, &se); err != nil {
		return nil, errors.New("malformed: not a signed entry")
	}
	if err := json.Unmarshal(se.Entry, &e); err != nil {
		return nil, errors.New("malformed: its entry is not the JSON of one")
	}
	if e.ServerID != server {
		return nil, fmt.Errorf("it names serverId %s, not its key's", quoteBounded(e.ServerID))
	}
	if len(e.SigningKey) > maxEnvelopeBytes || len(se.Signature) > maxEnvelopeBytes || len(e.Version) > MaxIDBytes {
		return nil, errors.New("its signingKey, signature or version is too long")
	}
	key, err := ParseSigningKey(e.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("its signingKey %w", err)
	}
	if pin != "" && e.SigningKey != pin {
		return nil, fmt.Errorf("signed by %s, not by the publicKey pinned for it (gateway.auth.peers, federation.peers)", e.SigningKey)
	}
	sig, err := b64.DecodeString(se.Signature)
	if err != nil || !ed25519.Verify(key, se.Entry, sig) {
		return nil, errors.New("its signature does not verify")
	}
	if p := natsEntryProblem(&e); p != "" {
		return nil, errors.New(p)
	}
	at := time.UnixMilli(e.IssuedAt)
	if at.Before(now.Add(-maxAge)) || at.After(now.Add(maxAhead)) {
		return nil, fmt.Errorf("stamped %s, further from this gateway's clock (%s) than the directory allows (gateway.replayWindowMs plus the presence TTL): a replay, or a clock far off",
			at.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return &e, nil
}
