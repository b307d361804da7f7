package federation

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/agentfed/agentfed/internal/store"
)

// A gateway's identity: the long-term keys of the application layer (see
// seal.go). They live in their own file rather than in the state database,
// so that `agentfed identity` can read them while the gateway holds the
// database open.

// IdentityFile is the file inside storage.dir that holds the identity keys:
// two PKCS #8 "PRIVATE KEY" PEM blocks, Ed25519 then X25519, mode 0600.
const IdentityFile = "identity.key"

// Prefixes of the public keys' text form.
const (
	signingKeyPrefix    = "ed25519:"
	encryptionKeyPrefix = "x25519:"
)

// Identity is a gateway's application-layer key pair: an Ed25519 key that
// signs the messages and replies it sends, and an X25519 key that opens the
// messages sealed to it. An Identity is immutable and safe for concurrent
// use.
type Identity struct {
	sign ed25519.PrivateKey
	enc  *ecdh.PrivateKey
}

// PublicIdentity is the public half of an Identity: what an operator pins
// on the peers that talk to this gateway.
type PublicIdentity struct {
	// SigningKey is the Ed25519 public key, ed25519:<base64url>. Peers pin
	// it as gateway.auth.peers[].publicKey and federation.peers[].publicKey.
	SigningKey string `json:"signingKey"`
	// EncryptionKey is the X25519 public key, x25519:<base64url>. Peers
	// set it as federation.peers[].encryptionKey to seal messages to it.
	EncryptionKey string `json:"encryptionKey"`
	// Fingerprint is the first 16 bytes of the SHA-256 of the Ed25519
	// public key, as colon-separated hex: short enough to compare aloud.
	Fingerprint string `json:"fingerprint"`
}

// LoadIdentity reads the identity kept in dir, generating and saving one
// first if there is none. Generation is atomic: the keys are written to a
// temporary file and linked into place, so a concurrent reader sees either
// no file or the whole of it, and two processes racing to create it end up
// with the same keys.
func LoadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	id, err := readIdentity(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := store.PrepareDir(dir); err != nil {
		return nil, err
	}
	return createIdentity(path)
}

// GenerateIdentity returns a new identity that is not saved anywhere.
func GenerateIdentity() (*Identity, error) {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	enc, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Identity{sign: sign, enc: enc}, nil
}

func createIdentity(path string) (*Identity, error) {
	id, err := GenerateIdentity()
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	data, err := id.marshalPEM()
	if err != nil {
		return nil, fmt.Errorf("encode identity: %w", err)
	}
	created, err := store.CreateFile(path, data)
	switch {
	case err != nil:
		return nil, fmt.Errorf("identity: %w", err)
	case !created: // another process created it meanwhile: its keys win
		return readIdentity(path)
	}
	return id, nil
}

func readIdentity(path string) (*Identity, error) {
	data, err := store.ReadSecret(path, "identity", 64<<10) // two PEM keys are well under 1 KiB
	if err != nil {
		return nil, err
	}
	id, err := parseIdentityPEM(data)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w; restore it from a backup, or delete it to generate a new identity (peers that pinned the old keys must then pin the new ones)", path, err)
	}
	return id, nil
}

func (id *Identity) marshalPEM() ([]byte, error) {
	var out []byte
	for _, k := range []any{id.sign, id.enc} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	return out, nil
}

func parseIdentityPEM(data []byte) (*Identity, error) {
	var id Identity
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case ed25519.PrivateKey:
			id.sign = k
		case *ecdh.PrivateKey:
			if k.Curve() != ecdh.X25519() {
				return nil, errors.New("the encryption key is not an X25519 key")
			}
			id.enc = k
		default:
			return nil, fmt.Errorf("unexpected %T key", k)
		}
	}
	if id.sign == nil || id.enc == nil {
		return nil, errors.New("want an Ed25519 and an X25519 private key")
	}
	return &id, nil
}

// Public returns the public keys and fingerprint of id.
func (id *Identity) Public() PublicIdentity {
	pub := id.sign.Public().(ed25519.PublicKey)
	return PublicIdentity{
		SigningKey:    signingKeyPrefix + base64.RawURLEncoding.EncodeToString(pub),
		EncryptionKey: encryptionKeyPrefix + base64.RawURLEncoding.EncodeToString(id.enc.PublicKey().Bytes()),
		Fingerprint:   Fingerprint(pub),
	}
}

// Identity returns the public keys of this gateway's identity.
func (n *Node) Identity() PublicIdentity { return n.identity.Public() }

// Fingerprint returns the first 16 bytes of the SHA-256 of an Ed25519
// public key as colon-separated hex, like "3f:a1:...".
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	h := hex.EncodeToString(sum[:16])
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// ParseSigningKey parses an Ed25519 public key written ed25519:<base64url>.
func ParseSigningKey(s string) (ed25519.PublicKey, error) {
	b, err := parseKey(s, signingKeyPrefix, encryptionKeyPrefix, "Ed25519", "signingKey", ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	return ed25519.PublicKey(b), nil
}

// ParseEncryptionKey parses an X25519 public key written x25519:<base64url>.
func ParseEncryptionKey(s string) (*ecdh.PublicKey, error) {
	b, err := parseKey(s, encryptionKeyPrefix, signingKeyPrefix, "X25519", "encryptionKey", 32)
	if err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPublicKey(b)
}

// parseKey decodes prefix<base64url> of size bytes. other is the prefix of
// the other kind of key, named in the error when it is used by mistake, and
// line the line of `agentfed identity` that shows the right one.
func parseKey(s, prefix, other, kind, line string, size int) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		if strings.HasPrefix(s, other) {
			return nil, fmt.Errorf("is an %s key, not %s; copy the %s line of the peer's `agentfed identity`", strings.TrimSuffix(other, ":"), kind, line)
		}
		return nil, fmt.Errorf("is not an %s public key: write it %s<base64url>, as the %s line of `agentfed identity` shows it", kind, prefix, line)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(rest, "="))
	if err != nil {
		return nil, fmt.Errorf("is not an %s public key: the part after %q is not base64url", kind, prefix)
	}
	if len(b) != size {
		return nil, fmt.Errorf("is not an %s public key: it has %d bytes, want %d", kind, len(b), size)
	}
	return b, nil
}

// signing checks gateway.signing and the publicKey pins of
// gateway.auth.peers.
func (ch *checker) signing(g *GatewayConfig) {
	for i, cred := range g.Auth.Peers {
		path := fmt.Sprintf("gateway.auth.peers[%d].publicKey", i)
		switch {
		case cred.PublicKey != "":
			if _, err := ParseSigningKey(cred.PublicKey); err != nil {
				ch.add(path, "%v", err)
			}
		case g.Signing.Require:
			ch.add(path, "required because gateway.signing.require is true; set it to the signingKey `agentfed identity` prints on gateway %q", cred.ServerID)
		}
	}
	if g.Signing.Require && len(g.Auth.Peers) == 0 {
		ch.add("gateway.signing.require", "no gateway.auth.peers entry pins a publicKey, so every relay would be refused; list each peer allowed to connect with its publicKey")
	}
}

// peerKeys checks the keys pinned on one federation.peers entry.
func (ch *checker) peerKeys(p *PeerConfig, path string) {
	if p.PublicKey != "" {
		if _, err := ParseSigningKey(p.PublicKey); err != nil {
			ch.add(path+".publicKey", "%v", err)
		}
	}
	if p.EncryptionKey != "" {
		if _, err := ParseEncryptionKey(p.EncryptionKey); err != nil {
			ch.add(path+".encryptionKey", "%v", err)
		}
	}
}
