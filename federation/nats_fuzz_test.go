package federation

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The fuzzers' signing key and clock: fixed, so that a crasher in
// testdata replays.
var (
	fuzzNATSKey = ed25519.NewKeyFromSeed([]byte("agentfed nats directory fuzzing!"))
	fuzzNATSNow = time.UnixMilli(1_780_000_000_000)
)

func fuzzNATSSigningKey() string {
	return signingKeyPrefix + base64.RawURLEncoding.EncodeToString(fuzzNATSKey.Public().(ed25519.PublicKey))
}

// fuzzNATSSigned is inner signed by the fuzzers' key as a gateway stores
// its entry; inner as it is when it is not JSON.
func fuzzNATSSigned(inner []byte) []byte {
	b, err := json.Marshal(natsSignedEntry{Entry: inner, Signature: b64.EncodeToString(ed25519.Sign(fuzzNATSKey, inner))})
	if err != nil {
		return inner
	}
	return b
}

func decodeFuzzNATSEntry(server string, data []byte, pin string) (*natsEntry, error) {
	window := 5 * time.Minute
	return decodeNATSEntry(server, data, pin, fuzzNATSNow, window+natsPresenceTTL, window)
}

// FuzzNATSEntry holds the directory's decoder to its promises for whatever
// another client puts in AF_REGISTRY, signed (sign: as the entry's JSON) or
// not: no panic; a refusal quotes a bounded part of it; an entry taken
// names its key's serverId and stays within every bound (agents, their ids
// usable as subject tokens and peer ids, capabilities, descriptions); and,
// signed again, it is taken again unchanged.
func FuzzNATSEntry(f *testing.F) {
	real := func(agents ...natsAgent) []byte {
		b, err := json.Marshal(natsEntry{ServerID: "site-a", Version: Version, SigningKey: fuzzNATSSigningKey(), Agents: agents, IssuedAt: fuzzNATSNow.UnixMilli()})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	research := natsAgent{ID: "research", Capabilities: []string{"web-search", "summarize@2.1.0"}, Description: "finds things"}
	f.Add("site-a", real(research), true)
	f.Add("site-a", real(research, natsAgent{ID: "data", Capabilities: []string{}}), true)
	f.Add("site-a", real(), true)
	f.Add("site-a", fuzzNATSSigned(real(research)), false)
	f.Add("site-b", real(research), true)
	f.Add("site-a", []byte(`{"serverId":"site-a","agents":[{"id":"a.b"},{"id":"x@y"}],"issuedAt":1}`), true)
	f.Fuzz(func(t *testing.T, server string, inner []byte, sign bool) {
		data := inner
		if sign {
			data = fuzzNATSSigned(inner)
		}
		e, err := decodeFuzzNATSEntry(server, data, "")
		if err != nil {
			if len(err.Error()) > 512 {
				t.Fatalf("the refusal is %d bytes long: %.100s...", len(err.Error()), err)
			}
			return
		}
		if e.ServerID != server || len(data) > natsEntryMaxBytes || len(e.Agents) > natsMaxGateway {
			t.Fatalf("took an entry of %d bytes naming %q under %q, with %d agents", len(data), e.ServerID, server, len(e.Agents))
		}
		for _, a := range e.Agents {
			if !validIdent(a.ID) || strings.ContainsAny(a.ID, ".@") || len(a.Capabilities) > maxCapabilities || len(a.Description) > maxDescriptionBytes {
				t.Fatalf("took agent %q with %d capabilities and a %d-byte description", a.ID, len(a.Capabilities), len(a.Description))
			}
			for _, c := range a.Capabilities {
				if len(c) > maxCapabilityBytes {
					t.Fatalf("took a %d-byte capability", len(c))
				}
			}
		}
		again := *e
		again.SigningKey = fuzzNATSSigningKey()
		b, err := json.Marshal(&again)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFuzzNATSEntry(server, fuzzNATSSigned(b), again.SigningKey)
		if err != nil {
			t.Fatalf("the entry taken, encoded and signed again, is refused: %v", err)
		}
		if diff := cmp.Diff(&again, got); diff != "" {
			t.Fatalf("the entry taken, encoded and decoded again (-want +got):\n%s", diff)
		}
	})
}

// TestNATSEntryBounds: an entry is refused over natsEntryMaxBytes by the
// gateway itself, whatever the bucket's configuration let through, and
// one signed by another key than the pinned one is refused.
func TestNATSEntryBounds(t *testing.T) {
	pad := strings.Repeat("d", natsEntryMaxBytes)
	b, err := json.Marshal(natsEntry{ServerID: "site-a", SigningKey: fuzzNATSSigningKey(), Agents: []natsAgent{{ID: "a", Description: pad}}, IssuedAt: fuzzNATSNow.UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeFuzzNATSEntry("site-a", fuzzNATSSigned(b), ""); err == nil || !strings.Contains(err.Error(), "over the 1048576-byte limit") {
		t.Errorf("an entry of %d bytes: %v; want refused over the limit", len(b), err)
	}
	b, err = json.Marshal(natsEntry{ServerID: "site-a", SigningKey: fuzzNATSSigningKey(), IssuedAt: fuzzNATSNow.UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	pin := signingKeyPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, ed25519.PublicKeySize))
	if _, err := decodeFuzzNATSEntry("site-a", fuzzNATSSigned(b), pin); err == nil || !strings.Contains(err.Error(), "not by the publicKey pinned") {
		t.Errorf("an entry not signed by the pinned key: %v; want refused", err)
	}
}

// FuzzNATSContext holds the synced context's decoding of what the site's
// bucket holds to its promises: a key taken is the one key of a sender
// and session that are identifiers; a value taken is within the limit and,
// encoded again, decodes to the same context; nothing panics.
func FuzzNATSContext(f *testing.F) {
	f.Add("site-s.s1", []byte(`{"data":{"project":"p-1","phase":"analysis","files":["a.csv"]},"updatedAt":1780000000000}`))
	f.Add("user_40host_3A7000.default", []byte(`{"data":{"n":1.5,"nested":{"deep":[null,true,"x"]}},"updatedAt":1}`))
	f.Add("site-s.a_2Eb_5Fc", []byte(`{"data":null}`))
	f.Add("site_2Ds.x", []byte(`not json`))
	f.Add(".s1", []byte(`{"data":{"k":"\u00e9\ud800<>"}}`))
	const limit = 4096
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		if ck, ok := natsContextKeyOf(key); ok {
			server, session, _ := strings.Cut(ck, "\x00")
			if !validIdent(server) || !validIdent(session) || natsContextKey(server, session) != key {
				t.Fatalf("key %q taken as sender %q, session %q", key, server, session)
			}
		}
		v, err := decodeNATSContext(value, limit)
		if err != nil {
			if len(err.Error()) > 512 {
				t.Fatalf("the refusal is %d bytes long", len(err.Error()))
			}
			return
		}
		if len(value) > limit {
			t.Fatalf("took a %d-byte value over the %d-byte limit", len(value), limit)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeNATSContext(b, len(b))
		if err != nil {
			t.Fatalf("the context taken, encoded again, is refused: %v", err)
		}
		if diff := cmp.Diff(v, got); diff != "" {
			t.Fatalf("the context taken, encoded and decoded again (-want +got):\n%s", diff)
		}
	})
}
