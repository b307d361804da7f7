package federation

// The outcomes of durable messages over NATS, decoded without
// encoding/json's reflection: the sender decodes one for each durable
// message it sent, and encoding/json (a batch into []json.RawMessage, then
// each outcome, then its reply through Message.UnmarshalJSON, each step
// validating the bytes again) was most of the sender's share of the CPU.
// A batch is now checked and split in one scan, and each outcome decoded
// in one more, its reply by Message's own decoder. The refusals are
// json.Unmarshal's: a batch that is not a JSON array (or null) is refused
// whole, before any of its outcomes is applied; an outcome that does not
// decode into a natsOutcome is refused alone. TestOutcomeDecodeIsJSONUnmarshal
// and FuzzOutcomeDecode hold the two to it.

import (
	"encoding/json"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// The JSON names of natsOutcome's fields, as in its struct tags.
var outcomeFields = []string{"messageId", "state", "reply", "error", "deliveries", "request"}

// outcomeStates are the states an outcome has, which decoding returns
// without allocating.
var outcomeStates = []string{StateDelivered, StateFailed, StateDead}

// splitOutcomes checks that data is a JSON array (or null, no outcomes),
// as json.Unmarshal into a []json.RawMessage does, and returns its
// elements, sharing data's memory. Each element is a JSON value; whether
// it is an outcome is for natsOutcome.decode to say.
func splitOutcomes(data []byte) ([][]byte, error) {
	var d jsonx.Decoder
	d.Reset(data)
	var outs [][]byte
	if !d.ReadNull() {
		err := d.ReadArray(func() error {
			raw, err := d.ReadRaw()
			outs = append(outs, raw)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if err := d.End(); err != nil {
		return nil, err
	}
	return outs, nil
}

// decode fills o, a zero natsOutcome, from data as json.Unmarshal does.
func (o *natsOutcome) decode(data []byte) error {
	var d jsonx.Decoder
	d.Reset(data)
	if err := d.ReadFields(outcomeFields, func(name string) error { return o.decodeField(&d, name) }); err != nil {
		return err
	}
	return d.End()
}

// decodeField reads the value of the field called name; an unknown name
// ("") is skipped.
func (o *natsOutcome) decodeField(d *jsonx.Decoder, name string) error {
	switch name {
	case "messageId":
		return readString(d, &o.MessageID)
	case "state":
		return readStringOf(d, &o.State, outcomeStates)
	case "reply":
		return readMessage(d, &o.Reply)
	case "error": // rare (failed outcomes, dead letters), and Details may be anything
		raw, err := d.ReadRaw()
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, &o.Error)
	case "deliveries":
		return jsonx.ReadInto(d, &o.Deliveries, d.ReadInt)
	case "request": // as json.RawMessage keeps it: a copy, null included
		raw, err := d.ReadRaw()
		if err != nil {
			return err
		}
		o.Request = append(o.Request[:0], raw...)
		return nil
	}
	return d.Skip()
}
