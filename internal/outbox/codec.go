package outbox

import (
	"encoding/json"
	"strconv"

	"github.com/agentfed/agentfed/internal/jsonx"
)

// An appender appends its JSON encoding to dst, byte for byte as
// json.Marshal writes it (federation's Message is one).
type appender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// encode is e's JSON encoding, as the store keeps it: the bytes
// json.Marshal writes, without its reflection and without the second pass
// in which it checks and compacts what a field's MarshalJSON returned (an
// appender's output is appended as it is). The message is most of an
// entry, and a durable send encodes one before it is accepted.
// appendResult, if not nil, encodes the result (Config.AppendResult).
// TestEncodeIsJSONMarshal keeps the two in agreement.
func (e *Entry[M, R]) encode(appendResult func([]byte, *R) ([]byte, error)) ([]byte, error) {
	b := make([]byte, 0, 512)
	b = jsonx.AppendString(append(b, `{"messageId":`...), e.MessageID)
	b = jsonx.AppendString(append(b, `,"kind":`...), e.Kind)
	if e.PeerID != "" {
		b = jsonx.AppendString(append(b, `,"peerId":`...), e.PeerID)
	}
	if len(e.RequiredCapabilities) > 0 {
		for i, c := range e.RequiredCapabilities {
			if i == 0 {
				b = append(b, `,"requiredCapabilities":[`...)
			} else {
				b = append(b, ',')
			}
			b = jsonx.AppendString(b, c)
		}
		b = append(b, ']')
	}
	if e.Strategy != "" {
		b = jsonx.AppendString(append(b, `,"strategy":`...), e.Strategy)
	}
	b = jsonx.AppendString(append(b, `,"state":`...), e.State)
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(e.Attempts), 10)
	b = strconv.AppendInt(append(b, `,"createdAt":`...), e.CreatedAt, 10)
	b = appendInt(b, `,"expiresAt":`, e.ExpiresAt)
	b = appendInt(b, `,"nextAttemptAt":`, e.NextAttemptAt)
	b = appendInt(b, `,"finishedAt":`, e.FinishedAt)
	var err error
	if e.LastError != nil {
		if b, err = appendValue(append(b, `,"lastError":`...), e.LastError); err != nil {
			return nil, err
		}
	}
	if e.Result != nil {
		b = append(b, `,"result":`...)
		if appendResult != nil {
			b, err = appendResult(b, e.Result)
		} else {
			b, err = appendValue(b, e.Result)
		}
		if err != nil {
			return nil, err
		}
	}
	if b, err = appendValue(append(b, `,"message":`...), e.Message); err != nil {
		return nil, err
	}
	b = appendInt(b, `,"timeoutMs":`, int64(e.TimeoutMs))
	b = appendInt(b, `,"ttlMs":`, int64(e.TTLMs))
	b = appendInt(b, `,"peerAttempts":`, int64(e.PeerAttempts))
	if e.Stream != "" {
		b = jsonx.AppendString(append(b, `,"stream":`...), e.Stream)
	}
	return append(b, '}'), nil
}

// appendInt appends an omitempty integer field: key and n unless n is 0.
func appendInt(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

// appendValue appends v's JSON encoding: an appender's own, otherwise
// json.Marshal's.
func appendValue(b []byte, v any) ([]byte, error) {
	if a, ok := v.(appender); ok {
		return a.AppendJSON(b)
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}
