package federation

import (
	"fmt"
	"strconv"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// Message, Sealed and RelayParams encode and decode themselves without
// encoding/json's reflection, which cost the relay a fifth of its CPU. The
// bytes written and the values read are exactly encoding/json's for the
// same structs without these methods (codec_test.go fuzzes one against
// the other), so a signature over either's output verifies over the
// other's, and a peer running an older agentfed reads them the same way.
//
// Deliberate differences, none of which agentfed relies on: a decoding
// error is a *jsonx.Error behind the field's name, not a
// *json.UnmarshalTypeError; decoding stops at the first error, where
// encoding/json carries on past a value of the wrong type to fill the
// fields after it; and, as with any json.Unmarshaler, a json.Decoder's
// UseNumber and DisallowUnknownFields do not reach inside a Message.
//
// A field added to one of these structs must be added here too;
// TestCodecCoversEveryField fails until it is.

// AppendJSON appends m's JSON encoding to dst, as json.Marshal writes it.
// On error it returns dst unchanged.
func (m *Message) AppendJSON(dst []byte) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	b := appendStringField(dst, `{"messageId":`, m.MessageID)
	b = appendStringField(b, `,"fromAgent":`, m.FromAgent)
	b = appendStringField(b, `,"fromServer":`, m.FromServer)
	b = appendStringField(b, `,"toAgent":`, m.ToAgent)
	b = appendStringField(b, `,"type":`, string(m.Type))
	b = appendStringField(b, `,"content":`, m.Content)
	if len(m.Context) > 0 {
		var err error
		if b, err = jsonx.AppendValue(append(b, `,"context":`...), m.Context); err != nil {
			return dst, err
		}
	}
	if m.CorrelationID != "" {
		b = appendStringField(b, `,"correlationId":`, m.CorrelationID)
	}
	if m.Priority != "" {
		b = appendStringField(b, `,"priority":`, string(m.Priority))
	}
	b = strconv.AppendInt(append(b, `,"timestamp":`...), m.Timestamp, 10)
	if m.Hops != 0 {
		b = strconv.AppendInt(append(b, `,"hops":`...), m.Hops, 10)
	}
	if len(m.Path) > 0 {
		b = appendStrings(append(b, `,"path":`...), m.Path)
	}
	if len(m.Route) > 0 {
		b = appendStrings(append(b, `,"route":`...), m.Route)
	}
	if m.Sealed != nil {
		b = m.Sealed.appendJSON(append(b, `,"sealed":`...))
	}
	if m.Signature != "" {
		b = appendStringField(b, `,"signature":`, m.Signature)
	}
	return append(b, '}'), nil
}

// appendResult appends r's JSON encoding to dst, as json.Marshal writes
// it: the outbox stores a durable message's result with it (json.Marshal
// compacted and checked the response's encoding again, a twentieth of
// the durable path's CPU). On error it returns dst unchanged. It is not
// Result's AppendJSON method: DelegateResult and SyncResult embed Result,
// and would take it for their own encoding (gateway.Appender).
func appendResult(dst []byte, r *Result) ([]byte, error) {
	if r == nil {
		return append(dst, "null"...), nil
	}
	b := appendStringField(dst, `{"peerId":`, r.PeerID)
	if r.MessageID != "" {
		b = appendStringField(b, `,"messageId":`, r.MessageID)
	}
	b = appendStringField(b, `,"status":`, r.Status)
	var err error
	if r.Response != nil {
		if b, err = r.Response.AppendJSON(append(b, `,"response":`...)); err != nil {
			return dst, err
		}
	}
	if r.Error != nil { // rare: json.Marshal's reflection will do
		if b, err = jsonx.AppendValue(append(b, `,"error":`...), r.Error); err != nil {
			return dst, err
		}
	}
	if b, err = jsonx.AppendValue(append(b, `,"latencyMs":`...), r.LatencyMs); err != nil {
		return dst, err
	}
	if len(r.Route) > 0 {
		b = appendStrings(append(b, `,"route":`...), r.Route)
	}
	return append(b, '}'), nil
}

// appendStrings appends a non-empty array of strings.
func appendStrings(b []byte, list []string) []byte {
	for i, s := range list {
		b = append(b, "[,"[min(i, 1)]) // [ before the first, , before the others
		b = jsonx.AppendString(b, s)
	}
	return append(b, ']')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (m *Message) MarshalJSON() ([]byte, error) {
	return nilOnError(m.AppendJSON(make([]byte, 0, m.sizeHint())))
}

// sizeHint guesses the length of m's encoding, so that MarshalJSON
// allocates its buffer once.
func (m *Message) sizeHint() int {
	if m == nil {
		return 4
	}
	n := 192 + len(m.MessageID) + len(m.FromAgent) + len(m.FromServer) + len(m.ToAgent) +
		len(m.Content) + len(m.CorrelationID) + len(m.Signature) + 64*len(m.Context) + 32*(len(m.Path)+len(m.Route))
	if m.Sealed != nil {
		s := m.Sealed
		n += 96 + len(s.Suite) + len(s.To) + len(s.Enc) + len(s.ReplyKey) + len(s.Ciphertext)
	}
	return n
}

func (s *Sealed) appendJSON(dst []byte) []byte {
	b := appendStringField(dst, `{"suite":`, s.Suite)
	b = appendStringField(b, `,"to":`, s.To)
	b = appendStringField(b, `,"enc":`, s.Enc)
	if s.ReplyKey != "" {
		b = appendStringField(b, `,"replyKey":`, s.ReplyKey)
	}
	b = appendStringField(b, `,"ciphertext":`, s.Ciphertext)
	return append(b, '}')
}

// AppendJSON appends p's JSON encoding to dst, as json.Marshal writes it.
// On error it returns dst unchanged.
func (p *RelayParams) AppendJSON(dst []byte) ([]byte, error) {
	if p == nil {
		return append(dst, "null"...), nil
	}
	b, err := p.Message.AppendJSON(append(appendStringField(dst, `{"targetAgent":`, p.TargetAgent), `,"message":`...))
	if err != nil {
		return dst, err
	}
	if p.TimeoutMs != 0 {
		b = strconv.AppendInt(append(b, `,"timeoutMs":`...), p.TimeoutMs, 10)
	}
	if p.Durable {
		b = append(b, `,"durable":true`...)
	}
	if p.Traceparent != "" {
		b = appendStringField(b, `,"traceparent":`, p.Traceparent)
	}
	if p.TargetServer != "" {
		b = appendStringField(b, `,"targetServer":`, p.TargetServer)
	}
	if len(p.Route) > 0 {
		b = appendStrings(append(b, `,"route":`...), p.Route)
	}
	if p.OriginKey != "" {
		b = appendStringField(b, `,"originKey":`, p.OriginKey)
	}
	return append(b, '}'), nil
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (p *RelayParams) MarshalJSON() ([]byte, error) {
	hint := 64
	if p != nil {
		hint += len(p.TargetAgent) + p.Message.sizeHint()
	}
	return nilOnError(p.AppendJSON(make([]byte, 0, hint)))
}

func nilOnError(b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return b, nil
}

// appendStringField appends key, which holds the punctuation around it,
// and the string s.
func appendStringField(dst []byte, key, s string) []byte {
	return jsonx.AppendString(append(dst, key...), s)
}

// The JSON names of the fields, as in the struct tags.
var (
	messageFields = []string{"messageId", "fromAgent", "fromServer", "toAgent", "type", "content",
		"context", "correlationId", "priority", "timestamp", "hops", "path", "route", "sealed", "signature"}
	sealedFields = []string{"suite", "to", "enc", "replyKey", "ciphertext"}
	relayFields  = []string{"targetAgent", "message", "timeoutMs", "durable", "traceparent", "targetServer", "route", "originKey"}

	messageTypes = []string{string(TypeRequest), string(TypeResponse), string(TypeDelegation), string(TypeBroadcast), string(TypeSync)}
	priorities   = []string{string(PriorityLow), string(PriorityNormal), string(PriorityHigh), string(PriorityUrgent)}
)

// UnmarshalJSON implements json.Unmarshaler: it decodes data into m as
// json.Unmarshal decodes into a Message without this method. Like
// encoding/json, it keeps the fields that data does not set, adds to an
// existing Context, and ignores null where a string or number goes.
func (m *Message) UnmarshalJSON(data []byte) error {
	var d jsonx.Decoder
	d.Reset(data)
	if err := m.decode(&d); err != nil {
		return err
	}
	return d.End()
}

func (m *Message) decode(d *jsonx.Decoder) error {
	if d.ReadNull() {
		return nil
	}
	return d.ReadObject(func(key []byte) error {
		name := jsonx.FieldName(key, messageFields)
		err := m.decodeField(d, name)
		if err != nil && name != "" {
			return fmt.Errorf("message.%s: %w", name, err)
		}
		return err
	})
}

// decodeField reads the value of the field called name; an unknown name
// ("") is skipped.
func (m *Message) decodeField(d *jsonx.Decoder, name string) error {
	switch name {
	case "messageId":
		return readString(d, &m.MessageID)
	case "fromAgent":
		return readName(d, &m.FromAgent)
	case "fromServer":
		return readName(d, &m.FromServer)
	case "toAgent":
		return readName(d, &m.ToAgent)
	case "type":
		return readStringOf(d, (*string)(&m.Type), messageTypes)
	case "content":
		return readString(d, &m.Content)
	case "context":
		return readMap(d, &m.Context)
	case "correlationId":
		return readString(d, &m.CorrelationID)
	case "priority":
		return readStringOf(d, (*string)(&m.Priority), priorities)
	case "timestamp":
		return readInt64(d, &m.Timestamp)
	case "hops":
		return readInt64(d, &m.Hops)
	case "path":
		return d.ReadStrings(&m.Path)
	case "route":
		return d.ReadStrings(&m.Route)
	case "sealed":
		return readSealed(d, &m.Sealed)
	case "signature":
		return readString(d, &m.Signature)
	}
	return d.Skip()
}

// readSealed reads a *Sealed: null sets it to nil, an object fills the
// existing Sealed or a new one.
func readSealed(d *jsonx.Decoder, dst **Sealed) error {
	if d.ReadNull() {
		*dst = nil
		return nil
	}
	if *dst == nil {
		*dst = new(Sealed)
	}
	s := *dst
	return d.ReadObject(func(key []byte) error {
		switch jsonx.FieldName(key, sealedFields) {
		case "suite":
			return readString(d, &s.Suite)
		case "to":
			return readString(d, &s.To)
		case "enc":
			return readString(d, &s.Enc)
		case "replyKey":
			return readString(d, &s.ReplyKey)
		case "ciphertext":
			return readString(d, &s.Ciphertext)
		}
		return d.Skip()
	})
}

// UnmarshalJSON implements json.Unmarshaler: it decodes data into p as
// json.Unmarshal decodes into a RelayParams without this method, and its
// message with Message.UnmarshalJSON's rules.
func (p *RelayParams) UnmarshalJSON(data []byte) error {
	var d jsonx.Decoder
	d.Reset(data)
	if err := p.decode(&d); err != nil {
		return err
	}
	return d.End()
}

func (p *RelayParams) decode(d *jsonx.Decoder) error {
	if d.ReadNull() {
		return nil
	}
	return d.ReadObject(func(key []byte) error {
		name := jsonx.FieldName(key, relayFields)
		err := p.decodeField(d, name)
		if err != nil && name != "" && name != "message" { // message's errors name their field
			return fmt.Errorf("%s: %w", name, err)
		}
		return err
	})
}

// decodeField reads the value of the field called name; an unknown name
// ("") is skipped.
func (p *RelayParams) decodeField(d *jsonx.Decoder, name string) error {
	switch name {
	case "targetAgent":
		return readName(d, &p.TargetAgent)
	case "message":
		return readMessage(d, &p.Message)
	case "timeoutMs":
		return readInt64(d, &p.TimeoutMs)
	case "durable":
		return readBool(d, &p.Durable)
	case "traceparent":
		return readString(d, &p.Traceparent)
	case "targetServer":
		return readName(d, &p.TargetServer)
	case "route":
		return d.ReadStrings(&p.Route)
	case "originKey":
		return readString(d, &p.OriginKey)
	}
	return d.Skip()
}

// readMessage reads *m: null sets it to nil, an object fills the existing
// Message or a new one, as json.Unmarshal fills a *Message field.
func readMessage(d *jsonx.Decoder, m **Message) error {
	if d.ReadNull() {
		*m = nil
		return nil
	}
	if *m == nil {
		*m = new(Message)
	}
	return (*m).decode(d)
}

// The read functions below store a value of the field's type; null leaves
// the field as it was, as encoding/json does for a string, number or bool.

func readString(d *jsonx.Decoder, dst *string) error { return readStringOf(d, dst, nil) }

// readName reads a string that repeats from message to message (an
// agent's or a server's name) without allocating when it is short and
// was read before.
func readName(d *jsonx.Decoder, dst *string) error { return jsonx.ReadInto(d, dst, d.ReadName) }

// readStringOf reads a string that is usually one of common, without
// allocating when it is.
func readStringOf(d *jsonx.Decoder, dst *string, common []string) error {
	return jsonx.ReadInto(d, dst, func() (string, error) { return d.ReadStringOf(common) })
}

func readInt64(d *jsonx.Decoder, dst *int64) error { return jsonx.ReadInto(d, dst, d.ReadInt64) }

func readBool(d *jsonx.Decoder, dst *bool) error { return jsonx.ReadInto(d, dst, d.ReadBool) }

// readMap adds an object's members to *dst, making it first if it is nil;
// null sets *dst to nil, as encoding/json does for a map.
func readMap(d *jsonx.Decoder, dst *map[string]any) error {
	if d.ReadNull() {
		*dst = nil
		return nil
	}
	m, err := d.ReadMap(*dst)
	*dst = m
	return err
}
