package jsonx

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNesting is how deep encoding/json lets objects and arrays nest.
const maxNesting = 10000

// A Decoder reads one JSON value from a byte slice, piece by piece: the
// caller says what it expects next (ReadObject, ReadString, ...) and gets
// an error when the input holds something else or is malformed. The
// values it returns are those encoding/json would decode, and never share
// memory with the input.
//
// The zero Decoder reads an empty input; Reset gives it one.
type Decoder struct {
	data     []byte
	pos      int
	depth    int    // objects and arrays open at pos
	maxDepth int    // of depth; 0: maxNesting
	scratch  []byte // unescaped keys and strings, reused
}

// Reset makes d read data from its start.
func (d *Decoder) Reset(data []byte) {
	*d = Decoder{data: data, scratch: d.scratch[:0]}
}

// SetMaxDepth limits how deep objects and arrays may nest, the outermost
// counting as 1, until the next Reset. 0 is encoding/json's limit.
func (d *Decoder) SetMaxDepth(n int) { d.maxDepth = n }

// An Error reports input that is malformed, nested too deep, or not of the
// kind the caller asked for.
type Error struct {
	Offset int // of the byte where the problem was found
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("jsonx: %s at byte %d", e.Msg, e.Offset) }

func (d *Decoder) errorf(format string, args ...any) error {
	return &Error{Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

// unexpected reports that the input at d.pos is not what the caller wants.
func (d *Decoder) unexpected(want string) error {
	return d.errorf("expected %s, found %s", want, d.describe())
}

// describe names what starts at d.pos, for error messages.
func (d *Decoder) describe() string {
	rest := d.data[d.pos:]
	switch {
	case len(rest) == 0:
		return "the end of the input"
	case rest[0] == '{':
		return "an object"
	case rest[0] == '[':
		return "an array"
	case rest[0] == '"':
		return "a string"
	case bytes.HasPrefix(rest, []byte("true")) || bytes.HasPrefix(rest, []byte("false")):
		return "a boolean"
	case bytes.HasPrefix(rest, []byte("null")):
		return "null"
	case numberLen(rest) > 0:
		return "a number"
	}
	return fmt.Sprintf("the character %q", rest[0])
}

// peek returns the byte at d.pos, or 0 at the end of the input.
func (d *Decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *Decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// eat consumes c if it is next, after any space.
func (d *Decoder) eat(c byte) bool {
	d.skipSpace()
	if d.peek() == c {
		d.pos++
		return true
	}
	return false
}

// literal consumes lit (true, false or null) if it is next.
func (d *Decoder) literal(lit string) bool {
	if bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
		d.pos += len(lit)
		return true
	}
	return false
}

// End checks that nothing but space follows the value read.
func (d *Decoder) End() error {
	d.skipSpace()
	if d.pos != len(d.data) {
		return d.errorf("unexpected %s after the value", d.describe())
	}
	return nil
}

// ReadNull consumes a null if one is next, and reports whether it did.
func (d *Decoder) ReadNull() bool {
	d.skipSpace()
	return d.literal("null")
}

// ReadBool reads true or false.
func (d *Decoder) ReadBool() (bool, error) {
	d.skipSpace()
	switch {
	case d.literal("true"):
		return true, nil
	case d.literal("false"):
		return false, nil
	}
	return false, d.unexpected("a boolean")
}

// ReadInt64 reads a number that encoding/json would store in an int64: no
// fraction, no exponent, and in range.
func (d *Decoder) ReadInt64() (int64, error) {
	d.skipSpace()
	start := d.pos
	tok, err := d.number()
	if err != nil {
		return 0, err
	}
	n, ok := parseInt64(tok)
	if !ok {
		d.pos = start
		return 0, d.errorf("number %s is not an int64", tok)
	}
	return n, nil
}

// ReadInt reads a number that encoding/json would store in an int.
func (d *Decoder) ReadInt() (int, error) {
	d.skipSpace()
	start := d.pos
	n, err := d.ReadInt64()
	if err == nil && int64(int(n)) != n {
		d.pos = start
		return 0, d.errorf("number %d overflows an int", n)
	}
	return int(n), err
}

// parseInt64 parses a JSON number token that must be an integer.
func parseInt64(tok []byte) (int64, bool) {
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // -(MinInt64) is one more than MaxInt64
	}
	var n uint64
	for _, c := range tok {
		if !isDigit(c) || n > limit/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > limit {
			return 0, false
		}
	}
	if neg {
		return int64(-n), true // wraps to MinInt64 as intended
	}
	return int64(n), true
}

// number consumes a number token and returns it.
func (d *Decoder) number() ([]byte, error) {
	n := numberLen(d.data[d.pos:])
	if n == 0 {
		return nil, d.unexpected("a number")
	}
	tok := d.data[d.pos : d.pos+n]
	d.pos += n
	return tok, nil
}

// float reads a number as encoding/json decodes one into an any.
func (d *Decoder) float() (float64, error) {
	start := d.pos
	tok, err := d.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil { // out of range
		d.pos = start
		return 0, d.errorf("number %s does not fit a float64", tok)
	}
	return f, nil
}

// ReadString reads a string. Invalid UTF-8 and lone surrogates become
// U+FFFD, as with encoding/json. Each string is a copy of its own: sharing
// one copy of the input would let a string kept for long, such as an id,
// keep the whole input alive.
func (d *Decoder) ReadString() (string, error) { return d.ReadStringOf(nil) }

// ReadStringOf is ReadString for a string that is usually one of common,
// such as an enumeration's values: it returns that element of common
// rather than allocate a copy.
func (d *Decoder) ReadStringOf(common []string) (string, error) {
	body, err := d.stringBody()
	if err != nil {
		return "", err
	}
	for _, s := range common {
		if string(body) == s {
			return s, nil
		}
	}
	return string(body), nil
}

// ReadName is ReadString for a string that repeats from message to
// message, such as an agent's or a server's name: a short one comes from
// the intern table rather than a new allocation. Free text and ids,
// which rarely repeat, are better read with ReadString.
func (d *Decoder) ReadName() (string, error) {
	body, err := d.stringBody()
	if err != nil {
		return "", err
	}
	return internString(body), nil
}

// stringBody reads a string token and returns its value's bytes, unquoted;
// they are valid until the next read.
func (d *Decoder) stringBody() ([]byte, error) {
	d.skipSpace()
	body, escaped, err := d.scanString()
	if err != nil || !escaped {
		return body, err
	}
	d.scratch = unquote(d.scratch[:0], body)
	return d.scratch, nil
}

// scanString consumes the string token at d.pos, checking it, and returns
// the bytes between its quotes. escaped reports whether they need
// unquote: they hold escape sequences or invalid UTF-8.
func (d *Decoder) scanString() (body []byte, escaped bool, err error) {
	if d.peek() != '"' {
		return nil, false, d.unexpected("a string")
	}
	start := d.pos + 1
	for i := start; i < len(d.data); {
		for i < len(d.data) && verbatim[d.data[i]] { // the common bytes, in a tight loop
			i++
		}
		if i == len(d.data) {
			break
		}
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			return d.data[start:i], escaped, nil
		case c == '\\':
			n := escapeLen(d.data[i:])
			if n == 0 {
				d.pos = i
				return nil, false, d.errorf("invalid escape sequence in a string")
			}
			escaped = true
			i += n
		case c < ' ':
			d.pos = i
			return nil, false, d.errorf("control character %q in a string", c)
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			escaped = escaped || r == utf8.RuneError && size == 1
			i += size
		}
	}
	d.pos = len(d.data)
	return nil, false, d.errorf("unterminated string")
}

// escapeLen returns the length of the escape sequence at the start of s,
// or 0 if it is not one that JSON allows.
func escapeLen(s []byte) int {
	if len(s) < 2 {
		return 0
	}
	switch s[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if hex4(s) >= 0 {
			return 6
		}
	}
	return 0
}

// hex4 decodes the \uXXXX at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case isDigit(c):
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquote appends the decoded form of a string body that scanString
// accepted, the way encoding/json decodes it.
func unquote(dst, body []byte) []byte {
	for len(body) > 0 {
		n := bytes.IndexByte(body, '\\')
		if n < 0 {
			n = len(body)
		}
		dst = appendUTF8(dst, body[:n])
		body = body[n:]
		if len(body) >= 2 {
			dst, body = appendUnescaped(dst, body)
		} else {
			body = nil // unreachable after scanString; never loop forever
		}
	}
	return dst
}

// appendUTF8 appends s with each byte of invalid UTF-8 replaced by U+FFFD.
func appendUTF8(dst, s []byte) []byte {
	if utf8.Valid(s) {
		return append(dst, s...)
	}
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		dst = utf8.AppendRune(dst, r)
		s = s[size:]
	}
	return dst
}

// appendUnescaped appends what the escape sequence at the start of s
// stands for and returns the rest of s. A \u escape of half a surrogate
// pair, without the other half right after it, stands for U+FFFD.
func appendUnescaped(dst, s []byte) ([]byte, []byte) {
	switch c := s[1]; c {
	case 'b':
		return append(dst, '\b'), s[2:]
	case 'f':
		return append(dst, '\f'), s[2:]
	case 'n':
		return append(dst, '\n'), s[2:]
	case 'r':
		return append(dst, '\r'), s[2:]
	case 't':
		return append(dst, '\t'), s[2:]
	case 'u':
		r := hex4(s)
		if r < 0 {
			return dst, nil // unreachable after scanString
		}
		s = s[6:]
		if utf16.IsSurrogate(r) {
			if pair := utf16.DecodeRune(r, hex4(s)); pair != unicode.ReplacementChar {
				return utf8.AppendRune(dst, pair), s[6:]
			}
			r = unicode.ReplacementChar
		}
		return utf8.AppendRune(dst, r), s
	}
	return append(dst, s[1]), s[2:] // " \ or /
}

// open consumes the { or [ that starts an object or array.
func (d *Decoder) open(c byte, what string) error {
	d.skipSpace()
	if d.peek() != c {
		return d.unexpected(what)
	}
	limit := d.maxDepth
	if limit <= 0 {
		limit = maxNesting
	}
	if d.depth++; d.depth > limit {
		return d.errorf("exceeded the maximum nesting depth of %d", limit)
	}
	d.pos++
	return nil
}

// ReadObject reads an object, calling fn for each member with its key,
// unescaped. fn must read the member's value, with one Read method or
// Skip. The key is valid only until then.
func (d *Decoder) ReadObject(fn func(key []byte) error) error {
	if err := d.open('{', "an object"); err != nil {
		return err
	}
	if d.eat('}') {
		d.depth--
		return nil
	}
	for {
		key, err := d.stringBody()
		if err != nil {
			return err
		}
		if !d.eat(':') {
			return d.unexpected("':' after an object key")
		}
		before := d.pos
		if err := fn(key); err != nil {
			return err
		}
		if d.pos == before { // fn's bug, but it must not let "{"a":,}" through
			return d.errorf("the value of key %q was not read", key)
		}
		if d.eat(',') {
			continue
		}
		if d.eat('}') {
			d.depth--
			return nil
		}
		return d.unexpected("',' or '}' after an object member")
	}
}

// ReadArray reads an array, calling fn for each element; fn must read it.
func (d *Decoder) ReadArray(fn func() error) error { return d.readArray(fn) }

// readArray reads an array, calling fn for each element; fn must read it.
func (d *Decoder) readArray(fn func() error) error {
	if err := d.open('[', "an array"); err != nil {
		return err
	}
	if d.eat(']') {
		d.depth--
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		if d.eat(',') {
			continue
		}
		if d.eat(']') {
			d.depth--
			return nil
		}
		return d.unexpected("',' or ']' after an array element")
	}
}

// Skip reads a value of any kind and discards it.
func (d *Decoder) Skip() error {
	d.skipSpace()
	switch d.peek() {
	case '{':
		return d.ReadObject(func([]byte) error { return d.Skip() })
	case '[':
		return d.readArray(d.Skip)
	case '"':
		_, _, err := d.scanString()
		return err
	case 't', 'f':
		_, err := d.ReadBool()
		return err
	case 'n':
		if d.ReadNull() {
			return nil
		}
		return d.unexpected("a value")
	}
	_, err := d.number()
	return err
}

// ReadRaw reads a value of any kind, checking it, and returns its bytes as
// they are in the input, without copying them: unlike the other reads, the
// result shares memory with the input.
func (d *Decoder) ReadRaw() ([]byte, error) {
	d.skipSpace()
	start := d.pos
	if err := d.Skip(); err != nil {
		return nil, err
	}
	return d.data[start:d.pos], nil
}

// ReadValue reads a value of any kind as encoding/json decodes it into an
// any: objects become map[string]any, arrays []any, numbers float64.
func (d *Decoder) ReadValue() (any, error) {
	var v any
	var err error
	d.skipSpace()
	switch d.peek() {
	case '{':
		v, err = d.ReadMap(nil)
	case '[':
		v, err = d.readSlice()
	case '"':
		v, err = d.readStringValue()
	case 't', 'f':
		v, err = d.ReadBool()
	case 'n':
		if !d.ReadNull() {
			err = d.unexpected("a value")
		}
	default:
		v, err = d.float()
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// readStringValue reads a string as an interface value, which a short
// string shares with its earlier decodings.
func (d *Decoder) readStringValue() (any, error) {
	body, err := d.stringBody()
	if err != nil {
		return nil, err
	}
	if len(body) > internMax {
		return string(body), nil
	}
	return intern(body).v, nil
}

// ReadMap reads an object's members into dst, as encoding/json decodes an
// object into a map[string]any: it adds to dst, or to a new map when dst
// is nil, and returns the map. When the value is not an object it returns
// dst and an error.
func (d *Decoder) ReadMap(dst map[string]any) (map[string]any, error) {
	d.skipSpace()
	if d.peek() != '{' {
		return dst, d.unexpected("an object")
	}
	if dst == nil {
		dst = make(map[string]any)
	}
	err := d.ReadObject(func(key []byte) error {
		k := internString(key) // before reading the value reuses key's bytes
		v, err := d.ReadValue()
		if err != nil {
			return err
		}
		dst[k] = v
		return nil
	})
	return dst, err
}

// readSlice reads an array as encoding/json decodes one into an any: an
// empty array is an empty, not nil, slice.
func (d *Decoder) readSlice() ([]any, error) {
	a := []any{}
	err := d.readArray(func() error {
		v, err := d.ReadValue()
		if err != nil {
			return err
		}
		if cap(a) == 0 {
			a = make([]any, 0, 4) // one allocation for the short lists messages hold
		}
		a = append(a, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}
