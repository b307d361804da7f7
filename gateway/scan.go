package gateway

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// scanFrame parses one frame in a single pass over its bytes with the
// JSON tokenizer the federation's codec uses (internal/jsonx): it checks
// that the whole frame is valid JSON nested at most maxDepth deep, reads
// the envelope's string and boolean fields, and slices params and payload
// out of data without copying or decoding them (their one full decode, by
// whoever consumes them, happens later). Keys match exactly, as the
// protocol writes them. data must not be modified while the frame is in use.
func scanFrame(data []byte) (*frame, error) {
	var d jsonx.Decoder
	d.Reset(data)
	d.SetMaxDepth(maxDepth)
	f := &frame{}
	err := d.ReadObject(func(key []byte) error { return f.read(&d, key) })
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// read reads the value of the envelope field key. A null leaves a string
// field as it was, as encoding/json does.
func (f *frame) read(d *jsonx.Decoder, key []byte) error {
	switch string(key) {
	case "type":
		return readName(d, "type", &f.Type)
	case "method":
		return readName(d, "method", &f.Method)
	case "event":
		return readName(d, "event", &f.Event)
	case "id":
		if d.ReadNull() {
			return nil
		}
		v, err := d.ReadString() // ids are unique: not interned
		if err != nil {
			return fmt.Errorf(`frame field "id" must be a string: %w`, err)
		}
		f.ID = v
	case "ok":
		if d.ReadNull() {
			f.OK = false
			return nil
		}
		v, err := d.ReadBool()
		if err != nil {
			return errors.New(`frame field "ok" must be true or false`)
		}
		f.OK = v
	case "params":
		raw, err := d.ReadRaw()
		f.Params = raw
		return err
	case "payload":
		raw, err := d.ReadRaw()
		f.Payload = raw
		return err
	case "error":
		if d.ReadNull() {
			f.Error = nil
			return nil
		}
		raw, err := d.ReadRaw()
		if err != nil {
			return err
		}
		var e Error
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf(`frame field "error": %v`, err)
		}
		f.Error = &e
	default:
		return d.Skip()
	}
	return nil
}

// readName reads a string that repeats from frame to frame (a type, a
// method, an event), interned.
func readName(d *jsonx.Decoder, key string, dst *string) error {
	if d.ReadNull() {
		return nil
	}
	v, err := d.ReadName()
	if err != nil {
		return fmt.Errorf("frame field %q must be a string: %w", key, err)
	}
	*dst = v
	return nil
}
