package federation_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/google/go-cmp/cmp"
)

func mustIdentity(t *testing.T, dir string) *federation.Identity {
	t.Helper()
	id, err := federation.LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIdentityPersistsAcrossRestart(t *testing.T) {
	cfg := newConfig(t, "main", "echo")
	g := start(t, cfg, listen(t), nil)
	first := g.Identity()
	if !strings.HasPrefix(first.SigningKey, "ed25519:") || !strings.HasPrefix(first.EncryptionKey, "x25519:") || len(first.Fingerprint) != 47 {
		t.Fatalf("identity %+v: want ed25519:..., x25519:... and a 16-byte hex fingerprint", first)
	}
	fi, err := os.Stat(filepath.Join(cfg.Storage.Dir, federation.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %04o, want 0600", fi.Mode().Perm())
	}
	// Readable while the gateway runs, as `agentfed identity` does.
	if diff := cmp.Diff(first, mustIdentity(t, cfg.Storage.Dir).Public()); diff != "" {
		t.Errorf("identity read beside the running gateway (-gateway +file):\n%s", diff)
	}
	g.stop(t)

	again := start(t, cfg, listen(t), nil)
	if diff := cmp.Diff(first, again.Identity()); diff != "" {
		t.Errorf("identity changed across a restart (-before +after):\n%s", diff)
	}
	// An operator can learn the keys from federation.capabilities.
	var caps federation.Capabilities
	if err := operator(t, again, "").Call(context.Background(), federation.MethodCapabilities, nil, &caps); err != nil {
		t.Fatal(err)
	}
	if caps.SigningKey != first.SigningKey || caps.EncryptionKey != first.EncryptionKey {
		t.Errorf("capabilities carry keys %q %q, want %q %q", caps.SigningKey, caps.EncryptionKey, first.SigningKey, first.EncryptionKey)
	}
}

func TestIdentityFileProblems(t *testing.T) {
	t.Run("readable by others", func(t *testing.T) {
		dir := t.TempDir()
		mustIdentity(t, dir)
		os.Chmod(filepath.Join(dir, federation.IdentityFile), 0o644)
		if _, err := federation.LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("LoadIdentity of a 0644 file: %v; want advice to chmod 600", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, federation.IdentityFile), []byte("not a key"), 0o600)
		if _, err := federation.LoadIdentity(dir); err == nil || !strings.Contains(err.Error(), "delete it to generate") {
			t.Fatalf("LoadIdentity of a corrupt file: %v; want advice", err)
		}
	})
}

func TestParseKeys(t *testing.T) {
	pub := mustIdentity(t, t.TempDir()).Public()
	for _, tt := range []struct {
		name, key string
		enc       bool
		want      string // part of the error; "" for success
	}{
		{"signing key", pub.SigningKey, false, ""},
		{"encryption key", pub.EncryptionKey, true, ""},
		{"encryption key as signing key", pub.EncryptionKey, false, "is an x25519 key, not Ed25519"},
		{"signing key as encryption key", pub.SigningKey, true, "is an ed25519 key, not X25519"},
		{"no prefix", strings.TrimPrefix(pub.SigningKey, "ed25519:"), false, "write it ed25519:<base64url>"},
		{"not base64url", "ed25519:!!!", false, "not base64url"},
		{"short", pub.SigningKey[:20], false, "want 32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.enc {
				_, err = federation.ParseEncryptionKey(tt.key)
			} else {
				_, err = federation.ParseSigningKey(tt.key)
			}
			if got := errString(err); tt.want == "" && err != nil || !strings.Contains(got, tt.want) {
				t.Fatalf("parse %q: %v; want %q", tt.key, err, tt.want)
			}
		})
	}
}

func TestValidateSigning(t *testing.T) {
	pub := mustIdentity(t, t.TempDir()).Public()
	for _, tt := range []struct {
		name   string
		modify func(*federation.Config)
		want   []string // problem paths
	}{
		{"pins parse", func(c *federation.Config) {
			c.Gateway.Auth.Peers[0].PublicKey = pub.SigningKey
			c.Federation.Peers[0].PublicKey, c.Federation.Peers[0].EncryptionKey = pub.SigningKey, pub.EncryptionKey
			c.Gateway.Signing.Sign, c.Gateway.Signing.Require = true, true
		}, nil},
		{"bad pins", func(c *federation.Config) {
			c.Gateway.Auth.Peers[0].PublicKey = pub.EncryptionKey
			c.Federation.Peers[0].PublicKey, c.Federation.Peers[0].EncryptionKey = "ed25519:", "x25519:AAAA"
		}, []string{"federation.peers[0].publicKey", "federation.peers[0].encryptionKey", "gateway.auth.peers[0].publicKey"}},
		{"require without a pin", func(c *federation.Config) { c.Gateway.Signing.Require = true },
			[]string{"gateway.auth.peers[0].publicKey"}},
		{"require without peers", func(c *federation.Config) {
			c.Gateway.Signing.Require, c.Gateway.Auth.Peers = true, nil
		}, []string{"gateway.signing.require"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &federation.Config{}
			cfg.Federation.Peers = []federation.PeerConfig{{ID: "w", Name: "W", URL: "ws://127.0.0.1:1", AgentID: "a"}}
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "w-server", Token: "t"}}
			tt.modify(cfg)
			var got []string
			var ve *federation.ValidationError
			if err := cfg.Validate(); errors.As(err, &ve) {
				for _, p := range ve.Problems {
					got = append(got, p.Path)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problem paths (-want +got):\n%s\n%v", diff, cfg.Validate())
			}
		})
	}
}

// TestIdentityCreatedOnce: processes racing to create the identity (a
// gateway starting while `agentfed identity` runs) end up with one.
func TestIdentityCreatedOnce(t *testing.T) {
	dir := t.TempDir()
	keys := make([]federation.PublicIdentity, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			id, err := federation.LoadIdentity(dir)
			if errs[i] = err; err == nil {
				keys[i] = id.Public()
			}
		})
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if diff := cmp.Diff(keys[0], keys[i]); diff != "" {
			t.Fatalf("concurrent LoadIdentity calls disagree (-0 +%d):\n%s", i, diff)
		}
	}
}
