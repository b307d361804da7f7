package discovery

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Gateway is one gateway's announcement: what it says about itself.
type Gateway struct {
	ServerID string `json:"serverId"`
	// URL is where the gateway's WebSocket listens, ws:// or wss://.
	URL string `json:"url"`
	// SigningKey is its Ed25519 public key (ed25519:<base64url>) and
	// Fingerprint that key's fingerprint, as `agentfed identity` prints
	// them. Claims: whoever holds the key proves it only by signing.
	SigningKey  string  `json:"signingKey,omitempty"`
	Fingerprint string  `json:"fingerprint,omitempty"`
	Agents      []Agent `json:"agents,omitempty"`

	// Addr is the IPv4 address of the announcement's A record, and
	// LastSeen when it last answered; set on the gateways found only.
	Addr     string    `json:"addr,omitempty"`
	LastSeen time.Time `json:"lastSeen"`
}

// Agent is one agent a gateway advertises.
type Agent struct {
	ID           string   `json:"id"`
	Capabilities []string `json:"capabilities"`
}

// TXTVersion is the version of the TXT record layout (its txtvers field).
const TXTVersion = "1"

// Bounds on what an announcement may hold. A remote host writes them; beyond
// these, fields are dropped (or the announcement refused, for the ones that
// identify it).
const (
	maxTXTBytes     = 8000 // all strings of one record: inside mDNS's 9000-byte packets
	maxTXTString    = 255  // one string, as DNS encodes it
	maxTXTStrings   = 256  // strings read from one record
	maxServerIDLen  = 128
	maxKeyLen       = 128 // the key and fingerprint fields
	maxAgents       = 32  // agents of one gateway
	maxCapabilities = 64  // capabilities of one agent
)

// encodeTXT lays g out as TXT strings: txtvers, id, url, fp and key, then
// each agent as agent=<id> followed by one cap=<capability> per
// capability. It returns how many agents and capabilities did not fit (a
// string over 255 bytes, or the record over 8000).
func encodeTXT(g Gateway) (txt []string, dropped int) {
	txt = []string{"txtvers=" + TXTVersion, "id=" + g.ServerID, "url=" + g.URL}
	if g.Fingerprint != "" {
		txt = append(txt, "fp="+g.Fingerprint)
	}
	if g.SigningKey != "" {
		txt = append(txt, "key="+g.SigningKey)
	}
	size := 0
	for _, s := range txt {
		size += len(s) + 1
	}
	add := func(s string) bool {
		if len(s) > maxTXTString || size+len(s)+1 > maxTXTBytes {
			dropped++
			return false
		}
		txt = append(txt, s)
		size += len(s) + 1
		return true
	}
	for i, a := range g.Agents {
		if i >= maxAgents || !add("agent="+a.ID) {
			dropped += min(len(a.Capabilities), maxCapabilities)
			continue
		}
		for j, c := range a.Capabilities {
			if j >= maxCapabilities {
				dropped++
				continue
			}
			add("cap=" + c)
		}
	}
	return txt, dropped
}

// decodeTXT reads an announcement. It refuses one without a usable id or
// url, or of another txtvers; it drops agents and capabilities beyond the
// bounds, and those with control characters. Unknown fields are ignored,
// so that later versions can add some.
func decodeTXT(fields []string) (Gateway, error) {
	var g Gateway
	var vers string
	var agent *Agent
	for i, f := range fields {
		if i >= maxTXTStrings {
			break
		}
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "txtvers":
			vers = v
		case "id":
			g.ServerID = v
		case "url":
			g.URL = v
		case "fp":
			g.Fingerprint = v
		case "key":
			g.SigningKey = v
		case "agent":
			agent = nil
			if len(g.Agents) < maxAgents && v != "" && printable(v) {
				g.Agents = append(g.Agents, Agent{ID: v, Capabilities: []string{}})
				agent = &g.Agents[len(g.Agents)-1]
			}
		case "cap":
			if agent != nil && len(agent.Capabilities) < maxCapabilities && v != "" && printable(v) {
				agent.Capabilities = append(agent.Capabilities, v)
			}
		}
	}
	switch {
	case vers != TXTVersion:
		return g, fmt.Errorf("txtvers %q is not %s", clip(vers), TXTVersion)
	case g.ServerID == "" || len(g.ServerID) > maxServerIDLen || !printable(g.ServerID) || strings.IndexFunc(g.ServerID, unicode.IsSpace) >= 0:
		return g, fmt.Errorf("id %q is not a serverId", clip(g.ServerID))
	case len(g.Fingerprint) > maxKeyLen || len(g.SigningKey) > maxKeyLen || !printable(g.Fingerprint) || !printable(g.SigningKey):
		return g, errors.New("fp or key is not a key")
	}
	if err := checkURL(g.URL); err != nil {
		return g, fmt.Errorf("url %q %v", clip(g.URL), err)
	}
	return g, nil
}

// checkURL accepts an absolute ws:// or wss:// URL with a host and no
// user name or password.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("does not parse")
	case u.Scheme != "ws" && u.Scheme != "wss":
		return errors.New("is not ws:// or wss://")
	case u.Hostname() == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("holds a user name or password")
	}
	return nil
}

// printable reports whether s holds no control characters.
func printable(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// clip bounds a remote value quoted in an error.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
