package federation

// The records of durable messages a receiver writes for each one it
// handles, encoded without encoding/json's reflection and its second
// pass over the reply (which Message.AppendJSON writes compact already).

import (
	"encoding/json"
	"strconv"
)

// appendJSON appends o's JSON encoding to dst, the bytes json.Marshal
// writes, without encoding/json's reflection and its second pass over
// the reply (the receiver encodes one outcome per durable message).
func (o *natsOutcome) appendJSON(dst []byte) ([]byte, error) {
	b := appendStringField(dst, `{"messageId":`, o.MessageID)
	b = appendStringField(b, `,"state":`, o.State)
	var err error
	if o.Reply != nil {
		if b, err = o.Reply.AppendJSON(append(b, `,"reply":`...)); err != nil {
			return dst, err
		}
	}
	if o.Error != nil {
		e, err := json.Marshal(o.Error) // rarer than replies, and Details may be anything
		if err != nil {
			return dst, err
		}
		b = append(append(b, `,"error":`...), e...)
	}
	if o.Deliveries != 0 {
		b = strconv.AppendInt(append(b, `,"deliveries":`...), int64(o.Deliveries), 10)
	}
	if len(o.Request) > 0 {
		r, err := json.Marshal(o.Request) // rare (dead letters): as encoding/json has it
		if err != nil {
			return dst, err
		}
		b = append(append(b, `,"request":`...), r...)
	}
	return append(b, '}'), nil
}

// appendJSON appends e's JSON encoding to dst, the bytes json.Marshal
// writes: a receiver writes one for each durable message it handles.
func (e processedEntry) appendJSON(dst []byte) ([]byte, error) {
	b := strconv.AppendInt(append(dst, `{"at":`...), e.At, 10)
	b, err := e.Reply.AppendJSON(append(b, `,"reply":`...))
	if err != nil {
		return dst, err
	}
	return append(b, '}'), nil
}
