package federation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentfed/agentfed/gateway"
)

// outcomeSeeds are outcomes as appendJSON writes them, as an older build
// may have written them, and malformed or mistyped ones.
var outcomeSeeds = []string{
	`{"messageId":"m-1","state":"delivered","reply":{"messageId":"r","fromAgent":"echo","type":"response","content":"x\u00e9\"","context":{"a":[1,null]},"timestamp":1}}`,
	`{"messageId":"m-2","state":"failed","error":{"code":"INTERNAL","message":"bad","details":{"n":[1.5]},"retryable":true,"retryAfterMs":5}}`,
	`{"messageId":"m-3","state":"dead","error":{"code":"TIMEOUT","message":"slow"},"deliveries":5,"request":{"targetAgent":"a","message":{"messageId":"m-3"}}}`,
	`null`, `{}`, ``, `1`, `"x"`, `[]`, `{} x`, `{"messageId":"a"`, `{"a" 1}`,
	`{"messageId":null,"state":null,"reply":null,"error":null,"deliveries":null,"request":null}`,
	`{"MESSAGEID":"a","ſtate":"dead","Deliveries":2,"REQUEST":[1, 2],"unknown":{"x":[{}]}}`,
	`{"reply":{"content":"a"},"reply":{"fromAgent":"b"},"error":{"code":"A"},"error":{"message":"m"},"request":1,"request":"s"}`,
	`{"reply":{"content":"a"},"reply":null}`, `{"reply":"x"}`, `{"reply":{"timestamp":"1"}}`, `{"error":"x"}`,
	`{"error":{"code":1}}`, `{"deliveries":1.5}`, `{"deliveries":"1"}`, `{"deliveries":9223372036854775808}`,
	`{"state":5}`, `{"messageId":["a"]}`, ` { "request" : { "a" : [ 1 , 2 ] } , "state" : "delivered" } `,
	"{\"messageId\":\"\xff\\ud800 \\u00e9\"}",
}

// checkOutcome decodes data with natsOutcome.decode and with
// json.Unmarshal and fails unless both refuse it or both decode the same.
func checkOutcome(t *testing.T, data []byte) { checkDecode(t, data, (*natsOutcome).decode) }

// checkDecode decodes data into a T with decode and with json.Unmarshal
// and fails unless both refuse it or both decode the same.
func checkDecode[T any](t *testing.T, data []byte, decode func(*T, []byte) error) {
	t.Helper()
	var got, want T
	werr := json.Unmarshal(data, &want)
	input := bytes.Clone(data)
	err := decode(&got, input)
	clear(input) // what was decoded must not share the input's memory
	if (err == nil) != (werr == nil) {
		t.Fatalf("decode %q:\ndecode         %+v, %v\njson.Unmarshal %+v, %v", data, got, err, want, werr)
	}
	if diff := cmp.Diff(want, got); err == nil && diff != "" {
		t.Fatalf("decode %q differs from json.Unmarshal (-want +got):\n%s", data, diff)
	}
}

// checkBatch splits data with splitOutcomes and with json.Unmarshal into
// a []json.RawMessage and fails unless both refuse it or both find the
// same outcomes; then it checks each of those.
func checkBatch(t *testing.T, data []byte) {
	t.Helper()
	got, err := splitOutcomes(data)
	var want []json.RawMessage
	werr := json.Unmarshal(data, &want)
	if (err == nil) != (werr == nil) || err == nil && len(got) != len(want) {
		t.Fatalf("split %q:\nsplitOutcomes  %q, %v\njson.Unmarshal %q, %v", data, got, err, want, werr)
	}
	if err != nil {
		return
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("split %q: outcome %d is %q; json.Unmarshal found %q", data, i, got[i], want[i])
		}
		checkOutcome(t, got[i])
	}
}

// batchSeeds puts the outcome seeds in batches: each alone, all together,
// and malformed batches.
func batchSeeds(t testing.TB) []string {
	outs := []*natsOutcome{
		{MessageID: "m-1", State: StateDelivered, Reply: &Message{MessageID: "r", Type: TypeResponse, Content: "x <&> \xff",
			Context: map[string]any{"k": []any{"v", 2.5}}, Sealed: &Sealed{Suite: "s", Ciphertext: "c"}, Timestamp: 7}},
		{MessageID: "m-2", State: StateFailed, Error: gateway.NewError(gateway.CodeInternal, "no")},
		{MessageID: "m-3", State: StateDead, Deliveries: 3, Request: json.RawMessage(`{"targetAgent":"a"}`)},
	}
	var encoded []string
	for _, o := range outs {
		b, err := o.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, string(b))
	}
	var valid []string
	for _, s := range append(encoded, outcomeSeeds...) {
		if json.Valid([]byte(s)) {
			valid = append(valid, s)
		}
	}
	seeds := []string{"[" + strings.Join(valid, ",") + "]", `null`, `[]`, ``, `{}`, `[1,]`, `[{}`, `[{} {}]`, `[] []`,
		` [ null , 1 , "x" , [ ] ] `, `["\x"]`}
	for _, s := range append(encoded, outcomeSeeds...) {
		seeds = append(seeds, "["+s+"]")
	}
	return seeds
}

// TestOutcomeDecodeIsJSONUnmarshal: a batch of outcomes is split, and each
// outcome decoded, as json.Unmarshal did it: the same outcomes from what
// a receiver writes, the same refusals of what it should not have.
func TestOutcomeDecodeIsJSONUnmarshal(t *testing.T) {
	for _, seed := range batchSeeds(t) {
		checkBatch(t, []byte(seed))
	}
	for _, seed := range outcomeSeeds {
		checkOutcome(t, []byte(seed))
	}
}

// TestOutcomeBatchRefusals: a batch that is not a JSON array is refused
// whole, none of its outcomes applied; an outcome that does not decode is
// refused alone, the others in its batch applied.
func TestOutcomeBatchRefusals(t *testing.T) {
	n := newUnstartedNode(t)
	h := &natsHolds{n: n, wake: make(chan struct{}, 1), pending: map[string]*OutboxEntry{}, batch: &holdBatch{done: make(chan struct{})}}
	l := &natsLink{durable: &natsDurable{holds: h}}
	for _, id := range []string{"m-1", "m-2", "m-3"} {
		h.hold(&OutboxEntry{MessageID: id, PeerID: "worker@site-r", State: StateQueued, Stream: "AF_DURABLE_site-r"})
	}
	failed := func(id string) string {
		return fmt.Sprintf(`{"messageId":%q,"state":"failed","error":{"code":"INTERNAL","message":"x"}}`, id)
	}
	b := &outcomeBatch{entries: map[string]*OutboxEntry{}}
	err := n.keepOutcomeBatch(l, b, "af.result.main.site-r", []byte(`[`+failed("m-1")+`,{"messageId":"m-2","state":7},`+failed("m-3")+` x]`))
	if err == nil || len(b.entries) != 0 {
		t.Fatalf("malformed batch: %v, %d entries finished; want refused whole", err, len(b.entries))
	}
	err = n.keepOutcomeBatch(l, b, "af.result.main.site-r", []byte(`[`+failed("m-1")+`,{"messageId":"m-2","state":7},`+failed("m-3")+`]`))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"m-1": true, "m-2": false, "m-3": true} {
		if e := b.entries[id]; (e != nil && e.State == StateFailed) != want {
			t.Errorf("entry %s after a batch with a mistyped outcome for m-2: %+v; finished want %v", id, e, want)
		}
	}
}

// FuzzOutcomeDecode holds splitOutcomes and natsOutcome.decode to
// json.Unmarshal over arbitrary batches.
func FuzzOutcomeDecode(f *testing.F) {
	for _, seed := range batchSeeds(f) {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBatch(t, data)
	})
}

// BenchmarkDurableOutcomesDecode compares the decoding of a batch of 64
// delivered outcomes, each with an echo reply, with encoding/json's.
func BenchmarkDurableOutcomesDecode(b *testing.B) {
	reply := &Message{MessageID: "b7e0c4d2-1a9f-4e6b-8c3d-5f2a7e9b1c04", FromAgent: "echo", FromServer: "site-r", ToAgent: "operator",
		Type: TypeResponse, Content: "Please research the latest developments in quantum computing",
		Context:       map[string]any{"session": "s-9", "step": 2.0, "received": map[string]any{"messageId": "3f1c2a9e", "type": "request"}},
		CorrelationID: "research-task-001", Priority: PriorityHigh, Timestamp: 1795550899377}
	data := []byte{'['}
	for i := range 64 {
		if i > 0 {
			data = append(data, ',')
		}
		var err error
		if data, err = (&natsOutcome{MessageID: fmt.Sprintf("019ae5c4-7d21-7c3e-9a51-%012d", i), State: StateDelivered, Reply: reply}).appendJSON(data); err != nil {
			b.Fatal(err)
		}
	}
	data = append(data, ']')
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var outs []json.RawMessage
			if err := json.Unmarshal(data, &outs); err != nil {
				b.Fatal(err)
			}
			for _, raw := range outs {
				var o natsOutcome
				if err := json.Unmarshal(raw, &o); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("jsonx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			outs, err := splitOutcomes(data)
			if err != nil {
				b.Fatal(err)
			}
			for _, raw := range outs {
				var o natsOutcome
				if err := o.decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
