// Package jsonx is a small JSON codec for the relay's hot path, where
// encoding/json's reflection cost a fifth of the CPU. It appends values to
// a byte slice and reads them from one, producing exactly the bytes and the
// values that encoding/json produces for the same data, so that the two
// can be mixed freely (a signature computed over one's output verifies
// over the other's).
//
// The encoder knows the types that encoding/json decodes into an any
// (map[string]any, []any, string, float64, bool and nil), the integer
// kinds and json.Number; any other value is handed to json.Marshal. The
// Decoder validates everything it reads, whatever the input, and never
// panics.
//
// The functions are safe for concurrent use; a Decoder is not.
package jsonx

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Encoding. Decoding is in decode.go.

// plain[b] reports whether byte b is written as is inside a JSON string by
// encoding/json, which also escapes <, > and & so that its output can be
// embedded in HTML. Bytes from 0x80 up are not plain: they need a UTF-8
// check.
var plain = func() (t [256]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

const hex = "0123456789abcdef"

// verbatim[b] reports whether byte b stands for itself inside a JSON
// string being decoded: it is ASCII, not a control character, a quote or a
// backslash.
var verbatim = func() (t [256]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// AppendString appends s to dst as a JSON string, byte for byte as
// json.Marshal writes a Go string: invalid UTF-8 becomes \ufffd, and
// control characters, <, >, &, U+2028 and U+2029 are escaped.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	i := 0
	for i < len(s) && plain[s[i]] {
		i++
	}
	if i == len(s) { // the common case: nothing to escape
		dst = append(dst, s...)
	} else {
		dst = appendEscaped(dst, s, i)
	}
	return append(dst, '"')
}

// appendEscaped appends s, escaping what needs it from byte i on; the
// bytes before i are plain.
func appendEscaped(dst []byte, s string, i int) []byte {
	start := 0 // s[start:i] is plain and not yet appended
	for i < len(s) {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = appendEscapedByte(append(dst, s[start:i]...), c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON but not valid JavaScript, which may embed it.
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// appendEscapedByte appends the escape sequence of an ASCII byte that is
// not plain, with the short forms encoding/json uses.
func appendEscapedByte(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
}

// maxEncodeDepth bounds the recursion into maps and slices. Deeper values
// go to encoding/json, which writes the same bytes, or reports the cycle
// that would otherwise recurse until the stack overflows.
const maxEncodeDepth = 100

// AppendValue appends v to dst as json.Marshal would encode it, or returns
// the error json.Marshal would return, and dst unchanged.
func AppendValue(dst []byte, v any) ([]byte, error) {
	out, err := appendValue(dst, v, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// appendValue appends v, nested depth maps and slices deep.
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return AppendString(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case float64:
		if !math.IsInf(v, 0) && !math.IsNaN(v) {
			return appendFloat(dst, v), nil
		}
	case map[string]any:
		if depth < maxEncodeDepth {
			return appendObject(dst, v, depth+1)
		}
	case []any:
		if depth < maxEncodeDepth {
			return appendArray(dst, v, depth+1)
		}
	case json.Number:
		if s := string(v); s == "" {
			return append(dst, '0'), nil // encoding/json's zero Number
		} else if numberLen(s) == len(s) {
			return append(dst, s...), nil
		}
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(dst, v, 10), nil
	case uintptr:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	}
	// Every other type, and the values above that encoding/json rejects
	// (NaN, infinities, malformed numbers), get exactly its answer.
	return appendMarshal(dst, v)
}

func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendFloat formats f as encoding/json does a float64: like JavaScript,
// in exponent form only when very small or very large.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if n := len(dst); format == 'e' && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		// encoding/json writes 1e-7 where strconv writes 1e-07.
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}

// appendObject appends m with its keys sorted, as encoding/json does.
func appendObject(dst []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	var arr [16]string // enough for most contexts without a heap allocation
	keys := arr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(AppendString(dst, k), ':')
		var err error
		if dst, err = appendValue(dst, m[k], depth); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendArray(dst []byte, a []any, depth int) ([]byte, error) {
	if a == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	for i, v := range a {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendValue(dst, v, depth); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// numberLen returns the length of the JSON number at the start of s, 0 if
// there is none: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberLen[T string | []byte](s T) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digitsEnd(s, i)
	default:
		return 0
	}
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		i = digitsEnd(s, i+1)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			i = digitsEnd(s, j)
		}
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digitsEnd returns the index of the first non-digit in s from i on.
func digitsEnd[T string | []byte](s T, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
