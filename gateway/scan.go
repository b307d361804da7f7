package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// scanFrame parses one frame in a single pass over its bytes: it checks
// that the whole frame is valid JSON nested at most maxDepth deep, reads
// the envelope's string and boolean fields, and slices params and payload
// out of data without copying or decoding them (their one full decode, by
// whoever consumes them, happens later). Keys match exactly, as the
// protocol writes them. data must not be modified while the frame is in use.
func scanFrame(data []byte) (*frame, error) {
	s := &scanner{data: data}
	f := &frame{}
	s.space()
	if !s.eat('{') {
		return nil, errors.New("it does not start with '{'")
	}
	s.space()
	if !s.eat('}') {
		for {
			s.space()
			key, err := s.stringValue()
			if err != nil {
				return nil, err
			}
			s.space()
			if !s.eat(':') {
				return nil, s.errorf("expected ':' after key %q", key)
			}
			s.space()
			start := s.i
			if err := s.value(2); err != nil { // the envelope is level 1
				return nil, err
			}
			if err := f.set(key, data[start:s.i]); err != nil {
				return nil, err
			}
			s.space()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return nil, s.errorf("expected ',' or '}' in the frame")
		}
	}
	s.space()
	if s.i != len(data) {
		return nil, s.errorf("unexpected data after the frame")
	}
	return f, nil
}

// set stores one envelope field.
func (f *frame) set(key string, raw []byte) error {
	null := string(raw) == "null"
	switch key {
	case "type", "id", "method", "event":
		if null {
			return nil
		}
		v, err := decodeName(raw, key != "id") // ids are unique: the rest repeat
		if err != nil {
			return fmt.Errorf("frame field %q must be a string", key)
		}
		switch key {
		case "type":
			f.Type = v
		case "id":
			f.ID = v
		case "method":
			f.Method = v
		case "event":
			f.Event = v
		}
	case "ok":
		switch string(raw) {
		case "true":
			f.OK = true
		case "false", "null":
			f.OK = false
		default:
			return errors.New(`frame field "ok" must be true or false`)
		}
	case "params":
		f.Params = raw
	case "payload":
		f.Payload = raw
	case "error":
		if null {
			f.Error = nil
			return nil
		}
		var e Error
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf(`frame field "error": %v`, err)
		}
		f.Error = &e
	}
	return nil
}

// decodeName decodes a JSON string token, interned when it is a name that
// repeats from frame to frame (a type, a method, an event).
func decodeName(raw []byte, repeats bool) (string, error) {
	if !repeats || len(raw) < 2 || raw[0] != '"' {
		return decodeString(raw)
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return jsonx.Intern(body), nil
	}
	return decodeString(raw)
}

// decodeString decodes a JSON string token. Plain tokens (no escapes,
// valid UTF-8: nearly all ids and names) cost one allocation; the rest go
// through encoding/json, which also replaces invalid UTF-8 as it does.
func decodeString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err
}

// scanner walks JSON bytes, validating as it goes.
type scanner struct {
	data []byte
	i    int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// stringValue scans a string and returns it decoded.
func (s *scanner) stringValue() (string, error) {
	start := s.i
	if err := s.skipString(); err != nil {
		return "", err
	}
	return decodeString(s.data[start:s.i])
}

func (s *scanner) skipString() error {
	if !s.eat('"') {
		return s.errorf("expected a string")
	}
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if s.i+1 >= len(s.data) {
				return s.errorf("unfinished escape")
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.data) || !isHex4(s.data[s.i+2:s.i+6]) {
					return s.errorf(`bad \u escape`)
				}
				s.i += 6
			default:
				return s.errorf("bad escape")
			}
		case c < 0x20:
			return s.errorf("control character in a string")
		default:
			s.i++
		}
	}
	return s.errorf("unfinished string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// value scans one JSON value at the given nesting depth.
func (s *scanner) value(depth int) error {
	if s.i >= len(s.data) {
		return s.errorf("unexpected end")
	}
	switch c := s.data[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{' || c == '[':
		if depth > maxDepth {
			return fmt.Errorf("frame nests JSON deeper than %d levels", maxDepth)
		}
		return s.container(depth)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return s.errorf("unexpected character %q", s.data[s.i])
}

// container scans an object or array whose opening byte is at s.i.
func (s *scanner) container(depth int) error {
	object := s.data[s.i] == '{'
	closer := byte(']')
	if object {
		closer = '}'
	}
	s.i++
	s.space()
	if s.eat(closer) {
		return nil
	}
	for {
		s.space()
		if object {
			if err := s.skipString(); err != nil {
				return err
			}
			s.space()
			if !s.eat(':') {
				return s.errorf("expected ':'")
			}
			s.space()
		}
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.space()
		if s.eat(',') {
			continue
		}
		if s.eat(closer) {
			return nil
		}
		return s.errorf("expected ',' or %q", closer)
	}
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return s.errorf("bad literal")
	}
	s.i += len(word)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.digits() == 0:
		return s.errorf("bad number")
	}
	if s.eat('.') && s.digits() == 0 {
		return s.errorf("bad number")
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return s.errorf("bad number")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}
