package federation

import (
	"encoding/json"
	"testing"

	"github.com/agentfed/agentfed/gateway"
)

// TestNATSAnswerEncode holds natsAnswer.appendJSON to json.Marshal's
// bytes: HTML-escaped, in the fields' order, empty fields left out.
func TestNATSAnswerEncode(t *testing.T) {
	reply := &Message{MessageID: "m-1", FromAgent: "echo", FromServer: "site-a", ToAgent: "ops", Type: TypeResponse,
		Content: "<b>R&D</b> \u2028 \"ok\" é \x01", CorrelationID: "c-1", Timestamp: 1700000000000,
		Context: map[string]any{"k": []any{1.5, "<v>", nil, true}, "n": map[string]any{}}}
	retry := gateway.NewError(CodeOverloaded, "busy <now> & later")
	retry.Retryable = true
	for _, a := range []natsAnswer{
		{},
		{OK: true, Payload: reply},
		{OK: true, Payload: &Message{MessageID: "m-2", Type: TypeResponse}},
		{Error: retry},
		{Error: gateway.NewError(gateway.CodeInternal, "")},
	} {
		want, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.appendJSON(nil)
		if err != nil || string(got) != string(want) {
			t.Errorf("appendJSON(%+v) =\n%s, %v\nwant json.Marshal's\n%s", a, got, err, want)
		}
	}
}

var answerSeeds = []string{
	`{"ok":true,"payload":{"messageId":"r","fromAgent":"echo","type":"response","content":"x\u00e9\"","context":{"a":[1,null]},"timestamp":1}}`,
	`{"ok":false,"error":{"code":"OVERLOADED","message":"busy","details":{"n":[1.5]},"retryable":true,"retryAfterMs":5}}`,
	`null`, `{}`, ``, `1`, `"x"`, `[]`, `{} x`, `{"ok":true`, `{"a" 1}`, `{"ok":1}`, `{"ok":"true"}`,
	`{"ok":null,"payload":null,"error":null}`, `{"OK":true,"PayLoad":{"content":"a"},"unknown":{"x":[{}]}}`,
	`{"payload":{"content":"a"},"payload":{"fromAgent":"b"},"error":{"code":"A"},"error":{"message":"m"}}`,
	`{"payload":{"content":"a"},"payload":null}`, `{"payload":"x"}`, `{"payload":{"timestamp":"1"}}`, `{"error":"x"}`,
	`{"error":{"code":1}}`, ` { "ok" : true , "payload" : { "context" : { "a" : [ 1 , 2 ] } } } `,
	"{\"payload\":{\"content\":\"\xff\\ud800 \\u00e9\"}}",
}

// checkAnswer decodes data with natsAnswer.decode and with json.Unmarshal
// and fails unless both refuse it or both decode the same.
func checkAnswer(t *testing.T, data []byte) { checkDecode(t, data, (*natsAnswer).decode) }

// TestNATSAnswerDecodeIsJSONUnmarshal: natsAnswer.decode refuses what
// json.Unmarshal refuses and decodes the rest alike.
func TestNATSAnswerDecodeIsJSONUnmarshal(t *testing.T) {
	for _, seed := range answerSeeds {
		checkAnswer(t, []byte(seed))
	}
}

// FuzzNATSAnswerDecode holds natsAnswer.decode to json.Unmarshal over
// arbitrary answers.
func FuzzNATSAnswerDecode(f *testing.F) {
	for _, seed := range answerSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAnswer(t, data)
	})
}
