package federation_test

// The hand-written codec (codec.go) against encoding/json: the same bytes
// out and the same values in, on tables of edge cases and under fuzzing.
// Run the fuzzers with
//
//	go test -run '^$' -fuzz FuzzMessageJSON -fuzztime 60s ./federation/
//
// and likewise FuzzRelayParamsJSON and FuzzMessageEncode.

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/google/go-cmp/cmp"
)

// plainMessage is Message without its methods, so encoding/json handles
// it with reflection: the reference the codec must match.
type plainMessage federation.Message

// plainRelayParams is RelayParams without methods, and with a plain
// message. TestCodecCoversEveryField checks that it keeps up with
// RelayParams.
type plainRelayParams struct {
	TargetAgent  string        `json:"targetAgent"`
	Message      *plainMessage `json:"message"`
	TimeoutMs    int64         `json:"timeoutMs,omitempty"`
	Durable      bool          `json:"durable,omitempty"`
	Traceparent  string        `json:"traceparent,omitempty"`
	TargetServer string        `json:"targetServer,omitempty"`
	Route        []string      `json:"route,omitempty"`
	OriginKey    string        `json:"originKey,omitempty"`
}

func toPlain(p *federation.RelayParams) *plainRelayParams {
	pp := &plainRelayParams{TargetAgent: p.TargetAgent, TimeoutMs: p.TimeoutMs, Durable: p.Durable, Traceparent: p.Traceparent,
		TargetServer: p.TargetServer, Route: p.Route, OriginKey: p.OriginKey}
	if p.Message != nil {
		pp.Message = (*plainMessage)(p.Message)
	}
	return pp
}

func fromPlain(pp *plainRelayParams) *federation.RelayParams {
	return &federation.RelayParams{TargetAgent: pp.TargetAgent, Message: (*federation.Message)(pp.Message),
		TimeoutMs: pp.TimeoutMs, Durable: pp.Durable, Traceparent: pp.Traceparent,
		TargetServer: pp.TargetServer, Route: pp.Route, OriginKey: pp.OriginKey}
}

// clone deep-copies a message through encoding/json's reflection, as the
// starting state of a decode.
func clone(m *federation.Message) *federation.Message {
	if m == nil {
		return nil
	}
	b, err := json.Marshal((*plainMessage)(m))
	if err != nil {
		panic(err)
	}
	var c plainMessage
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return (*federation.Message)(&c)
}

// filled is a message with every field set, a starting state that shows
// what a decode keeps, replaces and merges.
func filled() *federation.Message {
	return &federation.Message{MessageID: "m-0", FromAgent: "fa", FromServer: "fs", ToAgent: "ta",
		Type: federation.TypeRequest, Content: "old", Context: map[string]any{"keep": "k", "over": 1.0},
		CorrelationID: "c-0", Priority: federation.PriorityHigh, Timestamp: 99,
		Sealed:    &federation.Sealed{Suite: "s", To: "to", Enc: "ek", ReplyKey: "rk", Ciphertext: "ct"},
		Signature: "sig"}
}

// withPath is filled with the given path.
func withPath(path ...string) *federation.Message {
	m := filled()
	m.Path = path
	return m
}

// decodeMessage decodes data into a copy of start with the codec and with
// encoding/json, and fails unless they agree. It returns the codec's
// result and error.
func decodeMessage(t *testing.T, start *federation.Message, data []byte) (*federation.Message, error) {
	t.Helper()
	got, want := clone(start), clone(start)
	if got == nil {
		got, want = new(federation.Message), new(federation.Message)
	}
	err := got.UnmarshalJSON(data)
	wantErr := json.Unmarshal(data, (*plainMessage)(want))
	agree(t, data, err, wantErr, want, got)
	return got, err
}

func decodeRelayParams(t *testing.T, start *federation.RelayParams, data []byte) (*federation.RelayParams, error) {
	t.Helper()
	got := &federation.RelayParams{TargetAgent: start.TargetAgent, Message: clone(start.Message), TimeoutMs: start.TimeoutMs, Durable: start.Durable, Traceparent: start.Traceparent}
	want := toPlain(&federation.RelayParams{TargetAgent: start.TargetAgent, Message: clone(start.Message), TimeoutMs: start.TimeoutMs, Durable: start.Durable, Traceparent: start.Traceparent})
	err := got.UnmarshalJSON(data)
	wantErr := json.Unmarshal(data, want)
	agree(t, data, err, wantErr, fromPlain(want), got)
	return got, err
}

// agree fails when the codec and encoding/json disagree on data: the
// codec accepting malformed JSON, one of them failing alone, or different
// values.
func agree(t *testing.T, data []byte, err, wantErr error, want, got any) {
	t.Helper()
	if !json.Valid(data) {
		if err == nil {
			t.Fatalf("UnmarshalJSON accepted malformed JSON %q", data)
		}
		return
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: UnmarshalJSON error %v, encoding/json error %v", data, err, wantErr)
	}
	if err == nil {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q (-encoding/json +UnmarshalJSON):\n%s", data, diff)
		}
	}
}

// checkEncode fails unless the codec encodes m as encoding/json does,
// inside RelayParams too, and returns the encoding.
func checkEncode(t *testing.T, m *federation.Message) []byte {
	t.Helper()
	want, wantErr := json.Marshal((*plainMessage)(m))
	got, err := m.AppendJSON([]byte("prefix"))
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("AppendJSON error %v, encoding/json error %v, for %#v", err, wantErr, m)
	case err != nil && string(got) != "prefix":
		t.Fatalf("AppendJSON failed but changed dst to %q", got)
	case err != nil:
		return nil
	case string(got) != "prefix"+string(want):
		t.Fatalf("AppendJSON\n got %s\nwant %s", got[len("prefix"):], want)
	}
	if viaMethod, err := json.Marshal(m); err != nil || string(viaMethod) != string(want) {
		t.Fatalf("json.Marshal through MarshalJSON = %s, %v; want %s", viaMethod, err, want)
	}
	for _, p := range []*federation.RelayParams{
		{TargetAgent: "t<&>", Message: m, TimeoutMs: -5, Durable: true},
		{Message: m},
	} {
		want, _ := json.Marshal(toPlain(p))
		if got, err := p.MarshalJSON(); err != nil || string(got) != string(want) {
			t.Fatalf("RelayParams.MarshalJSON\n got %s, %v\nwant %s", got, err, want)
		}
	}
	return want
}

func TestMessageEncode(t *testing.T) {
	tests := []struct {
		name string
		m    *federation.Message
	}{
		{"zero", &federation.Message{}},
		{"filled", filled()},
		{"new message", federation.NewMessage(federation.TypeRequest, "main", "op", "echo", "hello")},
		{"escapes", &federation.Message{MessageID: "\"\\/\b\f\n\r\t\x00\x1f\x7f", FromAgent: "<script>&</script>",
			FromServer: "\u2028\u2029", ToAgent: "é日本😀", Content: "bad \xff\xc3( utf-8 \xed\xa0\x80", Signature: "\ufffd"}},
		{"empty context", &federation.Message{Context: map[string]any{}}},
		{"nil in context", &federation.Message{Context: map[string]any{"n": nil}}},
		{"context values", &federation.Message{Context: map[string]any{
			"floats": []any{0.0, math.Copysign(0, -1), 1e-6, 1e-7, 1e20, 1e21, -1.5e300, 5e-324, 0.1},
			"ints":   []any{1, int64(math.MinInt64), uint64(math.MaxUint64), int8(-1)},
			"misc":   []any{true, false, nil, "s", json.Number("1.5e3"), json.RawMessage(` {"a" : 1} `)},
			"nested": map[string]any{"b": map[string]any{"c": []any{}}, "a": map[string]any{}},
			"typed":  []any{[]string{"x"}, map[string]int{"b": 2, "a": 1}, float32(0.1)},
		}}},
		{"NaN in context", &federation.Message{Context: map[string]any{"x": math.NaN()}}},
		{"bad number in context", &federation.Message{Context: map[string]any{"x": json.Number("1.")}}},
		{"negative timestamp", &federation.Message{Timestamp: math.MinInt64}},
		{"empty sealed", &federation.Message{Sealed: &federation.Sealed{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkEncode(t, tt.m) })
	}
	t.Run("nil", func(t *testing.T) {
		var m *federation.Message
		var p *federation.RelayParams
		for _, got := range [][]byte{must(m.MarshalJSON()), must(p.MarshalJSON()),
			must((&federation.RelayParams{}).MarshalJSON())} {
			want := "null"
			if len(got) > 4 {
				want = `{"targetAgent":"","message":null}`
			}
			if string(got) != want {
				t.Errorf("got %s, want %s", got, want)
			}
		}
	})
}

func TestMessageDecode(t *testing.T) {
	tests := []struct {
		name    string
		start   *federation.Message
		in      string
		wantErr bool
	}{
		{name: "full", in: string(must(json.Marshal((*plainMessage)(filled()))))},
		{name: "null is a no-op", start: filled(), in: ` null `},
		{name: "empty object keeps everything", start: filled(), in: `{}`},
		{name: "null fields keep their values", start: filled(),
			in: `{"messageId":null,"type":null,"content":null,"timestamp":null,"signature":null}`},
		{name: "null context and sealed clear them", start: filled(), in: `{"context":null,"sealed":null}`},
		{name: "context adds to the existing map", start: filled(), in: `{"context":{"over":2,"new":[1,"x",null]}}`},
		{name: "repeated context merges", in: `{"context":{"a":1,"b":2},"context":{"b":3,"c":{}}}`},
		{name: "empty context is an empty map", in: `{"context":{}}`},
		{name: "sealed fills the existing one", start: filled(), in: `{"sealed":{"enc":"n2","extra":1}}`},
		{name: "repeated sealed merges", in: `{"sealed":{"to":"a"},"sealed":{"enc":"b"}}`},
		{name: "last duplicate wins", in: `{"messageId":"a","messageId":"b","timestamp":1,"timestamp":2}`},
		{name: "keys match regardless of case", in: `{"MESSAGEID":"a","fromagent":"b","FromServer":"c","TOAGENT":"d","Type":"e",
			"CONTENT":"f","Context":{"K":1},"CORRELATIONID":"g","Priority":"h","TimeStamp":5,"SEALED":{"TO":"x","EPHEMERALKEY":"y"},"Signature":"i"}`},
		{name: "exact and folded keys are one field", in: `{"messageId":"a","MessageId":"b"}`},
		{name: "hops and path", in: `{"hops":2,"path":["gw-c","gw-a","gw-b"]}`},
		{name: "path replaces the existing one, null elements keep theirs", start: withPath("x", "y", "z"), in: `{"path":[null,"b"]}`},
		{name: "empty path is empty, not nil", start: withPath("x"), in: `{"path":[]}`},
		{name: "null path clears it", start: withPath("x"), in: `{"path":null}`},
		{name: "path longer than the existing one", start: withPath("x"), in: `{"path":["a",null,"c"]}`},
		{name: "path given a string", in: `{"path":"gw-a"}`, wantErr: true},
		{name: "path element given a number", in: `{"path":["a",1]}`, wantErr: true},
		{name: "unicode folding", in: `{"meſſageId":"long s","ſignature":"s"}`},
		{name: "escaped keys", in: `{"message\u0049d":"a","\u0063ontent":"b"}`},
		{name: "unknown keys skipped", in: `{"x":{"y":[1,{"z":null}],"w":"\u00e9"},"messageId":"a","":1,"\ud800":true}`},
		{name: "escapes in values", in: `{"content":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud83d\u0041\ude00","messageId":"\u003c\u2028"}`},
		{name: "invalid UTF-8 replaced", in: "{\"content\":\"a\xffb\xc3\",\"\xff\":1}"},
		{name: "timestamp limits", in: `{"timestamp":-9223372036854775808}`},
		{name: "negative zero timestamp", in: `{"timestamp":-0}`},
		{name: "whitespace", in: " \t\n\r{ \"messageId\" : \"a\" , \"timestamp\" : 3 } \n"},
		{name: "context numbers", in: `{"context":{"a":1e308,"b":-0,"c":1e-400,"d":123456789012345678901234567890}}`},

		{name: "string field given a number", in: `{"messageId":5}`, wantErr: true},
		{name: "string field given an object", in: `{"content":{}}`, wantErr: true},
		{name: "string field given a bool", in: `{"type":true}`, wantErr: true},
		{name: "timestamp given a string", in: `{"timestamp":"5"}`, wantErr: true},
		{name: "timestamp with a fraction", in: `{"timestamp":1.5}`, wantErr: true},
		{name: "timestamp with an integral fraction", in: `{"timestamp":1.0}`, wantErr: true},
		{name: "timestamp with an exponent", in: `{"timestamp":1e3}`, wantErr: true},
		{name: "timestamp too large", in: `{"timestamp":9223372036854775808}`, wantErr: true},
		{name: "timestamp too small", in: `{"timestamp":-9223372036854775809}`, wantErr: true},
		{name: "context given an array", in: `{"context":[]}`, wantErr: true},
		{name: "context given a string", in: `{"context":"x"}`, wantErr: true},
		{name: "context number out of range", in: `{"context":{"a":1e400}}`, wantErr: true},
		{name: "sealed given a string", in: `{"sealed":"x"}`, wantErr: true},
		{name: "sealed field given a number", in: `{"sealed":{"to":1}}`, wantErr: true},
		{name: "an array", in: `[]`, wantErr: true},
		{name: "a string", in: `"x"`, wantErr: true},
		{name: "a number", in: `1`, wantErr: true},

		{name: "empty input", in: ``, wantErr: true},
		{name: "truncated", in: `{"messageId":"a"`, wantErr: true},
		{name: "trailing data", in: `{} {}`, wantErr: true},
		{name: "trailing comma", in: `{"messageId":"a",}`, wantErr: true},
		{name: "malformed skipped value", in: `{"x":[1,}`, wantErr: true},
		{name: "malformed context", in: `{"context":{"a":01}}`, wantErr: true},
		{name: "bad escape", in: `{"content":"\x"}`, wantErr: true},
		{name: "control character", in: "{\"content\":\"a\nb\"}", wantErr: true},
		{name: "single quotes", in: `{'messageId':'a'}`, wantErr: true},
		{name: "nested too deep", in: `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeMessage(t, tt.start, []byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestRelayParamsDecode(t *testing.T) {
	start := &federation.RelayParams{TargetAgent: "t0", Message: filled(), TimeoutMs: 5, Durable: true}
	tests := []struct {
		name    string
		start   *federation.RelayParams
		in      string
		wantErr bool
	}{
		{name: "full", in: `{"targetAgent":"echo","message":{"messageId":"m","timestamp":1},"timeoutMs":30000,"durable":true}`},
		{name: "null is a no-op", start: start, in: `null`},
		{name: "null fields keep their values", start: start, in: `{"targetAgent":null,"timeoutMs":null,"durable":null}`},
		{name: "null message clears it", start: start, in: `{"message":null}`},
		{name: "message fills the existing one", start: start, in: `{"message":{"content":"new","context":{"x":1}}}`},
		{name: "durable false", start: start, in: `{"durable":false}`},
		{name: "traceparent", in: `{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","TraceParent":"x\u00e9"}`},
		{name: "traceparent given a number", in: `{"traceparent":1}`, wantErr: true},
		{name: "keys match regardless of case", in: `{"TARGETAGENT":"a","Message":{"MessageID":"m"},"timeoutms":1,"DURABLE":true}`},
		{name: "unknown keys skipped", in: `{"foo":[{"message":1}],"targetAgent":"a"}`},

		{name: "message given a string", in: `{"message":"m"}`, wantErr: true},
		{name: "message given an array", in: `{"message":[]}`, wantErr: true},
		{name: "bad message field", in: `{"message":{"timestamp":"now"}}`, wantErr: true},
		{name: "durable given a string", in: `{"durable":"true"}`, wantErr: true},
		{name: "durable given a number", in: `{"durable":1}`, wantErr: true},
		{name: "timeout with a fraction", in: `{"timeoutMs":1.5}`, wantErr: true},
		{name: "targetAgent given a number", in: `{"targetAgent":1}`, wantErr: true},
		{name: "an array", in: `[{}]`, wantErr: true},
		{name: "truncated", in: `{"message":{"messageId":"a"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start
			if s == nil {
				s = &federation.RelayParams{}
			}
			_, err := decodeRelayParams(t, s, []byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestCodecCoversEveryField sets every field of the structs the codec
// handles, so that a field added to one of them without a line in codec.go
// fails here: encoding/json would write it and the codec would not.
func TestCodecCoversEveryField(t *testing.T) {
	var m federation.Message
	fill(t, reflect.ValueOf(&m).Elem())
	want := checkEncode(t, &m)
	var back federation.Message
	if err := back.UnmarshalJSON(want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back); diff != "" {
		t.Errorf("round trip (-sent +decoded):\n%s", diff)
	}

	var p federation.RelayParams
	fill(t, reflect.ValueOf(&p).Elem())
	if got, want := must(p.MarshalJSON()), must(json.Marshal(toPlain(&p))); string(got) != string(want) {
		t.Errorf("RelayParams.MarshalJSON\n got %s\nwant %s", got, want)
	}
	var pback federation.RelayParams
	if err := pback.UnmarshalJSON(must(p.MarshalJSON())); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, pback); diff != "" {
		t.Errorf("RelayParams round trip (-sent +decoded):\n%s", diff)
	}

	// plainRelayParams must mirror RelayParams for the fuzzers to mean
	// anything.
	rt, pt := reflect.TypeFor[federation.RelayParams](), reflect.TypeFor[plainRelayParams]()
	if rt.NumField() != pt.NumField() {
		t.Fatalf("RelayParams has %d fields, plainRelayParams %d: update plainRelayParams", rt.NumField(), pt.NumField())
	}
	for i := range rt.NumField() {
		rf, pf := rt.Field(i), pt.Field(i)
		if rf.Name != pf.Name || rf.Tag != pf.Tag {
			t.Errorf("RelayParams field %s %q, plainRelayParams has %s %q", rf.Name, rf.Tag, pf.Name, pf.Tag)
		}
	}
}

// appendResult writes json.Marshal's bytes, whichever fields are set,
// and fails as it does.
func TestResultEncode(t *testing.T) {
	var full federation.Result
	fill(t, reflect.ValueOf(&full).Elem())
	full.Error.Details = map[string]any{"why": "<odd> \u2028"}
	tests := map[string]*federation.Result{
		"full":        &full,
		"zero":        {},
		"ok":          {PeerID: "p", MessageID: "m", Status: "ok", Response: filled(), LatencyMs: 12.896},
		"error":       {PeerID: "p", Status: "error", Error: gateway.NewError(gateway.CodeTimeout, "no <answer>"), LatencyMs: 1e-7},
		"big":         {LatencyMs: 1e21},
		"nil":         nil,
		"empty route": {Route: []string{}},
	}
	for name, r := range tests {
		got, err := federation.AppendResult([]byte("x"), r)
		want, werr := json.Marshal(r)
		if err != nil || werr != nil || string(got) != "x"+string(want) {
			t.Errorf("%s:\nappendResult %s (%v)\njson.Marshal x%s (%v)", name, got, err, want, werr)
		}
	}
	bad := &federation.Result{LatencyMs: math.NaN()}
	if got, err := federation.AppendResult([]byte("x"), bad); err == nil || string(got) != "x" {
		t.Errorf("NaN latency: %s, %v; want json.Marshal's error and dst unchanged", got, err)
	}
}

// fill sets every field of the struct v to a value that is not empty.
func fill(t *testing.T, v reflect.Value) {
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("v-" + name)
		case reflect.Int64, reflect.Int:
			f.SetInt(int64(1000 + i))
		case reflect.Float64:
			f.SetFloat(float64(1000+i) + 0.25)
		case reflect.Interface:
			f.Set(reflect.ValueOf("v-" + name))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]any{"k-" + name: "v"}))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"v1-" + name, "v2-" + name}))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
			fill(t, f.Elem())
		default:
			t.Fatalf("field %s is a %s: teach fill, and codec.go, about it", name, f.Kind())
		}
	}
}

// TestSignatureMatchesEncodingJSON signs with the codec and checks the
// signature against the bytes encoding/json would have signed, which a
// gateway without the codec computes.
func TestSignatureMatchesEncodingJSON(t *testing.T) {
	id, err := federation.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	key, err := federation.ParseSigningKey(id.Public().SigningKey)
	if err != nil {
		t.Fatal(err)
	}
	m := federation.NewMessage(federation.TypeRequest, "main", "op", "echo", "<b>\xff\u2028 & more</b>")
	m.Context = map[string]any{"n": 3, "f": 1e-9, "big": 1e21, "s": []any{"é", nil, true}}
	if err := id.Sign(m); err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(key); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// signedBytes as encoding/json computes it: encode, decode, encode.
	c := *(*plainMessage)(m)
	c.Signature = ""
	var norm plainMessage
	if err := json.Unmarshal(must(json.Marshal(c)), &norm); err != nil {
		t.Fatal(err)
	}
	signed := append([]byte("agentfed signature v1\x00\x00"), must(json.Marshal(norm))...)
	sig, err := base64.RawURLEncoding.DecodeString(m.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(key, signed, sig) {
		t.Fatal("the signature does not verify over encoding/json's canonical bytes")
	}
}

// messageSeeds cover each field, each JSON kind in each field, and the
// malformed inputs the decoder must reject.
var messageSeeds = []string{
	`{"messageId":"3f1c2a9e","fromAgent":"operator","fromServer":"main","toAgent":"echo","type":"request","content":"hi","context":{"a":[1,2.5e3,-0,true,null,"x\"y\u00e9"],"b":{}},"correlationId":"c","priority":"high","timestamp":1795550899321,"sealed":{"suite":"hpke-x25519-sha256-aes256gcm","to":"x25519:a","enc":"b","replyKey":"x25519:c","ciphertext":"c"},"signature":"s"}`,
	`null`, `{}`, `[]`, `"x"`, `1`, `true`, ``, `{"messageId":null,"context":null,"sealed":null,"timestamp":null}`,
	`{"MessageID":"a","ſignature":"b","SEALED":{"TO":"x"}}`, `{"message\u0049d":"a"}`, `{"context":{"a":1},"context":{"b":2}}`,
	`{"timestamp":1.5}`, `{"timestamp":1e3}`, `{"timestamp":9223372036854775808}`, `{"timestamp":"1"}`, `{"timestamp":-0}`,
	`{"content":5}`, `{"context":[]}`, `{"context":{"a":1e400}}`, `{"sealed":"x"}`, `{"sealed":{"enc":1}}`, `{"sealed":{"replyKey":null}}`,
	"{\"content\":\"\xff\\ud800\\ud83d\\ude00\"}", `{"x":[{"y":null}],"messageId":"a"}`,
	`{"messageId":"a"`, `{"messageId":"a",}`, `{"a":01}`, `{"a":"\x"}`, `{} x`, `{"a" 1}`,
	`{"hops":2,"path":["c","a","b"]}`, `{"path":[]}`, `{"path":null}`, `{"path":[null,"x",null]}`, `{"PATH":["a"],"Hops":-1}`,
	`{"path":["a",1]}`, `{"path":{}}`, `{"path":["a",]}`, `{"hops":1.5}`,
}

// FuzzMessageJSON decodes arbitrary bytes into a zero and into a filled
// Message with the codec and with encoding/json, and checks that they
// agree, and that what they decoded encodes the same.
func FuzzMessageJSON(f *testing.F) {
	for _, seed := range messageSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, start := range []*federation.Message{nil, filled()} {
			if m, err := decodeMessage(t, start, data); err == nil {
				checkEncode(t, m)
			}
		}
	})
}

// FuzzRelayParamsJSON does for RelayParams what FuzzMessageJSON does for
// Message.
func FuzzRelayParamsJSON(f *testing.F) {
	for _, seed := range []string{
		`{"targetAgent":"echo","message":{"messageId":"m","timestamp":1},"timeoutMs":30000,"durable":true}`,
		`null`, `{}`, `{"message":null}`, `{"targetAgent":null,"timeoutMs":null,"durable":null}`,
		`{"TARGETAGENT":"a","Message":{"MessageID":"m"},"timeoutms":1,"DURABLE":false}`,
		`{"message":"m"}`, `{"message":[]}`, `{"durable":"true"}`, `{"timeoutMs":1.5}`, `{"message":{"timestamp":"x"}}`,
		`[{}]`, `{"message":{"messageId":"a"}`,
		`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","message":{"messageId":"m"}}`,
	} {
		f.Add([]byte(seed))
	}
	for _, seed := range messageSeeds {
		f.Add([]byte(`{"targetAgent":"t","message":` + seed + `}`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, start := range []*federation.RelayParams{{}, {TargetAgent: "t0", Message: filled(), TimeoutMs: 5, Durable: true}} {
			if p, err := decodeRelayParams(t, start, data); err == nil && p.Message != nil {
				checkEncode(t, p.Message)
			}
		}
	})
}

// FuzzMessageEncode encodes messages built from arbitrary strings, with a
// context decoded from arbitrary JSON plus numbers of every magnitude and
// Go type, and checks the bytes against encoding/json's.
func FuzzMessageEncode(f *testing.F) {
	f.Add("m", "<a&b>", "\xff\u2028", "x\n\"y\\", []byte(`{"a":[1,{"b":null}],"c":"d"}`), 1e21, int64(-1), uint64(1<<63), "1.5e3", true)
	f.Add("", "", "", "", []byte(`null`), 1e-7, int64(0), uint64(0), "", false)
	f.Add("é", "日本", "😀", "\x00\x1f\x7f", []byte(`[]`), math.Inf(1), int64(math.MinInt64), uint64(math.MaxUint64), "01", true)
	f.Add("a", "b", "c", "d", []byte(`{"x":1e400}`), 0.000001, int64(7), uint64(7), "-0.0e-0", false)
	f.Fuzz(func(t *testing.T, id, from, to, content string, ctxJSON []byte, fl float64, i int64, u uint64, num string, sealed bool) {
		m := &federation.Message{MessageID: id, FromAgent: from, FromServer: to, ToAgent: content, Type: federation.MessageType(from),
			Content: content, CorrelationID: to, Priority: federation.Priority(id), Timestamp: i, Signature: id + content}
		json.Unmarshal(ctxJSON, &m.Context) // whatever it makes of them, possibly nothing
		if len(m.Context) > 0 || i%2 == 0 {
			if m.Context == nil {
				m.Context = map[string]any{}
			}
			m.Context[content] = []any{fl, -fl, fl * 1e-10, fl * 1e15, i, u, int32(i), json.Number(num), map[string]any{to: i % 3}}
		}
		if sealed {
			m.Sealed = &federation.Sealed{Suite: from, To: to, Enc: id, ReplyKey: num, Ciphertext: content}
		} else {
			m.Hops, m.Path = i, []string{from, to, content}
		}
		if want := checkEncode(t, m); want != nil {
			decodeMessage(t, nil, want)
		}
	})
}

// A typical relay request: a ~300-byte message with a small context.
var benchRequest = &federation.RelayParams{TargetAgent: "echo", TimeoutMs: 30000, Message: &federation.Message{
	MessageID: "3f1c2a9e-6d0b-4c3e-9a51-2b7d8e4f6a10", FromAgent: "operator", FromServer: "main-agent-server",
	ToAgent: "echo", Type: federation.TypeRequest, Content: "Please research the latest developments in quantum computing",
	Context:       map[string]any{"session": "s-9", "step": 2.0, "tags": []any{"physics", "survey"}},
	CorrelationID: "research-task-001", Priority: federation.PriorityHigh, Timestamp: 1795550899321}}

// The echo agent's reply to it: the context gains a "received" object.
var benchReply = &federation.Message{
	MessageID: "b7e0c4d2-1a9f-4e6b-8c3d-5f2a7e9b1c04", FromAgent: "echo", FromServer: "echo-server", ToAgent: "operator",
	Type: federation.TypeResponse, Content: "Please research the latest developments in quantum computing",
	Context: map[string]any{"session": "s-9", "step": 2.0, "tags": []any{"physics", "survey"}, "received": map[string]any{
		"messageId": "3f1c2a9e-6d0b-4c3e-9a51-2b7d8e4f6a10", "fromAgent": "operator", "fromServer": "main-agent-server",
		"type": "request", "correlationId": "research-task-001", "priority": "high"}},
	CorrelationID: "research-task-001", Priority: federation.PriorityHigh, Timestamp: 1795550899377}

// BenchmarkMessageCodec compares the codec with encoding/json's reflection
// on a relay request and an echo reply. "append" encodes into a reused
// buffer, as the gateway does; "direct" decodes with UnmarshalJSON, as the
// gateway does with a frame it has validated; "json.Unmarshal" is the
// codec behind encoding/json's validating pass.
func BenchmarkMessageCodec(b *testing.B) {
	cases := []struct {
		name  string
		v     interface{ AppendJSON([]byte) ([]byte, error) }
		plain any
		fresh func() (json.Unmarshaler, any)
	}{
		{"relay-request", benchRequest, toPlain(benchRequest), func() (json.Unmarshaler, any) {
			return new(federation.RelayParams), new(plainRelayParams)
		}},
		{"echo-reply", benchReply, (*plainMessage)(benchReply), func() (json.Unmarshaler, any) {
			return new(federation.Message), new(plainMessage)
		}},
	}
	for _, c := range cases {
		data := must(c.v.AppendJSON(nil))
		b.Run(c.name+"/encode/append", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf = must(c.v.AppendJSON(buf[:0]))
			}
		})
		b.Run(c.name+"/encode/marshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				must(c.v.(json.Marshaler).MarshalJSON())
			}
		})
		b.Run(c.name+"/encode/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				must(json.Marshal(c.plain))
			}
		})
		b.Run(c.name+"/decode/direct", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u, _ := c.fresh()
				if err := u.UnmarshalJSON(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decode/json.Unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u, _ := c.fresh()
				if err := json.Unmarshal(data, u); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decode/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, plain := c.fresh()
				if err := json.Unmarshal(data, plain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResultEncode compares appendResult with json.Marshal on
// the result of a delivered message, as the outbox stores it.
func BenchmarkResultEncode(b *testing.B) {
	r := &federation.Result{PeerID: "echo-0", MessageID: "01a24409-288c-72f9-a35c-75c2a9251beb", Status: "ok",
		Response: filled(), LatencyMs: 12.896}
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendResult", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = federation.AppendResult(buf[:0], r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
