package federation_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// overTheWire returns m as the receiving gateway decodes it.
func overTheWire(t *testing.T, m *federation.Message) *federation.Message {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got federation.Message
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func signingKey(t *testing.T, id *federation.Identity) ed25519.PublicKey {
	t.Helper()
	k, err := federation.ParseSigningKey(id.Public().SigningKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encryptionKey(t *testing.T, id *federation.Identity) *ecdh.PublicKey {
	t.Helper()
	k, err := federation.ParseEncryptionKey(id.Public().EncryptionKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignatureCoversEveryField(t *testing.T) {
	id, other := mustIdentity(t, t.TempDir()), mustIdentity(t, t.TempDir())
	m := federation.NewMessage(federation.TypeRequest, "main", "planner", "worker", "pay <b>10</b> & go")
	// Values that JSON does not carry exactly: the signature must survive.
	m.Context = map[string]any{"big": int64(1<<60 + 1), "float": 1e21, "nested": map[string]any{"k": []any{1, "x"}}}
	if err := id.Sign(m); err != nil {
		t.Fatal(err)
	}
	if err := overTheWire(t, m).Verify(signingKey(t, id)); err != nil {
		t.Fatalf("untouched message: %v", err)
	}
	if err := overTheWire(t, m).Verify(signingKey(t, other)); code(err) != federation.CodeBadSignature {
		t.Fatalf("verified with another gateway's key: %v; want BAD_SIGNATURE", err)
	}
	for _, tt := range []struct {
		name   string
		tamper func(*federation.Message)
	}{
		{"content", func(m *federation.Message) { m.Content = "pay 1000" }},
		{"context", func(m *federation.Message) { m.Context["float"] = 2.0 }},
		{"toAgent", func(m *federation.Message) { m.ToAgent = "payroll" }},
		{"fromServer", func(m *federation.Message) { m.FromServer = "admin" }},
		{"type", func(m *federation.Message) { m.Type = federation.TypeBroadcast }},
		{"priority", func(m *federation.Message) { m.Priority = federation.PriorityUrgent }},
		{"timestamp", func(m *federation.Message) { m.Timestamp++ }},
		{"unsigned", func(m *federation.Message) { m.Signature = "" }},
		{"malformed signature", func(m *federation.Message) { m.Signature = "abc" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := overTheWire(t, m)
			tt.tamper(got)
			if err := got.Verify(signingKey(t, id)); code(err) != federation.CodeBadSignature {
				t.Fatalf("altered %s: %v; want BAD_SIGNATURE", tt.name, err)
			}
		})
	}
}

func TestSealHidesContent(t *testing.T) {
	target, other := mustIdentity(t, t.TempDir()), mustIdentity(t, t.TempDir())
	seal := func(t *testing.T) (*federation.Message, *ecdh.PrivateKey) {
		m := federation.NewMessage(federation.TypeRequest, "main", "planner", "worker", "the launch code is 0000")
		m.Context = map[string]any{"password": "swordfish"}
		eph, err := m.Seal(encryptionKey(t, target))
		if err != nil {
			t.Fatal(err)
		}
		return overTheWire(t, m), eph
	}

	m, eph := seal(t)
	wire, _ := json.Marshal(m)
	for _, secret := range []string{"launch code", "swordfish", "password"} {
		if strings.Contains(string(wire), secret) {
			t.Errorf("sealed wire form contains %q: %s", secret, wire)
		}
	}
	if m.Content != "" || m.Context != nil || m.Sealed == nil {
		t.Fatalf("sealed message still has content %q, context %v (sealed %v)", m.Content, m.Context, m.Sealed)
	}
	if err := target.Open(m); err != nil {
		t.Fatal(err)
	}
	if m.Content != "the launch code is 0000" || m.Context["password"] != "swordfish" || m.Sealed != nil {
		t.Fatalf("opened to content %q, context %v, sealed %v", m.Content, m.Context, m.Sealed)
	}
	// The reply, sealed to the request's one-time key, opens only with it.
	reply := m.Reply("worker", "done", nil)
	if _, err := reply.Seal(eph.PublicKey()); err != nil {
		t.Fatal(err)
	}
	reply = overTheWire(t, reply)
	if err := target.Open(reply); code(err) != gateway.CodeInvalidParams {
		t.Fatalf("reply opened with the target's key: %v; want INVALID_PARAMS", err)
	}
	if err := reply.Open(eph); err != nil || reply.Content != "done" {
		t.Fatalf("reply opened to %q, %v", reply.Content, err)
	}

	for _, tt := range []struct {
		name   string
		tamper func(*federation.Message)
		key    *federation.Identity
		want   string
	}{
		{"wrong key", func(*federation.Message) {}, other, gateway.CodeInvalidParams},
		{"wrong key, recipient forged", func(m *federation.Message) { m.Sealed.To = other.Public().EncryptionKey }, other, federation.CodeBadSignature},
		{"ciphertext altered", func(m *federation.Message) {
			c, err := base64.RawURLEncoding.DecodeString(m.Sealed.Ciphertext) // alter the bytes, not the text
			if err != nil {
				t.Fatal(err)
			}
			c[5] ^= 1
			m.Sealed.Ciphertext = base64.RawURLEncoding.EncodeToString(c)
		}, target, federation.CodeBadSignature},
		{"moved to another agent", func(m *federation.Message) { m.ToAgent = "payroll" }, target, federation.CodeBadSignature},
		{"moved to another message", func(m *federation.Message) { m.MessageID = "other" }, target, federation.CodeBadSignature},
		{"not base64url", func(m *federation.Message) { m.Sealed.Enc = "%%" }, target, gateway.CodeInvalidParams},
		{"reply redirected", func(m *federation.Message) { m.Sealed.ReplyKey = other.Public().EncryptionKey }, target, federation.CodeBadSignature},
		{"reply key dropped", func(m *federation.Message) { m.Sealed.ReplyKey = "" }, target, federation.CodeBadSignature},
		{"enc replaced", func(m *federation.Message) {
			m2, _ := seal(t)
			m.Sealed.Enc = m2.Sealed.Enc
		}, target, federation.CodeBadSignature},
		{"another suite", func(m *federation.Message) { m.Sealed.Suite = "x25519-hkdf-aes256gcm-v1" }, target, gateway.CodeInvalidParams},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := seal(t)
			tt.tamper(m)
			if err := tt.key.Open(m); code(err) != tt.want {
				t.Fatalf("open: %v; want %s", err, tt.want)
			}
		})
	}
}

// signedPair starts a worker gateway (agent "w") and a main gateway that
// has it as peer "worker". Both sign; each pins the other's signing key.
// tune adjusts both configs before they start; h, if set, is agent w.
func signedPair(t *testing.T, tune func(main, worker *federation.Config), h federation.Handler) (main *gw) {
	t.Helper()
	mainCfg, workerCfg := newConfig(t, "main", ""), newConfig(t, "worker", "w")
	mainKey := mustIdentity(t, mainCfg.Storage.Dir).Public()
	workerKey := mustIdentity(t, workerCfg.Storage.Dir).Public()
	mainCfg.Gateway.Signing.Sign, workerCfg.Gateway.Signing.Sign = true, true
	workerCfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main", Token: "tok", PublicKey: mainKey.SigningKey}}
	wln := listen(t)
	p := peerConf("worker", "w", wln)
	p.Token, p.PublicKey = "tok", workerKey.SigningKey
	mainCfg.Federation.Peers = []federation.PeerConfig{p}
	if tune != nil {
		tune(mainCfg, workerCfg)
	}
	var extra map[string]federation.Handler
	if h != nil {
		extra = map[string]federation.Handler{"w": h}
	}
	start(t, workerCfg, wln, extra)
	return start(t, mainCfg, listen(t), nil)
}

func send(t *testing.T, g *gw, content string) *federation.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := g.Send(ctx, federation.SendRequest{PeerID: "worker", Message: content})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignedRelay(t *testing.T) {
	otherKey := mustIdentity(t, t.TempDir()).Public().SigningKey
	for _, tt := range []struct {
		name string
		tune func(main, worker *federation.Config)
		want string // error code; "" for ok
		says string // part of the error message
	}{
		{"signed both ways", nil, "", ""},
		{"signed both ways, signatures required", func(_, w *federation.Config) { w.Gateway.Signing.Require = true }, "", ""},
		{"sender does not sign", func(m, _ *federation.Config) { m.Gateway.Signing.Sign = false }, federation.CodeBadSignature, "is unsigned"},
		{"unsigned, signatures required", func(m, w *federation.Config) {
			m.Gateway.Signing.Sign, w.Gateway.Signing.Require = false, true
		}, federation.CodeBadSignature, "is unsigned"},
		{"required, no key pinned for the sender", func(m, w *federation.Config) {
			w.Gateway.Signing.Require = true
			w.Gateway.Auth.Peers[0].ServerID = "someone-else" // main connects unauthenticated
			m.Federation.Peers[0].Token = ""
		}, federation.CodeBadSignature, "no publicKey is pinned"},
		{"receiver pins the wrong key", func(_, w *federation.Config) { w.Gateway.Auth.Peers[0].PublicKey = otherKey }, federation.CodeBadSignature, "does not verify"},
		{"replier does not sign", func(_, w *federation.Config) { w.Gateway.Signing.Sign = false }, federation.CodeBadSignature, "the reply of peer"},
		{"sender pins the wrong key for replies", func(m, _ *federation.Config) { m.Federation.Peers[0].PublicKey = otherKey }, federation.CodeBadSignature, "does not verify"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, signedPair(t, tt.tune, nil), "hello")
			if tt.want == "" {
				if r.Status != federation.StatusOK || r.Response.Content != "hello" || r.Response.Signature == "" {
					t.Fatalf("result %+v; want a signed echo of hello", r)
				}
				return
			}
			if r.Error == nil || r.Error.Code != tt.want || !strings.Contains(r.Error.Message, tt.says) {
				t.Fatalf("result %+v (error %v); want %s saying %q", r, r.Error, tt.want, tt.says)
			}
		})
	}
}

func TestSealedRelay(t *testing.T) {
	for _, sign := range []bool{true, false} {
		t.Run(map[bool]string{true: "signed", false: "unsigned"}[sign], func(t *testing.T) {
			var mu sync.Mutex
			var seen []string // content as the worker's agent saw it
			h := federation.HandlerFunc(func(_ context.Context, m *federation.Message) (*federation.Answer, error) {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, m.Content)
				if m.Sealed != nil {
					t.Error("the agent was handed a still-sealed message")
				}
				return &federation.Answer{Content: "re: " + m.Content, Context: map[string]any{"secret": "reply"}}, nil
			})
			main := signedPair(t, func(m, w *federation.Config) {
				m.Federation.Peers[0].EncryptionKey = mustIdentity(t, w.Storage.Dir).Public().EncryptionKey
				m.Gateway.Signing.Sign, w.Gateway.Signing.Sign = sign, sign
				if !sign {
					m.Federation.Peers[0].PublicKey, w.Gateway.Auth.Peers[0].PublicKey = "", ""
				}
			}, h)
			r := send(t, main, "top secret")
			if r.Status != federation.StatusOK || r.Response.Content != "re: top secret" || r.Response.Context["secret"] != "reply" || r.Response.Sealed != nil {
				t.Fatalf("result %+v (error %v); want the opened reply", r, r.Error)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || seen[0] != "top secret" {
				t.Fatalf("the agent saw %q; want the plaintext", seen)
			}
		})
	}
	t.Run("sealed to a stale key", func(t *testing.T) {
		stale := mustIdentity(t, t.TempDir()).Public().EncryptionKey
		main := signedPair(t, func(m, _ *federation.Config) { m.Federation.Peers[0].EncryptionKey = stale }, nil)
		r := send(t, main, "top secret")
		if r.Error == nil || r.Error.Code != gateway.CodeInvalidParams || !strings.Contains(r.Error.Message, "out of date") {
			t.Fatalf("result %+v (error %v); want INVALID_PARAMS about the out-of-date key", r, r.Error)
		}
	})
}

// TestTamperedMessage: a message signed by the authenticated peer's pinned
// key and then altered, as a relay in the middle would, is refused, and the
// gateway goes on serving.
func TestTamperedMessage(t *testing.T) {
	peerID := mustIdentity(t, t.TempDir())
	g := guarded(t, func(c *federation.PeerCredential) { c.PublicKey = peerID.Public().SigningKey })
	c, err := dialPeer(t, g, "main-server", "main-token")
	if err != nil {
		t.Fatal(err)
	}
	signed := func(content string) *federation.Message {
		m := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", content)
		if err := peerID.Sign(m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	sealed := func() *federation.Message {
		m := federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "sealed")
		if _, err := m.Seal(encryptionKey(t, mustIdentity(t, g.cfg.Storage.Dir))); err != nil {
			t.Fatal(err)
		}
		// Flip a bit of the ciphertext itself, not of its base64 text,
		// which could make it invalid base64 instead of a forgery.
		c, err := base64.RawURLEncoding.DecodeString(m.Sealed.Ciphertext)
		if err != nil {
			t.Fatal(err)
		}
		c[3] ^= 1
		m.Sealed.Ciphertext = base64.RawURLEncoding.EncodeToString(c)
		peerID.Sign(m) // the peer signs garbage: the seal still catches it
		return m
	}
	for _, tt := range []struct {
		name   string
		msg    *federation.Message
		to     string
		tamper func(*federation.Message)
		want   string
	}{
		{"intact", signed("pay 10"), "public", nil, ""},
		{"content altered", signed("pay 10"), "public", func(m *federation.Message) { m.Content = "pay 1000" }, federation.CodeBadSignature},
		{"context added", signed("pay 10"), "public", func(m *federation.Message) { m.Context = map[string]any{"to": "mallory"} }, federation.CodeBadSignature},
		{"redirected by targetAgent", signed("pay 10"), "secret", nil, federation.CodeBadSignature},
		{"unsigned", federation.NewMessage(federation.TypeRequest, "main-server", "a", "public", "hi"), "public", nil, federation.CodeBadSignature},
		{"sealed ciphertext altered", sealed(), "public", nil, federation.CodeBadSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tamper != nil {
				tt.tamper(tt.msg)
			}
			if err := relayMsg(t, c, tt.msg, tt.to); code(err) != tt.want {
				t.Fatalf("relay: %v; want %q", err, tt.want)
			}
		})
	}
	if err := relayMsg(t, c, signed("still here?"), "public"); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
}

// FuzzOpen: whatever a peer puts in a sealed message, opening it fails
// cleanly or yields the plaintext; it never panics.
func FuzzOpen(f *testing.F) {
	id, err := federation.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	to, _ := federation.ParseEncryptionKey(id.Public().EncryptionKey)
	m := federation.NewMessage(federation.TypeRequest, "main", "a", "w", "hello")
	m.Seal(to)
	f.Add(m.Sealed.Suite, m.Sealed.Enc, m.Sealed.ReplyKey, m.Sealed.Ciphertext)
	f.Add(federation.SealSuite, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "")
	f.Fuzz(func(t *testing.T, suite, enc, replyKey, ct string) {
		c := *m
		c.Sealed = &federation.Sealed{Suite: suite, To: id.Public().EncryptionKey, Enc: enc, ReplyKey: replyKey, Ciphertext: ct}
		if err := id.Open(&c); err != nil {
			if k := code(err); k != gateway.CodeInvalidParams && k != federation.CodeBadSignature {
				t.Fatalf("open: %v: code %s", err, k)
			}
		}
	})
}
