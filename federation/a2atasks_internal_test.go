package federation

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/agentfed/agentfed/internal/store"
)

func a2aUserCtx(name string) context.Context {
	ctx, cc := a2asrv.NewCallContext(context.Background(), nil)
	cc.User = a2asrv.NewAuthenticatedUser(name, nil)
	return ctx
}

func newA2ATask(id string, state a2a.TaskState, history int) *a2a.Task {
	t := &a2a.Task{ID: a2a.TaskID(id), ContextID: "c", Status: a2a.TaskStatus{State: state}}
	for i := range history {
		t.History = append(t.History, a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(fmt.Sprint(i))))
	}
	return t
}

// TestA2ATaskBounds: past the count bound the oldest finished tasks go
// (running ones stay), history is cut to its last maxA2AHistory
// messages, and after a restart old tasks are dropped, running ones end
// failed, and each agent loads only its own.
func TestA2ATaskBounds(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	ctx := a2aUserCtx("u")
	tasks, err := loadA2ATasks(st, "w", log, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tasks.maxTasks = 3
	create := func(ts *a2aTasks, task *a2a.Task) {
		t.Helper()
		if _, err := ts.Create(ctx, task); err != nil {
			t.Fatalf("Create %s: %v", task.ID, err)
		}
	}
	create(tasks, newA2ATask("running", a2a.TaskStateWorking, 0))
	for i := range 5 {
		create(tasks, newA2ATask(fmt.Sprintf("f%d", i), a2a.TaskStateCompleted, 40))
	}
	other, err := loadA2ATasks(st, "w2", log, time.Now()) // an agent whose id extends w's
	if err != nil {
		t.Fatal(err)
	}
	create(other, newA2ATask("elsewhere", a2a.TaskStateCompleted, 0))

	list, err := tasks.List(ctx, &a2a.ListTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range list.Tasks {
		ids = append(ids, string(task.ID))
	}
	if got := strings.Join(ids, ","); got != "f4,f3,running" {
		t.Fatalf("tasks kept: %s; want f4,f3,running (newest first; the oldest finished ones forgotten)", got)
	}
	page, err := tasks.List(ctx, &a2a.ListTasksRequest{PageSize: 2})
	if err != nil || len(page.Tasks) != 2 || page.NextPageToken == "" || page.TotalSize != 3 {
		t.Fatalf("first page of 2: %v, %+v", err, page)
	}
	page, err = tasks.List(ctx, &a2a.ListTasksRequest{PageSize: 2, PageToken: page.NextPageToken})
	if err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != "running" || page.NextPageToken != "" {
		t.Fatalf("second page: %v, %+v; want the last task, running, and no next page", err, page)
	}
	if _, err := tasks.List(ctx, &a2a.ListTasksRequest{PageToken: "not a token"}); err == nil {
		t.Fatal("a made-up pageToken was accepted")
	}
	got, err := tasks.Get(ctx, "f4")
	if err != nil || len(got.Task.History) != maxA2AHistory || got.Task.History[0].Parts[0].Text() != "8" {
		t.Fatalf("Get f4: %v; history %d messages from %q, want the last %d", err, len(got.Task.History), got.Task.History[0].Parts[0].Text(), maxA2AHistory)
	}
	if _, err := tasks.Get(a2aUserCtx("someone-else"), "f4"); err == nil {
		t.Fatal("another caller got the task")
	}

	restarted, err := loadA2ATasks(st, "w", log, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(restarted.tasks) != 3 {
		t.Fatalf("after a restart %d tasks, want 3", len(restarted.tasks))
	}
	got, err = restarted.Get(ctx, "running")
	if err != nil || got.Task.Status.State != a2a.TaskStateFailed || !strings.HasPrefix(got.Task.Status.Message.Parts[0].Text(), "INTERRUPTED") {
		t.Fatalf("a task running at the restart: %v, %+v; want failed, INTERRUPTED", err, got)
	}
	later, err := loadA2ATasks(st, "w", log, time.Now().Add(maxA2ATaskAge+time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(later.tasks) != 0 {
		t.Fatalf("%d tasks older than maxA2ATaskAge loaded, want none", len(later.tasks))
	}
	if again, _ := loadA2ATasks(st, "w", log, time.Now()); len(again.tasks) != 0 {
		t.Fatalf("expired tasks are still on disk: %d", len(again.tasks))
	}
	if o, _ := loadA2ATasks(st, "w2", log, time.Now()); len(o.tasks) != 1 {
		t.Fatalf("agent w2 has %d tasks, want its own 1", len(o.tasks))
	}
}
