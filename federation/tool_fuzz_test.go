package federation_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// FuzzToolInput feeds arbitrary action objects to the tool. It must never
// panic, and every refusal must carry a stable code other than INTERNAL.
// Dynamic peers are limited to 127.0.0.1, so nothing the fuzzer registers
// is ever dialled off this machine.
func FuzzToolInput(f *testing.F) {
	for _, seed := range []string{
		`{"action":"list_peers"}`,
		`{"action":"send","peerId":"p","message":"hi","priority":"high","context":{"a":[1,{"b":null}]}}`,
		`{"action":"delegate","requiredCapabilities":["x"],"task":"t","strategy":"random"}`,
		`{"action":"broadcast","message":"m","durable":true,"ttlMs":1}`,
		`{"action":"register_peer","peerId":"d","peerName":"D","peerUrl":"ws://127.0.0.1:1","peerAgentId":"a"}`,
		`{"action":"unregister_peer","peerId":"d"}`,
		`{"action":"sync_context","peerId":"p","syncData":{"k":"v"}}`,
		`{"action":"query_capabilities","peerId":"p","timeoutMs":1}`,
		`{"action":7}`, `[]`, `null`, `{"action":"send","peerId":{}}`, `{"action":"send","timeoutMs":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	cfg := &federation.Config{}
	cfg.Federation.Enabled = true
	cfg.Federation.ServerID = "fuzz"
	cfg.Federation.DefaultTimeoutMs = 50
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "p", Name: "P", URL: "ws://127.0.0.1:1", AgentID: "a", Capabilities: []string{"x"}}}
	cfg.Gateway.DynamicPeerHosts = []string{"127.0.0.1"}
	cfg.Storage.Dir = f.TempDir()
	cfg.ApplyDefaults()
	n, err := federation.New(cfg, federation.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	tool := n.Tool()
	f.Fuzz(func(t *testing.T, input []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := tool.CallJSON(ctx, input)
		if c := gateway.CodeOf(err); err != nil && c == gateway.CodeInternal {
			t.Fatalf("input %q: an error without a stable code: %v", input, err)
		}
	})
}
