package federation

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentfed/agentfed/gateway"
)

// Application-layer signing and sealing, end to end between the origin
// gateway and the target gateway, whatever carries the frames in between
// (TLS-terminating proxies, relays).
//
// A signature is Ed25519 over sigContext, the messageId the message
// answers (empty for a relayed message), a NUL byte, and the message's
// canonical bytes: json.Marshal of the message with Signature cleared,
// after one decode-encode round trip so that sender and receiver encode the
// same values the same way. It covers every field, sealed or not, so
// nothing in the middle can forge a message or alter one; binding a reply
// to its request's messageId keeps an old signed reply from being passed
// off as the answer to a new request.
//
// Sealing encrypts content and context to the target gateway's X25519 key
// with HPKE (RFC 9180, crypto/hpke) in base mode: DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256 and AES-256-GCM, with sealInfo as the info and
// the clear envelope (sealAAD) as the additional data. A sealed request
// also carries a one-time X25519 reply key, covered by that additional
// data; the reply is sealed to it, so only the sender can read the reply.
// Sealed.Suite names this construction, so that a later one can be told
// apart on the wire.

const (
	sigContext = "agentfed signature v1\x00"
	sealInfo   = "agentfed seal " + SealSuite
	// SealSuite is the one sealing construction this version speaks.
	SealSuite = "hpke-x25519-sha256-aes256gcm"
)

var (
	sealKDF  = hpke.HKDFSHA256()
	sealAEAD = hpke.AES256GCM()
)

// Sealed is a message's content and context encrypted to one gateway. A
// sealed Message carries an empty content and no context in the clear.
type Sealed struct {
	// Suite names the construction, SealSuite.
	Suite string `json:"suite"`
	// To is the recipient's encryption key, x25519:<base64url>.
	To string `json:"to"`
	// Enc is HPKE's encapsulated key, base64url.
	Enc string `json:"enc"`
	// ReplyKey is the one-time key, x25519:<base64url>, that the reply to
	// a sealed request is sealed to. Empty in a sealed reply.
	ReplyKey string `json:"replyKey,omitempty"`
	// Ciphertext is the HPKE ciphertext of the JSON {"content","context"},
	// base64url.
	Ciphertext string `json:"ciphertext"`
}

// sealedBody is the plaintext of a Sealed.
type sealedBody struct {
	Content string         `json:"content"`
	Context map[string]any `json:"context,omitempty"`
}

var b64 = base64.RawURLEncoding

// Seal encrypts m's content and context to the X25519 key to, moves them
// into m.Sealed and clears them. It returns the private half of the
// one-time reply key it put in the envelope: a reply sealed to its public
// half opens with it. Sign after sealing.
func (m *Message) Seal(to *ecdh.PublicKey) (*ecdh.PrivateKey, error) {
	reply, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := m.seal(to, encryptionKeyPrefix+b64.EncodeToString(reply.PublicKey().Bytes())); err != nil {
		return nil, err
	}
	return reply, nil
}

// seal encrypts m's content and context to to; replyKey, if set, goes
// into the envelope for the answer.
func (m *Message) seal(to *ecdh.PublicKey, replyKey string) error {
	pk, err := hpke.NewDHKEMPublicKey(to)
	if err != nil {
		return fmt.Errorf("%w: seal message %q: %v", ErrInvalidParams, m.MessageID, err)
	}
	plain, err := json.Marshal(sealedBody{Content: m.Content, Context: m.Context})
	if err != nil {
		return fmt.Errorf("%w: seal message %q: %v", ErrInvalidParams, m.MessageID, err)
	}
	enc, sender, err := hpke.NewSender(pk, sealKDF, sealAEAD, []byte(sealInfo))
	if err != nil {
		return fmt.Errorf("seal message %q: %w", m.MessageID, err)
	}
	s := &Sealed{Suite: SealSuite, To: encryptionKeyPrefix + b64.EncodeToString(to.Bytes()), Enc: b64.EncodeToString(enc), ReplyKey: replyKey}
	m.Sealed = s
	ct, err := sender.Seal(m.sealAAD(), plain)
	if err != nil {
		m.Sealed = nil
		return fmt.Errorf("seal message %q: %w", m.MessageID, err)
	}
	s.Ciphertext = b64.EncodeToString(ct)
	m.Content, m.Context = "", nil
	return nil
}

// Open decrypts a message sealed to key's public half and puts its content
// and context back in the clear. A message sealed to another key, with
// another suite, or malformed, is INVALID_PARAMS; one whose ciphertext or
// envelope was altered is BAD_SIGNATURE.
func (m *Message) Open(key *ecdh.PrivateKey) error {
	s := m.Sealed
	if s == nil {
		return fmt.Errorf("%w: message %q is not sealed", ErrInvalidParams, m.MessageID)
	}
	if s.Suite != SealSuite {
		return fmt.Errorf("%w: message %q is sealed with suite %q, but this gateway opens only %q; the sender runs another agentfed version: upgrade both to the same release",
			ErrInvalidParams, m.MessageID, clip(s.Suite, 64), SealSuite)
	}
	if mine := encryptionKeyPrefix + b64.EncodeToString(key.PublicKey().Bytes()); s.To != mine {
		return fmt.Errorf("%w: message %q is sealed to %s, but this key is %s; the sender's encryptionKey for this gateway is out of date (`agentfed identity` prints the current one)", ErrInvalidParams, m.MessageID, clip(s.To, 64), mine)
	}
	enc, err1 := b64.DecodeString(s.Enc)
	ct, err2 := b64.DecodeString(s.Ciphertext)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: message %q: sealed.enc and sealed.ciphertext must be base64url", ErrInvalidParams, m.MessageID)
	}
	if s.ReplyKey != "" {
		if _, err := ParseEncryptionKey(s.ReplyKey); err != nil {
			return fmt.Errorf("%w: message %q: sealed.replyKey %v", ErrInvalidParams, m.MessageID, err)
		}
	}
	sk, err := hpke.NewDHKEMPrivateKey(key)
	if err != nil {
		return fmt.Errorf("%w: message %q: %v", ErrInvalidParams, m.MessageID, err)
	}
	r, err := hpke.NewRecipient(enc, sk, sealKDF, sealAEAD, []byte(sealInfo))
	if err != nil {
		return fmt.Errorf("%w: message %q: sealed.enc is not an X25519 key", ErrInvalidParams, m.MessageID)
	}
	plain, err := r.Open(m.sealAAD(), ct)
	if err != nil {
		return fmt.Errorf("%w: sealed message %q does not authenticate: its ciphertext or envelope was altered on the way", ErrBadSignature, m.MessageID)
	}
	var body sealedBody
	if err := json.Unmarshal(plain, &body); err != nil {
		return fmt.Errorf("%w: message %q: sealed content: %v", ErrInvalidParams, m.MessageID, err)
	}
	m.Content, m.Context, m.Sealed = body.Content, body.Context, nil
	return nil
}

// sealAAD is the additional data of a seal: the envelope fields that say
// who sent the sealed content to whom, and where its answer goes, so it
// cannot be moved to another message or its reply redirected.
func (m *Message) sealAAD() []byte {
	s := m.Sealed
	b, _ := json.Marshal([]string{sealInfo, m.MessageID, m.FromServer, m.FromAgent, m.ToAgent, string(m.Type), m.CorrelationID, s.To, s.ReplyKey})
	return b
}

// Sign sets m.Signature to this identity's signature of m. Seal first:
// the signature covers the sealed form.
func (id *Identity) Sign(m *Message) error { return id.signFor(m, "") }

// Open decrypts a message sealed to this identity; see Message.Open.
func (id *Identity) Open(m *Message) error { return m.Open(id.enc) }

func (id *Identity) signFor(m *Message, inReplyTo string) error {
	b, err := signedBytes(m, inReplyTo)
	if err != nil {
		return err
	}
	m.Signature = b64.EncodeToString(ed25519.Sign(id.sign, b))
	return nil
}

// Verify checks that m carries a valid signature by key; if not, the error
// is BAD_SIGNATURE.
func (m *Message) Verify(key ed25519.PublicKey) error {
	if err := verifySig(m, key, ""); err != nil {
		return fmt.Errorf("%w: message %q %v", ErrBadSignature, m.MessageID, err)
	}
	return nil
}

// verifySig checks m's signature; the error completes "message X ...".
func verifySig(m *Message, key ed25519.PublicKey, inReplyTo string) error {
	if m.Signature == "" {
		return errors.New("is unsigned")
	}
	sig, err := b64.DecodeString(m.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("has a malformed signature (want 64 bytes, base64url)")
	}
	b, err := signedBytes(m, inReplyTo)
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, b, sig) {
		return errors.New("has a signature that does not verify")
	}
	return nil
}

// signedBytes is what a signature covers: sigContext, inReplyTo, NUL, and
// the canonical JSON of m without its signature. Canonical JSON never holds
// a raw NUL, so the parts cannot run into each other.
func signedBytes(m *Message, inReplyTo string) ([]byte, error) {
	c := *m
	c.Signature = ""
	b, err := c.AppendJSON(nil) // encoding/json's bytes (codec.go)
	if err != nil {
		return nil, fmt.Errorf("%w: message %q: %v", ErrInvalidParams, m.MessageID, err)
	}
	// Decode and encode again, as the receiver does: numbers become
	// float64 and invalid UTF-8 becomes U+FFFD on both sides.
	var norm Message
	if err := norm.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%w: message %q: %v", ErrInvalidParams, m.MessageID, err)
	}
	out := append(make([]byte, 0, len(sigContext)+len(inReplyTo)+1+len(b)), sigContext+inReplyTo+"\x00"...)
	if out, err = norm.AppendJSON(out); err != nil {
		return nil, fmt.Errorf("%w: message %q: %v", ErrInvalidParams, m.MessageID, err)
	}
	return out, nil
}

// protectOutbound replaces params.Message, just before it is sent to p,
// with a copy that is sealed (when p has an encryptionKey) and signed
// (gateway.signing.sign). It returns the one-time key that opens the
// reply, or nil when the message is not sealed.
func (n *Node) protectOutbound(p *peer, params *RelayParams) (*ecdh.PrivateKey, error) {
	sign := n.cfg.Gateway.Signing.Sign
	if p.EncryptionKey == "" && !sign {
		return nil, nil
	}
	m := *params.Message
	params.Message = &m
	var eph *ecdh.PrivateKey
	if p.EncryptionKey != "" {
		to, err := ParseEncryptionKey(p.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("%w: encryptionKey of peer %q %v", ErrInvalidParams, p.ID, err)
		}
		if eph, err = m.Seal(to); err != nil {
			return nil, err
		}
	}
	if sign {
		if err := n.identity.Sign(&m); err != nil {
			return nil, err
		}
	}
	return eph, nil
}

// acceptReply checks p's reply to req: signed by p's pinned publicKey if it
// has one, and sealed to eph if the request was sealed, which it opens.
func (n *Node) acceptReply(p *peer, req, reply *Message, eph *ecdh.PrivateKey) error {
	if p.PublicKey != "" {
		key, err := ParseSigningKey(p.PublicKey)
		if err == nil {
			err = verifySig(reply, key, req.MessageID)
		}
		if err != nil {
			return fmt.Errorf("%w: the reply of peer %q to message %q %v against the publicKey pinned in its federation.peers entry: it was altered on the way, the peer does not sign (gateway.signing.sign), or its identity changed (compare with its `agentfed identity`)",
				ErrBadSignature, p.ID, req.MessageID, err)
		}
	}
	switch {
	case eph != nil && reply.Sealed == nil:
		return fmt.Errorf("%w: peer %q answered sealed message %q in the clear; it may not support sealing: upgrade it, or remove encryptionKey from its federation.peers entry", ErrBadSignature, p.ID, req.MessageID)
	case eph != nil:
		if err := reply.Open(eph); err != nil {
			return fmt.Errorf("reply of peer %q: %w", p.ID, err)
		}
	case reply.Sealed != nil:
		return fmt.Errorf("%w: peer %q sealed its reply to unsealed message %q", ErrInvalidParams, p.ID, req.MessageID)
	}
	return nil
}

// openInbound checks a relayed message against the signing key pinned for
// the peer that sent it (gateway.auth.peers[].publicKey, or
// gateway.signing.require), and opens it when it is sealed. It returns the
// key the reply must be sealed to, or nil when the message is not sealed.
func (n *Node) openInbound(id *gateway.Identity, p *RelayParams) (*ecdh.PublicKey, error) {
	msg := p.Message
	cred := n.credential(id)
	switch {
	case cred != nil && cred.PublicKey != "":
		key, err := ParseSigningKey(cred.PublicKey)
		if err == nil {
			err = verifySig(msg, key, "")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: message %q from %q %v against the publicKey pinned in its gateway.auth.peers entry: it was altered on the way, the sender does not sign (gateway.signing.sign), or its identity changed (compare with its `agentfed identity`)",
				ErrBadSignature, msg.MessageID, id.PeerID, err)
		}
		// targetAgent is outside the signature: it may only repeat toAgent.
		if p.TargetAgent != "" && p.TargetAgent != msg.ToAgent {
			return nil, fmt.Errorf("%w: targetAgent %q differs from the signed toAgent %q of message %q", ErrBadSignature, p.TargetAgent, msg.ToAgent, msg.MessageID)
		}
	case n.cfg.Gateway.Signing.Require:
		return nil, fmt.Errorf("%w: gateway.signing.require is true but no publicKey is pinned for peer %q, so its message %q cannot be verified; add that gateway's signingKey (`agentfed identity`) as gateway.auth.peers[].publicKey",
			ErrBadSignature, id.PeerID, msg.MessageID)
	}
	if msg.Sealed == nil {
		return nil, nil
	}
	if msg.Content != "" || msg.Context != nil {
		return nil, fmt.Errorf("%w: sealed message %q also carries content or context in the clear", ErrInvalidParams, msg.MessageID)
	}
	replyTo, err := ParseEncryptionKey(msg.Sealed.ReplyKey)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed message %q: sealed.replyKey %v", ErrInvalidParams, msg.MessageID, err)
	}
	if err := n.identity.Open(msg); err != nil {
		return nil, fmt.Errorf("from %q: %w", id.PeerID, err)
	}
	return replyTo, nil
}

// protectReply returns reply to req, sealed to replyTo when it is set and
// signed (bound to req's messageId) when gateway.signing.sign. reply itself
// is not changed: a durable message's kept reply is shared.
func (n *Node) protectReply(req, reply *Message, replyTo *ecdh.PublicKey) (*Message, error) {
	sign := n.cfg.Gateway.Signing.Sign
	if replyTo == nil && !sign {
		return reply, nil
	}
	r := *reply
	if replyTo != nil {
		if err := r.seal(replyTo, ""); err != nil {
			return nil, err
		}
	}
	if sign {
		if err := n.identity.signFor(&r, req.MessageID); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// clip shortens s, a value from the network quoted in an error, to at most
// n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
