package federation_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
)

// blockingAgent counts its runs; a message "block" waits until its
// context ends or release is closed, telling started first.
type blockingAgent struct {
	runs    atomic.Int32
	started chan string // the content of each run
	release chan struct{}
}

func newBlockingAgent() *blockingAgent {
	return &blockingAgent{started: make(chan string, 16), release: make(chan struct{})}
}

func (b *blockingAgent) handlers(id string) map[string]federation.Handler {
	return map[string]federation.Handler{id: federation.HandlerFunc(
		func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
			b.runs.Add(1)
			b.started <- m.Content
			if m.Content == "block" {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-b.release:
				}
			}
			return &federation.Answer{Content: "done: " + m.Content}, nil
		})}
}

func a2aWorkerConfig(t *testing.T) *federation.Config {
	cfg := newConfig(t, "main", "worker", "text")
	cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "a2a-caller", Token: "good-token"}}
	return cfg
}

func TestA2ATasksSurviveRestart(t *testing.T) {
	cfg := a2aWorkerConfig(t)
	agent := newBlockingAgent()
	g1 := start(t, cfg, listen(t), agent.handlers("worker"))
	c1 := a2aClient(t, g1, "worker", "good-token", a2a.TransportProtocolJSONRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("first"))
	res, err := c1.SendMessage(ctx, &a2a.SendMessageRequest{Message: first})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	<-agent.started
	done := res.(*a2a.Task)
	res, err = c1.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("block")),
		Config: &a2a.SendMessageConfig{ReturnImmediately: true}})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	<-agent.started
	running := res.(*a2a.Task)

	g1.stop(t)
	g2 := start(t, cfg, listen(t), agent.handlers("worker"))
	c2 := a2aClient(t, g2, "worker", "good-token", a2a.TransportProtocolJSONRPC)

	got, err := c2.GetTask(ctx, &a2a.GetTaskRequest{ID: done.ID})
	if err != nil {
		t.Fatalf("GetTask %s after a restart: %v", done.ID, err)
	}
	if got.Status.State != a2a.TaskStateCompleted || a2aTextOf(got.Status.Message) != "done: first" || len(got.History) == 0 {
		t.Fatalf("finished task after a restart: state %s, reply %q, history %d", got.Status.State, a2aTextOf(got.Status.Message), len(got.History))
	}
	got, err = c2.GetTask(ctx, &a2a.GetTaskRequest{ID: running.ID})
	if err != nil {
		t.Fatalf("GetTask %s after a restart: %v", running.ID, err)
	}
	if got.Status.State != a2a.TaskStateFailed || !strings.HasPrefix(a2aTextOf(got.Status.Message), "INTERRUPTED") {
		t.Fatalf("task in flight at the restart: state %s, message %q; want failed, INTERRUPTED", got.Status.State, a2aTextOf(got.Status.Message))
	}
	list, err := c2.ListTasks(ctx, &a2a.ListTasksRequest{})
	if err != nil || len(list.Tasks) != 2 || list.Tasks[0].ID != running.ID || list.Tasks[1].ID != done.ID {
		t.Fatalf("ListTasks after a restart: %v, %v; want the 2 tasks, latest first", list, err)
	}

	// The same message again, after the restart: the same task, not a second run.
	res, err = c2.SendMessage(ctx, &a2a.SendMessageRequest{Message: first})
	if err != nil {
		t.Fatalf("SendMessage again: %v", err)
	}
	if res.(*a2a.Task).ID != done.ID || agent.runs.Load() != 2 {
		t.Fatalf("repeated message after a restart: task %s (want %s), agent runs %d (want 2)", res.(*a2a.Task).ID, done.ID, agent.runs.Load())
	}
}

func TestA2ATasksOtherCallerNotFound(t *testing.T) {
	cfg := a2aWorkerConfig(t)
	cfg.Gateway.Auth.Peers = append(cfg.Gateway.Auth.Peers, federation.PeerCredential{ServerID: "someone-else", Token: "other-token"})
	g := start(t, cfg, listen(t), newBlockingAgent().handlers("worker"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := a2aClient(t, g, "worker", "good-token", a2a.TransportProtocolJSONRPC).SendMessage(ctx,
		&a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("mine"))})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	other := a2aClient(t, g, "worker", "other-token", a2a.TransportProtocolJSONRPC)
	if task, err := other.GetTask(ctx, &a2a.GetTaskRequest{ID: res.(*a2a.Task).ID}); err == nil {
		t.Fatalf("another caller read the task: %v", task.Status)
	}
	if list, err := other.ListTasks(ctx, &a2a.ListTasksRequest{}); err != nil || len(list.Tasks) != 0 {
		t.Fatalf("another caller's ListTasks: %v, %v; want none", list, err)
	}
}

func TestA2ASubscribeToTask(t *testing.T) {
	agent := newBlockingAgent()
	g := start(t, a2aWorkerConfig(t), listen(t), agent.handlers("worker"))
	for _, tr := range []a2a.TransportProtocol{a2a.TransportProtocolJSONRPC, a2a.TransportProtocolHTTPJSON} {
		t.Run(string(tr), func(t *testing.T) {
			c := a2aClient(t, g, "worker", "good-token", tr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("block")),
				Config: &a2a.SendMessageConfig{ReturnImmediately: true}})
			if err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
			<-agent.started
			id := res.(*a2a.Task).ID
			tstest.WaitFor(t, 10*time.Second, func() error { // the working state is stored
				if task, err := c.GetTask(ctx, &a2a.GetTaskRequest{ID: id}); err != nil || task.Status.State != a2a.TaskStateWorking {
					return fmt.Errorf("task %s not working yet: %v", id, err)
				}
				return nil
			})
			var states []a2a.TaskState
			var last string
			for ev, err := range c.SubscribeToTask(ctx, &a2a.SubscribeToTaskRequest{ID: id}) {
				if err != nil {
					t.Fatalf("SubscribeToTask: %v", err)
				}
				switch e := ev.(type) {
				case *a2a.Task:
					states = append(states, e.Status.State)
				case *a2a.TaskStatusUpdateEvent:
					states = append(states, e.Status.State)
					last = a2aTextOf(e.Status.Message)
				}
				if len(states) == 1 {
					agent.release <- struct{}{} // the agent finishes once the subscriber is in
				}
			}
			want := "TASK_STATE_WORKING,TASK_STATE_COMPLETED"
			if got := strings.Join(stateNames(states), ","); got != want || last != "done: block" {
				t.Fatalf("resubscribed events %s, last reply %q; want %s in order, then the reply", got, last, want)
			}
		})
	}
}

// TestA2AShutdownWithStreamOpen: an open A2A event stream (a streaming
// call to an agent that does not answer) does not hold Shutdown.
func TestA2AShutdownWithStreamOpen(t *testing.T) {
	agent := newBlockingAgent()
	g := start(t, a2aWorkerConfig(t), listen(t), agent.handlers("worker"))
	c := a2aClient(t, g, "worker", "good-token", a2a.TransportProtocolJSONRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for _, err := range c.SendStreamingMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("block"))}) {
			if err != nil {
				return
			}
		}
	}()
	<-agent.started
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	begin := time.Now()
	if err := g.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown with an A2A stream open: %v (after %v)", err, time.Since(begin))
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("Shutdown took %v with an A2A stream open", d)
	}
	<-streamDone
}

func a2aTextOf(m *a2a.Message) string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range m.Parts {
		b.WriteString(p.Text())
	}
	return b.String()
}
