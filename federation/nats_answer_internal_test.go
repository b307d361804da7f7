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
