package jsonx_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/jsonx"
	"github.com/google/go-cmp/cmp"
)

var stringCases = []string{
	"", "plain ascii 123", `"quoted"`, `back\slash`, "/slash", "\b\f\n\r\t", "\x00\x01\x1f", "\x7f",
	"<script>&amp;</script>", "é", "日本語", "😀", "\ufffd", "\u2028 and \u2029", "\u2027\u202a",
	"\xff", "a\xc3", "\xc3(", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\x80ok", strings.Repeat("x", 300) + "\n",
}

func TestAppendString(t *testing.T) {
	for _, s := range stringCases {
		want, _ := json.Marshal(s)
		if got := jsonx.AppendString([]byte("prefix"), s); string(got) != "prefix"+string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got[len("prefix"):], want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range stringCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := jsonx.AppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

type cycle map[string]any

func TestAppendValue(t *testing.T) {
	deep := any("bottom")
	for range 250 { // deeper than AppendValue recurses itself
		deep = []any{map[string]any{"d": deep}}
	}
	loop := map[string]any{"k": 1.0}
	loop["self"] = loop
	tests := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"bools", []any{true, false}},
		{"strings", []any{"", "<a href=\"x\">\u2028\xff"}},
		{"floats", []any{0.0, math.Copysign(0, -1), 1.0, -1.5, 0.1, 1e-6, math.Nextafter(1e-6, 0), 1e-7, -1e-7,
			1e20, 1e21, math.Nextafter(1e21, 0), 123456789e15, 1e100, 1e-100, math.MaxFloat64,
			math.SmallestNonzeroFloat64, 5e-324, 1.7976931348623157e308, 9007199254740993.0}},
		{"ints", []any{0, -1, math.MaxInt, math.MinInt, int8(math.MinInt8), int16(math.MaxInt16), int32(math.MinInt32),
			int64(math.MaxInt64), uint(math.MaxUint), uint8(255), uint16(65535), uint32(math.MaxUint32),
			uint64(math.MaxUint64), uintptr(7)}},
		{"numbers", []any{json.Number(""), json.Number("0"), json.Number("-1.5e+3"), json.Number("1E-7")}},
		{"invalid number", json.Number("01")},
		{"not a number", json.Number("one")},
		{"NaN", math.NaN()},
		{"NaN in an array", []any{1.0, math.NaN()}},
		{"infinity in a map", map[string]any{"a": math.Inf(-1)}},
		{"sorted keys", map[string]any{"b": 1, "a": 2, "A": 3, "é": 4, "\xff": 5, "<": 6, "": 7, "aa": 8}},
		{"empty containers", map[string]any{"m": map[string]any{}, "s": []any{}}},
		{"nil containers", []any{map[string]any(nil), []any(nil)}},
		{"many keys", func() map[string]any {
			m := map[string]any{}
			for i := range 40 {
				m[strings.Repeat("k", i)] = i
			}
			return m
		}()},
		{"raw message", json.RawMessage(` { "a" : [1, 2] , "b":"<>" } `)},
		{"nil raw message", json.RawMessage(nil)},
		{"invalid raw message", json.RawMessage(`{"a"}`)},
		{"other types", []any{[]string{"x"}, map[string]int{"b": 1, "a": 2}, float32(0.1), struct{ A int }{1},
			time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), new(int), []byte("bytes"), cycle{"a": 1}}},
		{"deep", deep},
		{"cycle", loop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkAppendValue(t, tt.v)
		})
	}
}

// checkAppendValue checks that AppendValue agrees with json.Marshal on v.
func checkAppendValue(t *testing.T, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, err := jsonx.AppendValue([]byte("prefix"), v)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("AppendValue(%#v) error %v, json.Marshal error %v", v, err, wantErr)
	case err != nil && string(got) != "prefix":
		t.Fatalf("AppendValue(%#v) failed but changed dst to %q", v, got)
	case err == nil && string(got) != "prefix"+string(want):
		t.Fatalf("AppendValue(%#v)\n got %s\nwant %s", v, got[len("prefix"):], want)
	}
}

// gen builds values from fuzz input.
type gen struct{ data []byte }

func (g *gen) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *gen) uint64() uint64 {
	var b [8]byte
	g.data = g.data[copy(b[:], g.data):]
	return binary.LittleEndian.Uint64(b[:])
}

func (g *gen) string() string {
	n := min(int(g.byte()%24), len(g.data))
	s := string(g.data[:n])
	g.data = g.data[n:]
	return s
}

// value returns a value of a kind the next byte picks, nesting at most
// depth maps and slices.
func (g *gen) value(depth int) any {
	switch g.byte() % 16 {
	case 0:
		return nil
	case 1:
		return g.string()
	case 2:
		return g.byte()%2 == 0
	case 3:
		return math.Float64frombits(g.uint64()) // any magnitude, NaN and infinities too
	case 4:
		// Around the cutoffs where encoding/json switches to exponents.
		return float64(int64(g.uint64())%100000) * math.Pow10(int(g.byte()%60)-30)
	case 5:
		return int64(g.uint64())
	case 6:
		return g.uint64()
	case 7:
		return int32(g.uint64())
	case 8:
		return json.Number(g.string())
	case 9:
		return json.RawMessage(g.string())
	case 10, 11:
		if depth > 0 {
			m := map[string]any{}
			for range g.byte() % 6 {
				m[g.string()] = g.value(depth - 1)
			}
			return m
		}
	case 12, 13:
		if depth > 0 {
			a := []any{}
			for range g.byte() % 6 {
				a = append(a, g.value(depth-1))
			}
			return a
		}
	case 14:
		return []string{g.string()}
	case 15:
		return float32(math.Float64frombits(g.uint64()))
	}
	return g.string()
}

func FuzzAppendValue(f *testing.F) {
	for _, seed := range []string{"", "\x0a\x03\x01\x01a\x03\x00\x00\x00\x00\x00\x00\xf0\x3f", "\x04\x07\x00\x00\x00\x00\x00\x00\x00\x05",
		"\x0c\x05\x08\x01\x31\x09\x02{}\x0e\x00\x0f\x01\x02\x03\x04\x05\x06\x07\x08\x02\x01"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{data: data}
		checkAppendValue(t, g.value(4))
	})
}

// valueCases are inputs for the decoder, valid and not.
var valueCases = []string{
	`null`, `true`, `false`, `0`, `-0`, `1.5`, `-1.5e-3`, `1E+2`, `1e400`, `-1e400`, `1e-400`, `123456789012345678901234567890`,
	`""`, `"plain"`, `"esc\"\\\/\b\f\n\r\t"`, `"\u00e9\u2028"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00"`,
	`"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"\uDBFF\uDFFF"`, "\"\xff\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", `"é"`,
	`{}`, `[]`, ` { "a" : [ 1 , { "b" : null } ] , "a\u0062" : "x" } `, `{"a":1,"a":2}`, "{\"\xff\":1}",
	`[1,"x",true,null,{},[]]`,
	// Malformed.
	``, ` `, `nul`, `tru`, `fals`, `nulls`, `truex`, `-`, `01`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x10`, `1_000`, `NaN`,
	`"`, `"abc`, `"\x"`, `"\u12"`, `"\u12g4"`, `"\'"`, "\"\x01\"", "\"\t\"", `'a'`, `{`, `}`, `[`, `]`, `{"a"}`,
	`{"a":}`, `{"a" 1}`, `{a:1}`, `{"a":1,}`, `{,}`, `[1,]`, `[,1]`, `[1 2]`, `{"a":1 "b":2}`, `1 2`, `{} x`,
	"\ufeff{}", `{"a":1}}`, `[[]`, `"\`, `"abc\`, `"\u00e`,
}

func FuzzDecoder(f *testing.F) {
	for _, s := range valueCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoder(t, data)
	})
}

func TestDecoder(t *testing.T) {
	for _, s := range valueCases {
		t.Run(s, func(t *testing.T) { checkDecoder(t, []byte(s)) })
	}
}

// checkDecoder checks that each Read method agrees with json.Unmarshal into
// the matching Go type, and that Skip accepts exactly the valid JSON.
func checkDecoder(t *testing.T, data []byte) {
	t.Helper()
	var d jsonx.Decoder
	read := func(read func() (any, error)) (any, error) {
		d.Reset(data)
		v, err := read()
		if err == nil {
			err = d.End()
		}
		return v, err
	}
	valid := json.Valid(data)
	if _, err := read(func() (any, error) { return nil, d.Skip() }); (err == nil) != valid {
		t.Fatalf("Skip(%q) error %v, json.Valid %v", data, err, valid)
	}
	compare(t, data, valid, "any", new(any), func() (any, error) { return d.ReadValue() }, read)
	compare(t, data, valid, "string", new(string), func() (any, error) { return d.ReadString() }, read)
	compare(t, data, valid, "name", new(string), func() (any, error) { return d.ReadName() }, read)
	compare(t, data, valid, "int64", new(int64), func() (any, error) { return d.ReadInt64() }, read)
	compare(t, data, valid, "bool", new(bool), func() (any, error) { return d.ReadBool() }, read)
	compare(t, data, valid, "map", new(map[string]any), func() (any, error) { return d.ReadMap(nil) }, read)
}

// compare decodes data with fn and with json.Unmarshal into want, a
// pointer. null is left out: the Read methods do not take it, except
// ReadValue.
func compare(t *testing.T, data []byte, valid bool, what string, want any, fn func() (any, error),
	read func(func() (any, error)) (any, error)) {
	t.Helper()
	got, err := read(fn)
	if !valid {
		if err == nil {
			t.Fatalf("reading %q as %s succeeded; it is not valid JSON", data, what)
		}
		return
	}
	if what != "any" && string(bytes.TrimSpace(data)) == "null" {
		return
	}
	wantErr := json.Unmarshal(data, want)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("reading %q as %s: error %v, encoding/json error %v", data, what, err, wantErr)
	}
	var e *jsonx.Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("reading %q as %s: error %T, want a *jsonx.Error", data, what, err)
	}
	if err == nil {
		if diff := cmp.Diff(deref(want), got); diff != "" {
			t.Fatalf("reading %q as %s (-encoding/json +jsonx):\n%s", data, what, diff)
		}
	}
}

func deref(p any) any {
	switch p := p.(type) {
	case *any:
		return *p
	case *string:
		return *p
	case *int64:
		return *p
	case *bool:
		return *p
	case *map[string]any:
		return *p
	}
	panic("unreachable")
}

func TestReadInt64(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "0"}, {in: "-0"}, {in: " 42 ", want: 42},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "-9223372036854775808", want: math.MinInt64},
		{in: "9223372036854775808", err: true},
		{in: "-9223372036854775809", err: true},
		{in: "18446744073709551616", err: true},
		{in: "99999999999999999999999", err: true},
		{in: "1.0", err: true}, {in: "1e3", err: true}, {in: "1E3", err: true}, {in: "-1.5", err: true},
		{in: `"5"`, err: true}, {in: "true", err: true}, {in: "01", err: true}, {in: "-", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d jsonx.Decoder
			d.Reset([]byte(tt.in))
			got, err := d.ReadInt64()
			if err == nil {
				err = d.End()
			}
			if (err != nil) != tt.err || got != tt.want && err == nil {
				t.Fatalf("ReadInt64(%s) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestReadString(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\ufffd"},
		{`"\ud83dx"`, "\ufffdx"},
		{`"\ude00\ud83d"`, "\ufffd\ufffd"},
		{`"\ud83d\u0041"`, "\ufffdA"},
		{`"\ud83d\ud83d\ude00"`, "\ufffd😀"},
		{"\"\xff\\n\xc3\"", "\ufffd\n\ufffd"},
		{"\"\xed\xa0\x80\"", "\ufffd\ufffd\ufffd"},
		{`"\u0000\/"`, "\x00/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d jsonx.Decoder
			d.Reset([]byte(tt.in))
			got, err := d.ReadString()
			if err != nil || got != tt.want {
				t.Fatalf("ReadString(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNestingLimit(t *testing.T) {
	for _, depth := range []int{10000, 10001} {
		for _, open := range []string{"[", `{"a":`} {
			close := map[string]string{"[": "]", `{"a":`: "}"}[open]
			data := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth))
			var d jsonx.Decoder
			d.Reset(data)
			if err := d.Skip(); (err == nil) != json.Valid(data) {
				t.Errorf("Skip of %d levels of %s: error %v, json.Valid %v", depth, open, err, json.Valid(data))
			}
			d.Reset(data)
			if _, err := d.ReadValue(); (err == nil) != json.Valid(data) {
				t.Errorf("ReadValue of %d levels of %s: error %v, json.Valid %v", depth, open, err, json.Valid(data))
			}
		}
	}
}

// TestReadObjectKeys checks that keys arrive unescaped, in order, and that
// a key stays intact while the callback decides what to do with it.
func TestReadObjectKeys(t *testing.T) {
	var d jsonx.Decoder
	d.Reset([]byte(`{"plain":1, "esc\u0061ped":"v\n", "\ud83d\ude00":[{"x\ty":2}]}`))
	var keys []string
	err := d.ReadObject(func(key []byte) error {
		keys = append(keys, string(key))
		return d.Skip()
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"plain", "escaped", "😀"}, keys); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		in   string
		read func(d *jsonx.Decoder) error
		want string
	}{
		{`"x"`, func(d *jsonx.Decoder) error { _, err := d.ReadInt64(); return err }, "jsonx: expected a number, found a string at byte 0"},
		{` 1.5`, func(d *jsonx.Decoder) error { _, err := d.ReadInt64(); return err }, "jsonx: number 1.5 is not an int64 at byte 1"},
		{`{"a" 1}`, func(d *jsonx.Decoder) error { return d.Skip() }, "jsonx: expected ':' after an object key, found a number at byte 5"},
		{`[1}`, func(d *jsonx.Decoder) error { return d.Skip() }, "jsonx: expected ',' or ']' after an array element, found the character '}' at byte 2"},
		{`"a`, func(d *jsonx.Decoder) error { _, err := d.ReadString(); return err }, "jsonx: unterminated string at byte 2"},
		{`tru`, func(d *jsonx.Decoder) error { _, err := d.ReadBool(); return err }, "jsonx: expected a boolean, found the character 't' at byte 0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d jsonx.Decoder
			d.Reset([]byte(tt.in))
			if err := tt.read(&d); err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
		})
	}
}

// TestReadObjectValueNotRead checks that a callback that forgets to read
// a value gets an error, not a decoder that takes "{"a":,"b":1}" for an
// object.
func TestReadObjectValueNotRead(t *testing.T) {
	var d jsonx.Decoder
	d.Reset([]byte(`{"a":,"b":1}`))
	if err := d.ReadObject(func([]byte) error { return nil }); err == nil {
		t.Fatal("ReadObject succeeded though the callback read no value")
	}
}

func TestReadStringOf(t *testing.T) {
	common := []string{"request", "response"}
	for _, in := range []string{`"request"`, `"re\u0071uest"`, `"other"`, `""`} {
		var d jsonx.Decoder
		d.Reset([]byte(in))
		got, err := d.ReadStringOf(common)
		var want string
		json.Unmarshal([]byte(in), &want)
		if err != nil || got != want {
			t.Errorf("ReadStringOf(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	data := []byte(`"response"`)
	var d jsonx.Decoder
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(data)
		d.ReadStringOf(common)
	})
	if allocs != 0 {
		t.Errorf("ReadStringOf of a common string allocates %v times, want 0", allocs)
	}
}

// TestReadFields: keys select fields as encoding/json matches them, an
// unknown key comes as "" (and is skipped), a named field's error names
// it, and null is an object without members.
func TestReadFields(t *testing.T) {
	names := []string{"ok", "payload"}
	read := func(in string) ([]string, error) {
		var d jsonx.Decoder
		d.Reset([]byte(in))
		var got []string
		err := d.ReadFields(names, func(name string) error {
			got = append(got, name)
			if name == "ok" {
				_, err := d.ReadBool()
				return err
			}
			return d.Skip()
		})
		if err == nil {
			err = d.End()
		}
		return got, err
	}
	if got, err := read(`{"OK":true,"x":[1],"payload":{}}`); err != nil || strings.Join(got, ",") != "ok,,payload" {
		t.Errorf("fields = %q, %v; want ok, unknown, payload", got, err)
	}
	if got, err := read(`null`); err != nil || len(got) != 0 {
		t.Errorf("null = %q, %v; want no fields", got, err)
	}
	if _, err := read(`{"ok":"yes"}`); err == nil || !strings.HasPrefix(err.Error(), "ok: ") {
		t.Errorf("a mistyped field: %v; want an error that names ok", err)
	}
}
