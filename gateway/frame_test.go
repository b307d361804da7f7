package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    *frame // nil: not checked
		wantErr string // "" for a good frame
	}{
		{
			name: "req",
			data: `{"type":"req","id":"1","method":"echo","params":{"a":1}}`,
			want: &frame{Type: FrameReq, ID: "1", Method: "echo", Params: json.RawMessage(`{"a":1}`)},
		},
		{
			name: "res ok",
			data: `{"type":"res","id":"1","ok":true,"payload":{}}`,
			want: &frame{Type: FrameRes, ID: "1", OK: true, Payload: json.RawMessage(`{}`)},
		},
		{
			name: "res error",
			data: `{"type":"res","id":"1","ok":false,"error":{"code":"TIMEOUT","message":"too slow","retryable":true}}`,
			want: &frame{Type: FrameRes, ID: "1", Error: &Error{Code: CodeTimeout, Message: "too slow", Retryable: true}},
		},
		{
			name: "event",
			data: `{"type":"event","event":"tick","payload":{"ts":1},"seq":3}`,
			want: &frame{Type: FrameEvent, Event: "tick", Payload: json.RawMessage(`{"ts":1}`)},
		},
		{name: "unknown fields are ignored", data: `{"type":"event","event":"tick","extra":[1,2]}`},
		{name: "id at the limit", data: `{"type":"req","id":"` + strings.Repeat("i", maxIDLen) + `","method":"m"}`},
		{name: "method at the limit", data: `{"type":"req","id":"1","method":"` + strings.Repeat("m", maxMethodLen) + `"}`},
		{name: "empty", data: ``, wantErr: "not a JSON object"},
		{name: "not JSON", data: `{"type":`, wantErr: "not a JSON object"},
		{name: "array", data: `[1]`, wantErr: "not a JSON object"},
		{name: "null", data: `null`, wantErr: "not a JSON object"},
		{name: "type of the wrong kind", data: `{"type":1}`, wantErr: "not a JSON object"},
		{name: "unknown type", data: `{"type":"call"}`, wantErr: `frame type "call" is not`},
		{name: "req without id", data: `{"type":"req","method":"m"}`, wantErr: "needs an id"},
		{name: "id too long", data: `{"type":"req","id":"` + strings.Repeat("i", maxIDLen+1) + `","method":"m"}`, wantErr: "needs an id"},
		{name: "req without method", data: `{"type":"req","id":"1"}`, wantErr: "needs a method"},
		{name: "method too long", data: `{"type":"req","id":"1","method":"` + strings.Repeat("m", maxMethodLen+1) + `"}`, wantErr: "needs a method"},
		{name: "res without id", data: `{"type":"res","ok":true}`, wantErr: "res frame has no id"},
		{name: "event without name", data: `{"type":"event"}`, wantErr: "no event name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := decodeFrame([]byte(tt.data))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("decodeFrame: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("decodeFrame error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if tt.want != nil {
				if diff := cmp.Diff(tt.want, f, cmpopts.IgnoreUnexported(frame{})); diff != "" {
					t.Errorf("frame mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		lo, hi, want int
	}{
		{4, 4, 4},
		{3, 4, 4},
		{3, 3, 3},
		{1, 10, 4},
		{0, 4, 4},
		{5, 6, 0},
		{1, 2, 0},
		{4, 3, 0}, // an empty range
		{0, 0, 0},
		{-5, -1, 0},
	}
	for _, tt := range tests {
		if got := negotiate(tt.lo, tt.hi); got != tt.want {
			t.Errorf("negotiate(%d, %d) = %d, want %d", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},  // é is 2 bytes: do not split it
		{"a✓b", 3, "a"}, // ✓ is 3 bytes
		{"a✓b", 4, "a✓"},
		{"é", 1, ""},
	}
	for _, tt := range tests {
		if got := truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// FuzzDecodeFrame checks that decodeFrame never panics, that what it
// accepts has the shape the rest of the package relies on, and that an
// accepted frame survives a round trip through its wire struct.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"req","id":"1","method":"connect","params":{"minProtocol":3,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"go","mode":"cli"}}}`,
		`{"type":"req","id":"2","method":"federation.health"}`,
		`{"type":"res","id":"1","ok":true,"payload":{"type":"hello-ok","protocol":4}}`,
		`{"type":"res","id":"1","ok":false,"error":{"code":"UNAUTHORIZED","message":"no","details":{"code":"X"},"retryAfterMs":5}}`,
		`{"type":"event","event":"connect.challenge","payload":{"nonce":"n","ts":1},"seq":1}`,
		`{"type":"event","event":"tick","seq":9007199254740993}`,
		`{"type":"req","id":"","method":"m"}`,
		`{"type":"req","id":"1","method":""}`,
		`{"type":"res"}`,
		`{"type":"event"}`,
		`{"type":"req","type":"res","id":"1"}`,
		`{"type":"req","id":"1","method":"m","params":null}`,
		`{"type":"req","id":"\u00e9","method":"\ud800"}`,
		`{"TYPE":"req","ID":"1","Method":"m"}`,
		`{"type":"res","id":"1","error":"not an object"}`,
		`{"type":"res","id":"1","error":{"details":[[[[[]]]]]}}`,
		`[]`, `null`, `""`, `0`, `{`, ``, "\xff\xfe",
		strings.Repeat(`[`, 20000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			if err.Error() == "" {
				t.Error("decodeFrame returned an empty error message")
			}
			return
		}
		if fr == nil {
			t.Fatal("decodeFrame accepted a frame but returned nil")
		}
		switch fr.Type {
		case FrameReq:
			if fr.ID == "" || len(fr.ID) > maxIDLen || fr.Method == "" || len(fr.Method) > maxMethodLen {
				t.Errorf("accepted req with id %q method %q", fr.ID, fr.Method)
			}
		case FrameRes:
			if fr.ID == "" {
				t.Error("accepted res without id")
			}
		case FrameEvent:
			if fr.Event == "" {
				t.Error("accepted event without name")
			}
		default:
			t.Errorf("accepted frame of type %q", fr.Type)
		}
		if !json.Valid(data) {
			t.Errorf("accepted invalid JSON %q", data)
		}
		// What this package would send for the frame decodes to the same
		// frame: the wire structs and the decoder agree.
		var out any
		switch fr.Type {
		case FrameReq:
			out = Request{Type: fr.Type, ID: fr.ID, Method: fr.Method, Params: fr.Params}
		case FrameRes:
			out = Response{Type: fr.Type, ID: fr.ID, OK: fr.OK, Payload: fr.Payload, Error: fr.Error}
		case FrameEvent:
			out = Event{Type: fr.Type, Event: fr.Event, Payload: fr.Payload}
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", out, err)
		}
		again, err := decodeFrame(b)
		if err != nil {
			t.Fatalf("re-encoded frame %s rejected: %v", b, err)
		}
		if again.Type != fr.Type || again.ID != fr.ID || again.Method != fr.Method || again.Event != fr.Event {
			t.Errorf("round trip changed the frame:\n got %+v\nwant %+v", again, fr)
		}
	})
}

func TestCheckDepth(t *testing.T) {
	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	for _, tt := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"flat", `{"type":"req","id":"1","method":"m","params":{"a":[1,2,{"b":3}]}}`, true},
		{"64 levels", strings.Repeat("[", 64) + strings.Repeat("]", 64), true},
		{"65 levels", deep, false},
		{"brackets inside strings do not count", `{"s":"` + strings.Repeat("[", 100) + `"}`, true},
		{"escaped quote keeps the string open", `{"s":"\"` + strings.Repeat("{", 100) + `"}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkDepth([]byte(tt.in), maxDepth); (err == nil) != tt.ok {
				t.Fatalf("checkDepth = %v; want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := decodeFrame([]byte(`{"type":"req","id":"1","method":"m","params":` + deep + `}`)); err == nil {
		t.Fatal("decodeFrame accepted a frame nested 65 levels deep")
	}
}

// TestAppendFramesMatchEncodingJSON: the hand-built frames decode to the
// same values encoding/json produces, for ids that need escaping too.
func TestAppendFramesMatchEncodingJSON(t *testing.T) {
	for _, empty := range []json.RawMessage{nil, {}} {
		for _, b := range [][]byte{appendResponse(nil, "1", empty), appendRequest(nil, "1", "m", empty)} {
			if _, err := decodeFrame(b); err != nil {
				t.Fatalf("frame with an empty payload is invalid: %s: %v", b, err)
			}
		}
	}
	for _, id := range []string{"1", "a-b_c", `q"uote`, "back\\slash", "ctl\x01", "<tag>&", "ünï", "\u2028"} {
		payload := json.RawMessage(`{"x":[1,"two",{"three":null}]}`)
		for name, got := range map[string][]byte{
			"res": appendResponse(nil, id, payload),
			"req": appendRequest(nil, id, "federation.relay", payload),
		} {
			f, err := decodeFrame(got)
			if err != nil {
				t.Fatalf("%s frame for id %q: %v: %s", name, id, err, got)
			}
			if f.ID != id || (name == "res" && (!f.OK || string(f.Payload) != string(payload))) || (name == "req" && (f.Method != "federation.relay" || string(f.Params) != string(payload))) {
				t.Fatalf("%s frame for id %q decoded to %+v", name, id, f)
			}
		}
	}
}

// checkDepth is the plain nesting check scanFrame replaced; it stays as
// the reference that scanFrame is compared with.
func checkDepth(data []byte, limit int) error {
	depth, inString, escaped := 0, false, false
	for _, b := range data {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch b {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth++; depth > limit {
				return fmt.Errorf("frame nests JSON deeper than %d levels", limit)
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return nil
}
