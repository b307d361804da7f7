package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentfed/agentfed/gateway"
)

// decodingMsg decodes itself, as federation's Message does, and unlike
// reflection would: it keeps its JSON as it was given, added to what it
// held (so a repeated key shows whether the existing value was reused).
type decodingMsg struct{ Raw string }

func (m *decodingMsg) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '{' {
		return errors.New("decodingMsg: not an object")
	}
	m.Raw += string(b)
	return nil
}

func (m *decodingMsg) AppendJSON(dst []byte) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	return append(dst, `{"raw":`+`"`+m.Raw+`"}`...), nil
}

// plainResult has no methods: json.Unmarshal decodes it by reflection,
// inside decode too.
type plainResult struct {
	Text  string       `json:"text"`
	N     int          `json:"n,omitempty"`
	List  []string     `json:"list,omitempty"`
	Any   any          `json:"any,omitempty"`
	Inner *plainResult `json:"inner,omitempty"`
}

type testEntry = Entry[decodingMsg, plainResult]

// entrySeeds are what encode writes, what an older build may have written
// (fields in another order, fields this build does not know, fields it
// no longer writes) and malformed or mistyped entries.
var entrySeeds = []string{
	`null`, `{}`, ``, `[]`, `"x"`, `1`, `{} x`, `{"messageId":"a"`, `{"messageId":"a",}`, `{"a" 1}`, `{"a":01}`,
	`{"messageId":null,"kind":null,"state":null,"attempts":null,"message":null,"result":null,"lastError":null,"requiredCapabilities":null}`,
	`{"MESSAGEID":"a","ſtate":"queued","PeerId":"p","TTLMS":5,"message\u0049d":"b"}`,
	`{"state":"queued","state":"dead","attempts":1,"attempts":2}`,
	`{"message":{"a":1},"message":{"b":2},"result":{"text":"t","n":1},"result":{"list":["x"]}}`,
	`{"message":{"a":1},"message":null}`, `{"result":{"text":"t"},"result":null}`,
	`{"requiredCapabilities":["a","b"],"requiredCapabilities":[null]}`, `{"requiredCapabilities":[]}`,
	`{"requiredCapabilities":[null,"x",null]}`, `{"requiredCapabilities":["a",1]}`, `{"requiredCapabilities":{}}`,
	`{"attempts":1.5}`, `{"attempts":1e3}`, `{"attempts":"1"}`, `{"attempts":-0}`, `{"createdAt":9223372036854775807}`,
	`{"createdAt":9223372036854775808}`, `{"createdAt":-9223372036854775808}`, `{"ttlMs":true}`,
	`{"state":5}`, `{"kind":["send"]}`, `{"stream":{}}`, `{"message":"x"}`, `{"message":[1]}`, `{"result":"x"}`,
	`{"result":{"n":"1"}}`, `{"lastError":{"code":"TIMEOUT","message":"m","details":{"a":[1,null]},"retryable":true,"retryAfterMs":5}}`,
	`{"lastError":"x"}`, `{"lastError":{"code":1}}`, `{"unknown":{"deep":[1,{"x":null}],"more":"\ud800"},"messageId":"m"}`,
	"{\"messageId\":\"\xff\\ud800\\ud83d\\ude00 \\u00e9 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
	`{"peerId":"a\u0000b","strategy":"\u2028"}`, ` {"messageId" : "a" , "message" : { "x" : [ 1 , 2 ] } } `,
	`{"message":{"x":1},"unknown":[}`, `{"message":{"x":1}`, `{"message":{}`, `{"kind":"send","kind":"broadcast"}`,
}

// encodedSeeds are encode's output for entries with every field set, none,
// and ones that need escaping.
func encodedSeeds(t testing.TB) []string {
	odd := "<a&b> \"q\" \\ \u2028 \x01 \xff é"
	entries := []*testEntry{
		{MessageID: "0190-" + odd, Kind: "delegate", PeerID: "p" + odd, RequiredCapabilities: []string{"a", odd},
			Strategy: "round-robin", State: StateFailed, Attempts: 3, CreatedAt: 1_700_000_000_123,
			ExpiresAt: 1_700_000_060_000, NextAttemptAt: -1, FinishedAt: 1_700_000_001_000,
			LastError: &gateway.Error{Code: gateway.CodeTimeout, Message: "no answer " + odd, Details: map[string]any{"n": 1.5},
				Retryable: true, RetryAfterMs: 5},
			Result: &plainResult{Text: odd, N: -7, List: []string{"x", ""}, Any: []any{"y", nil, true, map[string]any{}},
				Inner: &plainResult{Text: "in"}},
			Message: &decodingMsg{Raw: "m"}, TimeoutMs: 5000, TTLMs: 60000, PeerAttempts: 2, Stream: "S" + odd},
		{},
		{MessageID: "m", Kind: "send", State: StateQueued, Message: &decodingMsg{}, RequiredCapabilities: []string{}},
	}
	var seeds []string
	for _, e := range entries {
		b, err := e.encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, string(b))
	}
	return seeds
}

// checkDecode decodes data with decodeEntry and with json.Unmarshal and
// fails unless both refuse it or both decode the same entry; it also
// checks decodeHeader against decodeEntry. It returns the entry, nil when
// refused.
func checkDecode(t *testing.T, data []byte) *testEntry {
	t.Helper()
	var want testEntry
	werr := json.Unmarshal(data, &want)
	input := bytes.Clone(data)
	got, err := decodeEntry[decodingMsg, plainResult](input)
	clear(input) // what was decoded must not share the input's memory
	if (err == nil) != (werr == nil) {
		t.Fatalf("decode %q:\ndecodeEntry    %+v, %v\njson.Unmarshal %+v, %v", data, got, err, want, werr)
	}
	if err != nil {
		return nil
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Fatalf("decode %q: decodeEntry differs from json.Unmarshal (-want +got):\n%s", data, diff)
	}
	head, err := decodeHeader[decodingMsg, plainResult](data)
	if err != nil {
		t.Fatalf("decodeHeader %q: %v, where decodeEntry decoded it", data, err)
	}
	bare := *got
	bare.Message, bare.Result, bare.LastError = nil, nil, nil
	if diff := cmp.Diff(&bare, head); diff != "" {
		t.Fatalf("decodeHeader %q differs from decodeEntry without the bodies (-want +got):\n%s", data, diff)
	}
	return got
}

// TestDecodeIsJSONUnmarshal: decodeEntry decodes what json.Unmarshal
// decodes, and refuses what it refuses, for the encoder's output, for
// entries older builds wrote and for odd or wrong inputs.
func TestDecodeIsJSONUnmarshal(t *testing.T) {
	for _, seed := range append(encodedSeeds(t), entrySeeds...) {
		checkDecode(t, []byte(seed))
	}
	// The encoder's output comes back as the entry encoded.
	e := &Entry[decodingMsg, string]{MessageID: "m", Kind: "send", State: StateDelivered, Attempts: 2, Result: new("ok"),
		Message: &decodingMsg{Raw: "hi"}}
	b, err := e.encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEntry[decodingMsg, string](b)
	if err != nil {
		t.Fatal(err)
	}
	e.Message.Raw = `{"raw":"hi"}` // as decodingMsg decodes itself
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestDecodeErrorNamesField: a mistyped field is refused with its name.
func TestDecodeErrorNamesField(t *testing.T) {
	for _, tt := range []struct{ data, want string }{
		{`{"attempts":"3"}`, "attempts: jsonx: expected a number, found a string at byte 12"},
		{`{"requiredCapabilities":["a",2]}`, "requiredCapabilities: jsonx: expected a string, found a number at byte 29"},
		{`{"message":[1]}`, "message: decodingMsg: not an object"},
		{`{"ttlMs":1.5}`, "ttlMs: jsonx: number 1.5 is not an int64 at byte 9"},
	} {
		_, err := decodeEntry[decodingMsg, plainResult]([]byte(tt.data))
		if err == nil || err.Error() != tt.want {
			t.Errorf("decode %s: %v; want %q", tt.data, err, tt.want)
		}
	}
}

// FuzzEntryDecode holds decodeEntry and decodeHeader to json.Unmarshal
// over arbitrary input.
func FuzzEntryDecode(f *testing.F) {
	for _, seed := range append(encodedSeeds(f), entrySeeds...) {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
	})
}

// BenchmarkOutboxEntryDecode compares decodeEntry with json.Unmarshal on
// a queued entry as a durable send writes it (a message that decodes
// itself), and the header alone.
func BenchmarkOutboxEntryDecode(b *testing.B) {
	e := &Entry[decodingMsg, plainResult]{MessageID: "019ae5c4-7d21-7c3e-9a51-2b7d8e4f6a10", Kind: "send",
		PeerID: "echo@site-r", State: StateQueued, CreatedAt: 1_795_550_899_321, ExpiresAt: 1_795_550_959_321,
		Message:   &decodingMsg{Raw: "Please research the latest developments in quantum computing, with a context"},
		TimeoutMs: 30000, TTLMs: 60000, Stream: "AF_DURABLE_site-r"}
	data, err := e.encode(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e testEntry
			if err := json.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeEntry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeEntry[decodingMsg, plainResult](data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeHeader", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeHeader[decodingMsg, plainResult](data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
