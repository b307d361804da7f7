package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// reference decodes a frame the slow way, with encoding/json.
func reference(data []byte) (*frame, error) {
	if err := checkDepth(data, maxDepth); err != nil {
		return nil, err
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// comparable reports whether encoding/json and scanFrame should agree on
// data: a JSON object whose keys are unique and, where they name a frame
// field, spelled exactly (encoding/json also matches other cases).
func comparable(data []byte) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(data, &keys) != nil {
		return false
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return false // null, which json.Unmarshal takes for a map, is no frame
	}
	seen := map[string]bool{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return false
		}
		k := t.(string)
		lower := strings.ToLower(k)
		for _, f := range []string{"type", "id", "method", "params", "ok", "payload", "error", "event"} {
			if lower == f && k != f {
				return false
			}
		}
		if seen[lower] {
			return false
		}
		seen[lower] = true
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return false
		}
	}
	return true
}

func FuzzScanFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"req","id":"1","method":"m","params":{"a":[1,2.5e3,-0,true,null,"x\"y\u00e9"]}}`,
		`{"type":"res","id":"1","ok":true,"payload":{}}`,
		`{"type":"res","id":"1","ok":false,"error":{"code":"X","message":"m","details":{"k":1}}}`,
		`{"type":"event","event":"tick","payload":{"ts":1},"seq":3}`,
		` { "type" : "req" , "id" : "a\\b" , "method" : "m" } `,
		`{"type":null,"ok":null,"error":null}`, `{}`, `[]`, `"x"`, `{"id":5}`, `{"ok":"yes"}`, `{"a":01}`,
		`{"a":1.}`, `{"a":-}`, `{"a":"\x"}`, `{"a":tru}`, `{"a":1}x`, `{"a":{"b":[}}`, `{"a" 1}`, `{,}`,
		`{"params":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`,
		`{"params":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := scanFrame(data)
		want, wantErr := reference(data)
		if !json.Valid(data) && gotErr == nil {
			t.Fatalf("scanFrame accepted invalid JSON %q", data)
		}
		if !comparable(data) {
			return
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: scanFrame err %v, encoding/json err %v", data, gotErr, wantErr)
		}
		if gotErr == nil {
			if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(frame{})); d != "" {
				t.Fatalf("%q (-encoding/json +scanFrame):\n%s", data, d)
			}
		}
	})
}

var benchFrame = []byte(`{"type":"req","id":"1b","method":"federation.relay","params":{"targetAgent":"echo","message":{"messageId":"3f1c2a9e-6d0b-4c3e-9a51-2b7d8e4f6a10","fromAgent":"operator","fromServer":"main-agent-server","toAgent":"echo","type":"request","content":"Please research the latest developments in quantum computing","correlationId":"research-task-001","priority":"high","timestamp":1795550899321},"timeoutMs":30000}}`)

// BenchmarkFrameDecoding compares the single-pass scanner with the
// encoding/json path it replaced, on a relay request frame.
func BenchmarkFrameDecoding(b *testing.B) {
	b.Run("scanFrame", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := scanFrame(benchFrame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := reference(benchFrame); err != nil {
				b.Fatal(err)
			}
		}
	})
}
