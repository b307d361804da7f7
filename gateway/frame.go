package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/coder/websocket"
)

// Frame types, as in OpenClaw's gateway protocol.
const (
	FrameReq   = "req"
	FrameRes   = "res"
	FrameEvent = "event"
)

// Request is a "req" frame: a call of Method with Params, answered by a
// Response with the same ID.
type Request struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Response is a "res" frame. Exactly one of Payload (OK) and Error (!OK) is
// set.
type Response struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Event is an "event" frame: a one-way notification.
type Event struct {
	Type    string          `json:"type"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Seq     *int64          `json:"seq,omitempty"`
}

// frame is the union of the three frame shapes, used only for decoding.
// Params and Payload alias the bytes read; buf, when set, is the pooled
// buffer holding them, for release once they have been decoded.
type frame struct {
	buf *[]byte

	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload"`
	Error   *Error          `json:"error"`
	Event   string          `json:"event"`
}

// release returns the frame's read buffer to the pool; Params and Payload
// must not be used afterwards.
func (f *frame) release() {
	recycleRead(f.buf)
	f.buf = nil
}

func recycleRead(b *[]byte) {
	if b != nil && cap(*b) <= maxPooledRead {
		readBufs.Put(b)
	}
}

// readBufs recycles the buffers frames are read into.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledRead = 64 << 10

// readMessage reads one WebSocket message into buf's space, growing it as
// needed, as ws.Read does but without a new buffer per message.
func readMessage(ws *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := ws.Reader(context.Background())
	if err != nil {
		return buf[:0], err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}

// Limits on what a frame from the network may hold.
const (
	maxIDLen     = 128
	maxMethodLen = 128
	maxDepth     = 64 // JSON nesting of objects and arrays
)

// decodeFrame parses one text frame and checks its shape. The error names
// what is wrong, for an INVALID_REQUEST answer.
func decodeFrame(data []byte) (*frame, error) {
	f, err := scanFrame(data)
	if err != nil {
		return nil, fmt.Errorf("frame is not a JSON object: %v", err)
	}
	switch f.Type {
	case FrameReq:
		if f.ID == "" || len(f.ID) > maxIDLen {
			return f, fmt.Errorf("req frame needs an id of 1 to %d bytes", maxIDLen)
		}
		if f.Method == "" || len(f.Method) > maxMethodLen {
			return f, fmt.Errorf("req frame needs a method of 1 to %d bytes", maxMethodLen)
		}
	case FrameRes:
		if f.ID == "" {
			return f, fmt.Errorf("res frame has no id")
		}
	case FrameEvent:
		if f.Event == "" {
			return f, fmt.Errorf("event frame has no event name")
		}
	default:
		return f, fmt.Errorf("frame type %q is not req, res or event", f.Type)
	}
	return f, nil
}

// Appender is implemented by params and payloads that encode themselves
// as JSON, appended to dst, faster than encoding/json's reflection. The
// gateway writes what they append into the frame as is: it must be valid
// JSON.
type Appender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// appendPayload appends v as a payload or params value: Appenders
// directly, anything else through marshalPayload.
func appendPayload(dst []byte, v any) ([]byte, error) {
	if a, ok := v.(Appender); ok {
		return a.AppendJSON(dst)
	}
	b, err := marshalPayload(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// marshalPayload encodes v for a payload or params field. A nil v encodes as
// an empty object, so that a payload is always a JSON object.
func marshalPayload(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		return v, nil
	}
	return json.Marshal(v)
}

// bufPool recycles frame buffers: a frame is built, written, and its
// buffer returned, so steady traffic allocates no frame buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 1<<20 {
		return // let the occasional huge frame's buffer go
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// appendString appends s as a JSON string. Ids and method names are
// almost always plain ASCII; anything else goes through encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendResponse appends a successful res frame around an already-encoded
// payload, without encoding the payload a second time.
func appendResponse(dst []byte, id string, payload []byte) []byte {
	dst = append(dst, `{"type":"res","id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"ok":true`...)
	if len(payload) > 0 { // omitted when empty, as encoding/json's omitempty would
		dst = append(dst, `,"payload":`...)
		dst = append(dst, payload...)
	}
	return append(dst, '}')
}

// appendResponseOf appends a successful res frame with payload v encoded
// in place.
func appendResponseOf(dst []byte, id string, v any) ([]byte, error) {
	dst = append(dst, `{"type":"res","id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"ok":true,"payload":`...)
	dst, err := appendPayload(dst, v)
	return append(dst, '}'), err
}

// appendRequest appends a req frame around already-encoded params.
func appendRequest(dst []byte, id, method string, params []byte) []byte {
	dst = appendRequestHead(dst, id, method)
	if len(params) > 0 {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	return append(dst, '}')
}

// appendRequestOf appends a req frame with params v encoded in place.
func appendRequestOf(dst []byte, id, method string, v any) ([]byte, error) {
	dst = appendRequestHead(dst, id, method)
	dst = append(dst, `,"params":`...)
	dst, err := appendPayload(dst, v)
	return append(dst, '}'), err
}

func appendRequestHead(dst []byte, id, method string) []byte {
	dst = append(dst, `{"type":"req","id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"method":`...)
	return appendString(dst, method)
}
