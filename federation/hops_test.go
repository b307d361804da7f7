package federation_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// A gateway refuses a relayed message past its federation.maxHops, and one
// whose hops and path disagree, before any agent sees it.
func TestHopLimitOnReceipt(t *testing.T) {
	cfg := newConfig(t, "gw-b", "echo")
	cfg.Federation.MaxHops = 3
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "gw-a", Token: "a-token"}}
	g := start(t, cfg, listen(t), nil)
	c, err := dialPeer(t, g, "gw-a", "a-token")
	if err != nil {
		t.Fatal(err)
	}
	msg := func(hops int64, path ...string) *federation.Message {
		m := federation.NewMessage(federation.TypeRequest, "gw-a", "planner", "echo", "work")
		m.Hops, m.Path = hops, path
		return m
	}
	for _, tt := range []struct {
		name      string
		m         *federation.Message
		code, has string
	}{
		{"below the limit", msg(2, "gw-x", "gw-b", "gw-a"), "", ""},
		{"at the limit", msg(3, "gw-x", "gw-b", "gw-y", "gw-a"), federation.CodeHopLimit,
			`relay 4 along gw-x → gw-b → gw-y → gw-a → gw-b is past federation.maxHops (3) of gateway "gw-b"; the chain loops: gw-b → gw-y → gw-a → gw-b`},
		{"no path", msg(5), federation.CodeHopLimit, `relay 6 along gw-a → gw-b is past federation.maxHops (3)`},
		{"negative", msg(-1), gateway.CodeInvalidParams, "message.hops is -1"},
		{"path too short", msg(2, "gw-a"), gateway.CodeInvalidParams, "message.path names 1 gateways but message.hops is 2"},
		{"path not ending at the sender", msg(1, "gw-a", "gw-x"), gateway.CodeInvalidParams, `message.path must end with its fromServer "gw-a"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := relayMsg(t, c, tt.m, "echo")
			if code(err) != tt.code || err != nil && !strings.Contains(err.Error(), tt.has) {
				t.Errorf("err = %v, want %s with %q", err, tt.code, tt.has)
			}
		})
	}
}

// A peer that refuses messages for their hop count is working: however
// many it refuses, its circuit stays closed.
func TestHopLimitRefusalsKeepTheCircuitClosed(t *testing.T) {
	lnA, lnB := listen(t), listen(t)
	cfgB := newConfig(t, "gw-b", "echo")
	cfgB.Federation.MaxHops = 1 // refuses every message an agent passes on
	start(t, cfgB, lnB, nil)

	cfgA := newConfig(t, "gw-a", "")
	cfgA.Agents = []federation.AgentConfig{{ID: "relay"}}
	cfgA.Federation.Peers = []federation.PeerConfig{peerConf("b", "echo", lnB)}
	cfgA.Gateway.Breaker.Failures = 2
	cfgA.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "gw-c", Token: "c-token", AllowActions: []string{"send"}}}
	// relay passes every message on to b with its tool, and answers with
	// the error code it got.
	relay := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		tool, _ := federation.ToolFor(ctx, []string{"send"})
		out, err := tool.Call(ctx, json.RawMessage(`{"action":"send","peerId":"b","message":"go on"}`))
		if err == nil {
			err = out.(*federation.Result).Err()
		}
		return &federation.Answer{Content: code(err)}, nil
	})
	start(t, cfgA, lnA, map[string]federation.Handler{"relay": relay})

	cfgC := newConfig(t, "gw-c", "")
	cfgC.Federation.Peers = []federation.PeerConfig{peerConf("a", "relay", lnA)}
	cfgC.Federation.Peers[0].Token = "c-token"
	c := start(t, cfgC, listen(t), nil)
	for i := range 3 {
		res, err := c.Send(context.Background(), federation.SendRequest{PeerID: "a", Message: "start"})
		if err != nil || res.Err() != nil {
			t.Fatalf("send %d: %v %v", i, err, res.Err())
		}
		if res.Response.Content != federation.CodeHopLimit {
			t.Fatalf("send %d: the relay agent got %q, want HOP_LIMIT from gw-b (its circuit closed)", i, res.Response.Content)
		}
	}
}
