package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

// TestReplayRefusedAfterKill9: messages a gateway accepted, from a
// credentialed peer and from one without credentials, are refused when
// replayed verbatim after the gateway was killed with SIGKILL and
// restarted; new messages are served again within a second or so.
func TestReplayRefusedAfterKill9(t *testing.T) {
	cfg := writeFile(t, "victim.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: victim}
gateway:
  auth:
    peers:
      - {serverId: main, token: main-token}
agents:
  - {id: echo, handler: {type: echo}}
storage: {dir: %q}
`, t.TempDir()))
	dial := func(s *server, name, token string) *gateway.Client {
		c, err := gateway.Dial(context.Background(), s.URL, &gateway.DialOptions{Role: gateway.RolePeer, Token: token,
			Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack, InstanceID: name}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	relay := func(c *gateway.Client, m *federation.Message) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: "echo", Message: m}, nil)
	}
	victim := serve(t, "--config", cfg)
	captured := map[string]*federation.Message{
		"main": federation.NewMessage(federation.TypeRequest, "main", "a", "echo", "run once"),
		"anon": federation.NewMessage(federation.TypeRequest, "anon", "a", "echo", "run once"),
	}
	for name, m := range captured {
		if err := relay(dial(victim, name, map[string]string{"main": "main-token"}[name]), m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	victim.Stop(t, syscall.SIGKILL)
	victim = serve(t, "--config", cfg)
	for name, m := range captured {
		c := dial(victim, name, map[string]string{"main": "main-token"}[name])
		if err := relay(c, m); gateway.CodeOf(err) != federation.CodeReplayed {
			t.Errorf("%s's message replayed after SIGKILL: %v; want REPLAYED", name, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := relay(c, federation.NewMessage(federation.TypeRequest, name, "a", "echo", "new"))
			if err == nil {
				break
			}
			if gateway.CodeOf(err) != federation.CodeReplayed || time.Now().After(deadline) {
				t.Fatalf("%s: a new message after the restart: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond) // the refusal lasts until the sender's clock passes the floor
		}
	}
}
