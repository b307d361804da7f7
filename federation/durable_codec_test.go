package federation

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/agentfed/agentfed/gateway"
)

// The hand-written encodings write what json.Marshal writes, so a sender
// or a store of an older agentfed reads them the same.
func TestDurableRecordsEncodeAsJSONMarshal(t *testing.T) {
	reply := &Message{MessageID: "m-1", FromAgent: "echo", FromServer: "peer", ToAgent: "a<b>", Type: "response",
		Content: "x & \u2028 \xff \"q\"", Context: map[string]any{"k": []any{1.5, "<v>", nil}}, CorrelationID: "c",
		Priority: "high", Timestamp: 1700000000000, Hops: 2, Path: []string{"p"}, Route: []string{"r1", "r2"},
		Sealed: &Sealed{Suite: "s", To: "t", Enc: "e", ReplyKey: "rk", Ciphertext: "ct"}, Signature: "sig"}
	outcomes := []*natsOutcome{
		{MessageID: "m-1", State: StateDelivered, Reply: reply},
		{MessageID: "m-2", State: StateDelivered, Reply: &Message{}},
		{MessageID: "m-3", State: StateFailed, Error: &gateway.Error{Code: "X", Message: "bad <input>", Details: map[string]any{"n": 1}, Retryable: true, RetryAfterMs: 5}},
		{MessageID: "m-4", State: StateDead, Error: gateway.NewError("TIMEOUT", "slow"), Deliveries: 5,
			Request: json.RawMessage(` {"targetAgent": "a<b>", "message": {"messageId": "m-4"}} `)},
		{MessageID: "m-\u00e9", State: "odd"},
	}
	for _, o := range outcomes {
		want, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.appendJSON([]byte("prefix"))
		if err != nil {
			t.Fatalf("outcome %s: %v", o.MessageID, err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("outcome %s:\n got %s\nwant prefix%s", o.MessageID, got, want)
		}
	}
	for _, e := range []processedEntry{{At: 1, Reply: reply}, {At: -7}, {At: 1 << 50, Reply: &Message{MessageID: "m"}}} {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.appendJSON(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("processed record:\n got %s (%v)\nwant %s", got, err, want)
		}
	}
	bad := &natsOutcome{MessageID: "m", State: StateDead, Request: json.RawMessage(`{"unclosed"`)}
	if got, err := bad.appendJSON([]byte("keep")); err == nil || string(got) != "keep" {
		t.Errorf("invalid request: got %q, %v; want dst unchanged and an error", got, err)
	}
}
