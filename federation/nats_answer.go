package federation

// A request's answer over NATS (natsAnswer), encoded and decoded without
// encoding/json's reflection: the receiver encodes one and the sender
// decodes one per NATS relay, and encoding/json, which also passed over
// the reply a second time (compacting what Message.AppendJSON had written,
// validating before Message.UnmarshalJSON), took about 6 % of the
// relay's CPU at each end. The bytes and the refusals are encoding/json's:
// TestNATSAnswerEncode, TestNATSAnswerDecodeIsJSONUnmarshal and
// FuzzNATSAnswerDecode hold the two to it.

import (
	"encoding/json"
	"strconv"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// appendJSON appends a's encoding, the bytes json.Marshal writes, with
// the reply encoded once by Message.AppendJSON. An error, rare, goes
// through json.Marshal.
func (a *natsAnswer) appendJSON(dst []byte) ([]byte, error) {
	dst = strconv.AppendBool(append(dst, `{"ok":`...), a.OK)
	if a.Payload != nil {
		var err error
		if dst, err = a.Payload.AppendJSON(append(dst, `,"payload":`...)); err != nil {
			return nil, err
		}
	}
	if a.Error != nil {
		e, err := json.Marshal(a.Error)
		if err != nil {
			return nil, err
		}
		dst = append(append(dst, `,"error":`...), e...)
	}
	return append(dst, '}'), nil
}

// The JSON names of natsAnswer's fields, as in its struct tags.
var answerFields = []string{"ok", "payload", "error"}

// decode fills a, a zero natsAnswer, from data as json.Unmarshal does,
// its reply by Message's own decoder.
func (a *natsAnswer) decode(data []byte) error {
	var d jsonx.Decoder
	d.Reset(data)
	if err := d.ReadFields(answerFields, func(name string) error { return a.decodeField(&d, name) }); err != nil {
		return err
	}
	return d.End()
}

// decodeField reads the value of the field called name; an unknown name
// ("") is skipped.
func (a *natsAnswer) decodeField(d *jsonx.Decoder, name string) error {
	switch name {
	case "ok":
		return jsonx.ReadInto(d, &a.OK, d.ReadBool)
	case "payload":
		return readMessage(d, &a.Payload)
	case "error": // rare, and Details may be anything
		raw, err := d.ReadRaw()
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, &a.Error)
	}
	return d.Skip()
}
