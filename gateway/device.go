package gateway

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// Device is an OpenClaw device identity: an Ed25519 key pair, named by the
// hex SHA-256 of its raw public key. An OpenClaw gateway grants a remote
// operator client its scopes only when the client proves such an identity
// in connect (connect.params.device) and the gateway's owner has approved
// (paired) it: `openclaw devices approve <requestId>`. Until then, connect
// is refused with NOT_PAIRED and the pending request's id. A Device is
// immutable and safe for concurrent use.
type Device struct {
	key ed25519.PrivateKey
	id  string
}

// NewDevice returns the device identity of key.
func NewDevice(key ed25519.PrivateKey) *Device {
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	return &Device{key: key, id: hex.EncodeToString(sum[:])}
}

// ID is the device id: the hex SHA-256 of the raw public key, as OpenClaw
// lists it (`openclaw devices list`).
func (d *Device) ID() string { return d.id }

// PublicKey is the raw Ed25519 public key in unpadded base64url, as
// connect.params.device.publicKey carries it.
func (d *Device) PublicKey() string {
	return base64.RawURLEncoding.EncodeToString(d.key.Public().(ed25519.PublicKey))
}

// DeviceProof is connect.params.device: the identity, and its signature
// over the connection's challenge.
type DeviceProof struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
	Signature string `json:"signature"`
	SignedAt  int64  `json:"signedAt"` // the challenge's ts, Unix ms
	Nonce     string `json:"nonce"`    // the challenge's nonce
}

// prove signs OpenClaw's v3 device-auth payload for connect params p,
// answering the challenge c. The payload binds the device to the client,
// role, scopes, token and nonce of this one connection:
//
//	v3|deviceId|clientId|clientMode|role|scope,scope|signedAtMs|token|nonce|platform|deviceFamily
//
// with platform lower-cased and no device family.
func (d *Device) prove(p *ConnectParams, c *Challenge) *DeviceProof {
	var token string
	if p.Auth != nil {
		token = p.Auth.Token
	}
	payload := strings.Join([]string{
		"v3", d.id, p.Client.ID, p.Client.Mode, p.Role, strings.Join(p.Scopes, ","),
		strconv.FormatInt(c.TS, 10), token, c.Nonce, asciiLower(strings.TrimSpace(p.Client.Platform)), "",
	}, "|")
	sig := ed25519.Sign(d.key, []byte(payload))
	return &DeviceProof{
		ID:        d.id,
		PublicKey: d.PublicKey(),
		Signature: base64.RawURLEncoding.EncodeToString(sig),
		SignedAt:  c.TS,
		Nonce:     c.Nonce,
	}
}

// asciiLower lower-cases A-Z only, as OpenClaw normalises device metadata
// before signing.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
