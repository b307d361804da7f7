package outbox

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/jsonx"
)

// appendingMsg encodes itself with AppendJSON, as federation's Message
// does.
type appendingMsg struct {
	Text string `json:"text"`
}

func (m *appendingMsg) AppendJSON(dst []byte) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	b, err := json.Marshal(m.Text)
	return append(append(append(dst, `{"text":`...), b...), '}'), err
}

// TestEncodeIsJSONMarshal: the entry encoder writes what json.Marshal
// writes, for an entry with every field set (the test fails when a field
// is added to Entry and not to encode), one with none, and strings that
// need escaping; a message that appends itself, or one that does not.
func TestEncodeIsJSONMarshal(t *testing.T) {
	odd := "<a&b> \"q\" \\ \u2028 \x01 \xff é"
	full := Entry[appendingMsg, string]{MessageID: "0190-" + odd, Kind: "delegate", PeerID: "p" + odd,
		RequiredCapabilities: []string{"a", odd}, Strategy: "round-robin", State: StateFailed, Attempts: 3,
		CreatedAt: 1_700_000_000_123, ExpiresAt: 1_700_000_060_000, NextAttemptAt: -1, FinishedAt: 1_700_000_001_000,
		LastError: gateway.NewError(gateway.CodeTimeout, "no answer "+odd), Result: new("the answer " + odd),
		Message: &appendingMsg{Text: odd}, TimeoutMs: 5000, TTLMs: 60000, PeerAttempts: 2, Stream: "S" + odd}
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the full entry leaves %s unset; set it, and encode it in encode", v.Type().Field(i).Name)
		}
	}
	check := func(name string, e any, encode func() ([]byte, error)) {
		t.Helper()
		got, err := encode()
		want, werr := json.Marshal(e)
		if err != nil || werr != nil || string(got) != string(want) {
			t.Errorf("%s:\nencode       %s (%v)\njson.Marshal %s (%v)", name, got, err, want, werr)
		}
	}
	check("full", &full, func() ([]byte, error) { return full.encode(nil) })
	check("full, AppendResult", &full, func() ([]byte, error) {
		return full.encode(func(dst []byte, r *string) ([]byte, error) { return jsonx.AppendString(dst, *r), nil })
	})
	empty := Entry[appendingMsg, string]{}
	check("empty", &empty, func() ([]byte, error) { return empty.encode(nil) })
	plain := Entry[string, int]{MessageID: "m", Kind: "send", State: StateQueued, Message: new(odd), Result: new(7),
		RequiredCapabilities: []string{}}
	check("plain", &plain, func() ([]byte, error) { return plain.encode(nil) })
}
