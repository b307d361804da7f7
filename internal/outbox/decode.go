package outbox

import (
	"encoding/json"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// Entries are decoded without encoding/json's reflection: the sender of a
// durable message over NATS reads one back for each outcome, and
// encoding/json was most of that. decode fills a zero Entry as
// json.Unmarshal fills one, for what encode writes and for what any older
// build wrote: keys matched as encoding/json matches them, unknown ones
// skipped, missing ones left zero, null leaving a string or number as it
// is. The message and the result are decoded by their own UnmarshalJSON
// when their types have one (federation's Message does), else by
// json.Unmarshal; so is lastError. FuzzEntryDecode holds it to
// json.Unmarshal.
//
// Differences, none of which a caller relies on: the error is a
// *jsonx.Error behind the field's name rather than a
// *json.UnmarshalTypeError, and decoding stops at the first error, where
// json.Unmarshal carries on filling the fields after it.

// The JSON names of Entry's fields, as in its struct tags.
var entryFields = []string{"messageId", "kind", "peerId", "requiredCapabilities", "strategy", "state", "attempts",
	"createdAt", "expiresAt", "nextAttemptAt", "finishedAt", "lastError", "result", "message", "timeoutMs", "ttlMs",
	"peerAttempts", "stream"}

// The usual values of kind and state, which decoding returns without
// allocating.
var (
	kinds  = []string{"send", "delegate", "broadcast"}
	states = []string{StateQueued, StateDelivered, StateFailed, StateDead}
)

// decodeEntry is the entry stored as data: the one way the outbox reads
// an entry.
func decodeEntry[M, R any](data []byte) (*Entry[M, R], error) {
	e := new(Entry[M, R])
	if err := e.decode(data, true); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeHeader is decodeEntry without the message, the result and
// lastError, which it checks but does not decode: enough to count,
// prune or expire entries.
func decodeHeader[M, R any](data []byte) (*Entry[M, R], error) {
	e := new(Entry[M, R])
	if err := e.decode(data, false); err != nil {
		return nil, err
	}
	return e, nil
}

// decode fills e from data; bodies says whether to decode the message,
// the result and lastError, or only check them.
func (e *Entry[M, R]) decode(data []byte, bodies bool) error {
	var d jsonx.Decoder
	d.Reset(data)
	if err := d.ReadFields(entryFields, func(name string) error { return e.decodeField(&d, name, bodies) }); err != nil {
		return err
	}
	return d.End()
}

// decodeField reads the value of the field called name; an unknown name
// ("") is skipped, and so are the bodies unless asked for.
func (e *Entry[M, R]) decodeField(d *jsonx.Decoder, name string, bodies bool) error {
	switch name {
	case "messageId":
		return jsonx.ReadInto(d, &e.MessageID, d.ReadString)
	case "kind":
		return readStringOf(d, &e.Kind, kinds)
	case "peerId":
		return jsonx.ReadInto(d, &e.PeerID, d.ReadName)
	case "requiredCapabilities":
		return d.ReadStrings(&e.RequiredCapabilities)
	case "strategy":
		return jsonx.ReadInto(d, &e.Strategy, d.ReadName)
	case "state":
		return readStringOf(d, &e.State, states)
	case "attempts":
		return jsonx.ReadInto(d, &e.Attempts, d.ReadInt)
	case "createdAt":
		return jsonx.ReadInto(d, &e.CreatedAt, d.ReadInt64)
	case "expiresAt":
		return jsonx.ReadInto(d, &e.ExpiresAt, d.ReadInt64)
	case "nextAttemptAt":
		return jsonx.ReadInto(d, &e.NextAttemptAt, d.ReadInt64)
	case "finishedAt":
		return jsonx.ReadInto(d, &e.FinishedAt, d.ReadInt64)
	case "lastError":
		if bodies {
			return readBody(d, &e.LastError)
		}
	case "result":
		if bodies {
			return readBody(d, &e.Result)
		}
	case "message":
		if bodies {
			return readBody(d, &e.Message)
		}
	case "timeoutMs":
		return jsonx.ReadInto(d, &e.TimeoutMs, d.ReadInt)
	case "ttlMs":
		return jsonx.ReadInto(d, &e.TTLMs, d.ReadInt)
	case "peerAttempts":
		return jsonx.ReadInto(d, &e.PeerAttempts, d.ReadInt)
	case "stream":
		return jsonx.ReadInto(d, &e.Stream, d.ReadName)
	}
	return d.Skip()
}

func readStringOf(d *jsonx.Decoder, dst *string, common []string) error {
	return jsonx.ReadInto(d, dst, func() (string, error) { return d.ReadStringOf(common) })
}

// readBody reads a pointer field of a type the outbox does not know, as
// encoding/json does: null sets it to nil; any other value fills the
// existing value or a new one, through the type's UnmarshalJSON when it
// has one (without json.Unmarshal's second validating pass), else through
// json.Unmarshal.
func readBody[T any](d *jsonx.Decoder, dst **T) error {
	raw, err := d.ReadRaw()
	if err != nil {
		return err
	}
	if string(raw) == "null" {
		*dst = nil
		return nil
	}
	if *dst == nil {
		*dst = new(T)
	}
	if u, ok := any(*dst).(json.Unmarshaler); ok {
		return u.UnmarshalJSON(raw)
	}
	return json.Unmarshal(raw, *dst)
}
