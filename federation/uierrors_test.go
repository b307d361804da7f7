package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// TestDashboardOutboxErrorReadsOnce: the dashboard shows an outbox entry's
// last error as "CODE: message", so the message leaves out the sentinel
// words that restate the code ("federation: peer unavailable: ...").
func TestDashboardOutboxErrorReadsOnce(t *testing.T) {
	a, b, _ := uiGateways(t)
	self := "http://" + a.Addr().String()
	c := &uiClient{t: t, base: self, origin: self}
	res, _ := c.login(uiToken)
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	c.cookie = res.Cookies()[0]

	b.stop(t)
	r, err := a.Send(context.Background(), federation.SendRequest{PeerID: "b", Message: "to a stopped peer",
		MessageOptions: federation.MessageOptions{Durable: true}})
	if err != nil {
		t.Fatal(err)
	}
	var last struct{ Code, Message string }
	tstest.WaitFor(t, 10*time.Second, func() error {
		_, body := c.do(http.MethodGet, "/ui/api/state", "", "")
		var state struct {
			Outbox []struct {
				MessageID string `json:"messageId"`
				LastError *struct{ Code, Message string }
			} `json:"outbox"`
		}
		if err := json.Unmarshal([]byte(body), &state); err != nil {
			return err
		}
		for _, m := range state.Outbox {
			if m.MessageID == r.MessageID && m.LastError != nil {
				last = *m.LastError
				return nil
			}
		}
		return fmt.Errorf("no last error for %s yet: %s", r.MessageID, body)
	})
	if last.Code == "" || last.Message == "" || strings.Contains(last.Message, "federation: ") {
		t.Fatalf("lastError = %+v; want a code and a message that does not restate it", last)
	}
}
