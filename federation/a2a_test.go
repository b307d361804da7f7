package federation_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/a2aproject/a2a-go/v2/a2acompat/a2av0"
	"github.com/agentfed/agentfed/federation"
)

// a2aGateway serves an echo agent "echo" (capability "text") and a
// second agent, with one gateway.auth.peers entry allowed only "echo".
func a2aGateway(t *testing.T) *gw {
	t.Helper()
	cfg := newConfig(t, "main", "echo", "text")
	cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "other", Capabilities: []string{"x"}, Handler: federation.HandlerConfig{Type: "echo"}})
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a2a-caller", Token: "good-token", AllowAgents: []string{"echo"}, MaxMessageBytes: 4096}}
	return start(t, cfg, listen(t), nil)
}

// a2aClient resolves g's card for agent and connects a2a-go's client
// with token over transport.
func a2aClient(t *testing.T, g *gw, agent, token string, transport a2a.TransportProtocol) *a2aclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Transport: bearer{token, http.DefaultTransport.(*http.Transport).Clone()}}
	t.Cleanup(hc.CloseIdleConnections)
	base := "http://" + g.Addr().String() + federation.A2APath + agent
	card, err := agentcard.NewResolver(hc).Resolve(ctx, base)
	if err != nil {
		t.Fatalf("resolve card at %s: %v", base, err)
	}
	c, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(hc), a2aclient.WithRESTTransport(hc),
		a2aclient.WithConfig(a2aclient.Config{PreferredTransports: []a2a.TransportProtocol{transport}}))
	if err != nil {
		t.Fatalf("client for %s: %v", base, err)
	}
	t.Cleanup(func() { c.Destroy() })
	return c
}

func replyText(t *testing.T, res a2a.SendMessageResult) string {
	t.Helper()
	task, ok := res.(*a2a.Task)
	if !ok {
		t.Fatalf("result %T, want a task", res)
	}
	if task.Status.State != a2a.TaskStateCompleted || task.Status.Message == nil {
		t.Fatalf("task state %q, message %v", task.Status.State, task.Status.Message)
	}
	var b strings.Builder
	for _, p := range task.Status.Message.Parts {
		b.WriteString(p.Text())
	}
	return b.String()
}

func TestA2AServeSendMessage(t *testing.T) {
	g := a2aGateway(t)
	for _, tr := range []a2a.TransportProtocol{a2a.TransportProtocolJSONRPC, a2a.TransportProtocolHTTPJSON} {
		t.Run(string(tr), func(t *testing.T) {
			c := a2aClient(t, g, "echo", "good-token", tr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("hello over "+string(tr)))
			res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
			if err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
			if got := replyText(t, res); !strings.Contains(got, "hello over "+string(tr)) {
				t.Fatalf("reply %q does not echo the message", got)
			}
			task := res.(*a2a.Task)
			got, err := c.GetTask(ctx, &a2a.GetTaskRequest{ID: task.ID})
			if err != nil || got.Status.State != a2a.TaskStateCompleted {
				t.Fatalf("GetTask %s: %v, %v", task.ID, got, err)
			}
			list, err := c.ListTasks(ctx, &a2a.ListTasksRequest{})
			if err != nil || len(list.Tasks) == 0 {
				t.Fatalf("ListTasks: %v, %v", list, err)
			}
		})
	}
}

func TestA2AServeStreaming(t *testing.T) {
	g := a2aGateway(t)
	c := a2aClient(t, g, "echo", "good-token", a2a.TransportProtocolJSONRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var states []a2a.TaskState
	for ev, err := range c.SendStreamingMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("streamed"))}) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		switch e := ev.(type) {
		case *a2a.Task:
			states = append(states, e.Status.State)
		case *a2a.TaskStatusUpdateEvent:
			states = append(states, e.Status.State)
		}
	}
	want := []a2a.TaskState{a2a.TaskStateSubmitted, a2a.TaskStateWorking, a2a.TaskStateCompleted}
	if strings.Join(stateNames(states), ",") != strings.Join(stateNames(want), ",") {
		t.Fatalf("events %v, want %v in order", states, want)
	}
}

func stateNames(s []a2a.TaskState) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

func TestA2AServeRefusals(t *testing.T) {
	cfg := newConfig(t, "main", "echo", "text")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{
		{ServerID: "a2a-caller", Token: "good-token", AllowAgents: []string{"echo"}, MaxMessageBytes: 4096},
		{ServerID: "slow-caller", Token: "slow-token", RatePerSec: 0.001}}
	cfg.Agents = append(cfg.Agents, federation.AgentConfig{ID: "other", Capabilities: []string{"x"}, Handler: federation.HandlerConfig{Type: "echo"}})
	g := start(t, cfg, listen(t), nil)
	tests := []struct {
		name, agent, token string
		status             int
	}{
		{"no token", "echo", "", http.StatusUnauthorized},
		{"bad token", "echo", "wrong", http.StatusUnauthorized},
		{"agent outside allowAgents", "other", "good-token", http.StatusForbidden},
		{"unknown agent", "nobody", "good-token", http.StatusNotFound},
		{"over maxMessageBytes", "echo", "good-token", 0},
		{"over ratePerSec", "echo", "slow-token", http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "hi"
			if tt.status == 0 {
				text = strings.Repeat("x", 5000)
			}
			body := `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"` + text + `"}]}}}`
			req, _ := http.NewRequest("POST", "http://"+g.Addr().String()+federation.A2APath+tt.agent, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if tt.token == "slow-token" { // its burst first
				for range 10 {
					r, _ := http.NewRequest("POST", req.URL.String(), strings.NewReader(body))
					r.Header = req.Header.Clone()
					if resp, err := http.DefaultClient.Do(r); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.status == 0 { // JSON-RPC answers 200 with an error
				if !strings.Contains(string(b), `"error"`) || strings.Contains(string(b), `"result"`) {
					t.Fatalf("oversized request answered %s", b)
				}
				return
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestA2AServeCards(t *testing.T) {
	g := a2aGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	card, err := agentcard.DefaultResolver.Resolve(ctx, "http://"+g.Addr().String())
	if err != nil {
		t.Fatalf("gateway card: %v", err)
	}
	if card.Name != "echo" || len(card.Skills) != 1 || card.Skills[0].ID != "text" {
		t.Fatalf("gateway card %s with skills %v, want echo with skill text", card.Name, card.Skills)
	}
	if _, ok := card.SecuritySchemes["bearer"]; !ok || len(card.SupportedInterfaces) != 2 {
		t.Fatalf("card schemes %v, interfaces %d: want bearer and 2", card.SecuritySchemes, len(card.SupportedInterfaces))
	}
	// A browser page is refused by the listener's guard, like /mcp.
	req, _ := http.NewRequest("GET", "http://"+g.Addr().String()+"/.well-known/agent-card.json", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: status %d, want 403", resp.StatusCode)
	}
}

func TestA2AServeRepeatedMessageIDRunsOnce(t *testing.T) {
	cfg := newConfig(t, "main", "counter", "text")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a2a-caller", Token: "good-token"}}
	var runs atomic.Int32
	g := start(t, cfg, listen(t), map[string]federation.Handler{"counter": federation.HandlerFunc(
		func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
			runs.Add(1)
			return &federation.Answer{Content: "ran"}, nil
		})})
	c := a2aClient(t, g, "counter", "good-token", a2a.TransportProtocolJSONRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("once"))
	var ids []a2a.TaskID
	for range 2 {
		res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		replyText(t, res)
		ids = append(ids, res.(*a2a.Task).ID)
	}
	if runs.Load() != 1 || ids[0] != ids[1] {
		t.Fatalf("agent ran %d times, tasks %v: want once, one task", runs.Load(), ids)
	}
}

func TestA2AServeCancelReachesAgent(t *testing.T) {
	cfg := newConfig(t, "main", "slow", "text")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a2a-caller", Token: "good-token"}}
	started, canceled := make(chan struct{}), make(chan struct{})
	g := start(t, cfg, listen(t), map[string]federation.Handler{"slow": federation.HandlerFunc(
		func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
			close(started)
			<-ctx.Done()
			close(canceled)
			return nil, ctx.Err()
		})})
	c := a2aClient(t, g, "slow", "good-token", a2a.TransportProtocolJSONRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("wait")),
		Config: &a2a.SendMessageConfig{ReturnImmediately: true}})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	<-started
	task, err := c.CancelTask(ctx, &a2a.CancelTaskRequest{ID: res.(*a2a.Task).ID})
	if err != nil {
		t.Fatalf("CancelTask: %v", err)
	}
	if task.Status.State != a2a.TaskStateCanceled {
		t.Fatalf("task state %q, want canceled", task.Status.State)
	}
	select {
	case <-canceled:
	case <-ctx.Done():
		t.Fatal("the agent's context was not canceled")
	}
}

// TestA2AServeV03Clients: a2a-go's A2A 0.3 client transports, from the
// agent's 0.3 card, over JSON-RPC and HTTP+JSON.
func TestA2AServeV03Clients(t *testing.T) {
	g := a2aGateway(t)
	hc := &http.Client{Transport: bearer{"good-token", http.DefaultTransport.(*http.Transport).Clone()}}
	t.Cleanup(hc.CloseIdleConnections)
	base := "http://" + g.Addr().String() + federation.A2APath + "echo/v0.3"
	for _, tr := range []a2a.TransportProtocol{a2a.TransportProtocolJSONRPC, a2a.TransportProtocolHTTPJSON} {
		t.Run(string(tr), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			card, err := (&agentcard.Resolver{Client: hc, CardParser: a2av0.NewAgentCardParser()}).Resolve(ctx, base)
			if err != nil {
				t.Fatalf("resolve the 0.3 card at %s: %v", base, err)
			}
			only := a2av0.WithJSONRPCTransport(a2av0.JSONRPCTransportConfig{Client: hc}) // this transport and no other
			if tr == a2a.TransportProtocolHTTPJSON {
				only = a2av0.WithRESTTransport(a2av0.RESTTransportConfig{Client: hc})
			}
			c, err := a2aclient.NewFromCard(ctx, card, only)
			if err != nil {
				t.Fatalf("0.3 client over %s: %v", tr, err)
			}
			defer c.Destroy()
			res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("from 0.3 over "+string(tr)))})
			if err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
			if got := replyText(t, res); !strings.Contains(got, "from 0.3 over "+string(tr)) {
				t.Fatalf("reply %q does not echo the message", got)
			}
			if _, err := c.GetTask(ctx, &a2a.GetTaskRequest{ID: res.(*a2a.Task).ID}); err != nil {
				t.Fatalf("GetTask over 0.3 %s: %v", tr, err)
			}
		})
	}
}

// A Go agent may put any JSON-encodable value in its answer's context,
// not only what decoding JSON gives (map[string]any, []any): A2A callers
// get it as they would over the wire.
func TestA2AServeGoContextValues(t *testing.T) {
	cfg := newConfig(t, "main", "tagger", "text")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a2a-caller", Token: "good-token"}}
	tagger := federation.HandlerFunc(func(ctx context.Context, msg *federation.Message) (*federation.Answer, error) {
		type score struct{ Name string }
		return &federation.Answer{Content: "tagged", Context: map[string]any{
			"tags": []string{"a", "b"}, "counts": map[string]int{"a": 1}, "best": score{"x"}}}, nil
	})
	g := start(t, cfg, listen(t), map[string]federation.Handler{"tagger": tagger})
	c := a2aClient(t, g, "tagger", "good-token", a2a.TransportProtocolJSONRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("tag this"))})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if got := replyText(t, res); got != "tagged" {
		t.Fatalf("reply %q, want tagged", got)
	}
	got, err := json.Marshal(res.(*a2a.Task).Status.Message.Metadata["context"])
	if want := `{"best":{"Name":"x"},"counts":{"a":1},"tags":["a","b"]}`; err != nil || string(got) != want {
		t.Fatalf("context in the reply's metadata = %s, %v; want %s", got, err, want)
	}
}
