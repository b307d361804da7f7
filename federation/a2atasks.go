package federation

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/a2aproject/a2a-go/v2/a2asrv/taskstore"
	"github.com/agentfed/agentfed/internal/store"
)

// Bounds on the A2A tasks a gateway keeps per agent.
const (
	// maxA2ATasks is how many tasks per agent are kept; past it the
	// oldest finished ones are forgotten first.
	maxA2ATasks = 1000
	// maxA2ATaskAge is how long a task is kept after its last update.
	maxA2ATaskAge = 7 * 24 * time.Hour
	// maxA2AHistory is how many messages of a task's history are kept.
	maxA2AHistory = 32
	// maxA2AArtifacts is how many artifacts of a task are kept.
	maxA2AArtifacts = 16
	// maxA2ATaskBytes bounds one stored task: past it, its oldest history
	// messages are dropped.
	maxA2ATaskBytes = 1 << 20
)

// a2aInterrupted is the status message of a task that was running when
// its gateway stopped.
const a2aInterrupted = "INTERRUPTED: the gateway restarted while this task ran; the agent may or may not have finished it. " +
	"Send the message again with a new message id to run it again."

// a2aTaskRecord is one task as kept in store.A2ATasks, under the key
// agent + "\x00" + task id.
type a2aTaskRecord struct {
	User    string          `json:"user"`
	Version int64           `json:"version"`
	Updated time.Time       `json:"updated"`
	Task    json.RawMessage `json:"task"`

	id    a2a.TaskID
	state a2a.TaskState
	ctxID string
	at    *time.Time // the status timestamp
}

// a2aTasks is the task store of one agent served over A2A: a2a-go's
// taskstore.Store, kept in memory for reads and written through to the
// gateway's bbolt store, so that GetTask and ListTasks answer for tasks
// of an earlier run. Each caller sees only its own tasks. It is safe for
// concurrent use.
type a2aTasks struct {
	st       *store.Store
	agent    string
	log      *slog.Logger
	maxTasks int // maxA2ATasks; tests lower it

	mu    sync.Mutex                    // guards tasks
	tasks map[a2a.TaskID]*a2aTaskRecord // each record's Task is immutable
}

var _ taskstore.Store = (*a2aTasks)(nil)

// loadA2ATasks reads agent's tasks from st. It forgets those older than
// maxA2ATaskAge and ends those that were running when the gateway
// stopped as failed, with a status message that says so: the agent's
// work was not durable, so it is not resumed.
func loadA2ATasks(st *store.Store, agent string, log *slog.Logger, now time.Time) (*a2aTasks, error) {
	t := &a2aTasks{st: st, agent: agent, log: log, maxTasks: maxA2ATasks, tasks: map[a2a.TaskID]*a2aTaskRecord{}}
	prefix := agent + "\x00"
	var drop, fix []store.KV
	err := st.Scan(store.A2ATasks, agent, func(key string, v []byte) bool {
		if !strings.HasPrefix(key, prefix) {
			return false // keys sort: past agent's
		}
		rec, task, err := decodeA2ATask(v)
		switch {
		case err != nil:
			log.Warn("A2A task not loaded: its record does not decode", "agent", agent, "key", key[len(prefix):min(len(key), len(prefix)+64)], "err", err)
			drop = append(drop, store.KV{Key: key})
			return true
		case now.Sub(rec.Updated) > maxA2ATaskAge:
			drop = append(drop, store.KV{Key: key})
			return true
		case !task.Status.State.Terminal():
			ts := now.UTC()
			task.Status = a2a.TaskStatus{State: a2a.TaskStateFailed, Timestamp: &ts,
				Message: a2a.NewMessageForTask(a2a.MessageRoleAgent, task, a2a.NewTextPart(a2aInterrupted))}
			if rec, err = encodeA2ATask(task, rec.User, rec.Version+1, now); err != nil {
				return true
			}
			b, _ := json.Marshal(rec)
			fix = append(fix, store.KV{Key: key, Value: b})
		}
		t.tasks[rec.id] = rec
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("load the A2A tasks of agent %q: %w", agent, err)
	}
	if len(drop)+len(fix) > 0 {
		if err := st.PutBatch(store.A2ATasks, append(drop, fix...)...); err != nil {
			return nil, fmt.Errorf("update the A2A tasks of agent %q: %w", agent, err)
		}
	}
	return t, nil
}

func (t *a2aTasks) key(id a2a.TaskID) string { return t.agent + "\x00" + string(id) }

// decodeA2ATask decodes a stored record and its task.
func decodeA2ATask(v []byte) (*a2aTaskRecord, *a2a.Task, error) {
	var rec a2aTaskRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, nil, err
	}
	var task a2a.Task
	if err := json.Unmarshal(rec.Task, &task); err != nil {
		return nil, nil, err
	}
	if task.ID == "" {
		return nil, nil, fmt.Errorf("the task has no id")
	}
	rec.id, rec.state, rec.ctxID, rec.at = task.ID, task.Status.State, task.ContextID, task.Status.Timestamp
	return &rec, &task, nil
}

// encodeA2ATask makes the record of task, bounded: the last
// maxA2AHistory messages of its history and the last maxA2AArtifacts
// artifacts, and older history dropped while it is over maxA2ATaskBytes.
func encodeA2ATask(task *a2a.Task, user string, version int64, now time.Time) (*a2aTaskRecord, error) {
	bounded := *task
	bounded.History = task.History[max(0, len(task.History)-maxA2AHistory):]
	bounded.Artifacts = task.Artifacts[max(0, len(task.Artifacts)-maxA2AArtifacts):]
	b, err := json.Marshal(&bounded)
	for err == nil && len(b) > maxA2ATaskBytes && len(bounded.History) > 0 {
		bounded.History = bounded.History[1:]
		b, err = json.Marshal(&bounded)
	}
	if err != nil {
		return nil, fmt.Errorf("encode A2A task %s: %w", task.ID, err)
	}
	return &a2aTaskRecord{User: user, Version: version, Updated: now, Task: b,
		id: task.ID, state: task.Status.State, ctxID: task.ContextID, at: task.Status.Timestamp}, nil
}

// a2aUserName is the caller a2a-go names in ctx, "" when none.
func a2aUserName(ctx context.Context) string {
	if cc, ok := a2asrv.CallContextFrom(ctx); ok && cc.User != nil {
		return cc.User.Name
	}
	return ""
}

// put writes rec to disk and then to memory, with the keys of drop
// deleted in the same commit.
func (t *a2aTasks) putLocked(rec *a2aTaskRecord, drop []a2a.TaskID) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	kvs := []store.KV{{Key: t.key(rec.id), Value: b}}
	for _, id := range drop {
		kvs = append(kvs, store.KV{Key: t.key(id)})
	}
	if err := t.st.PutBatch(store.A2ATasks, kvs...); err != nil {
		return fmt.Errorf("save A2A task %s: %w", rec.id, err)
	}
	for _, id := range drop {
		delete(t.tasks, id)
	}
	t.tasks[rec.id] = rec
	return nil
}

// evictLocked lists the tasks to forget before one more is added: those
// past maxA2ATaskAge, then the oldest finished ones while there are
// maxTasks or more. Running tasks are kept.
func (t *a2aTasks) evictLocked(now time.Time) []a2a.TaskID {
	var drop []a2a.TaskID
	var finished []*a2aTaskRecord
	for id, r := range t.tasks {
		switch {
		case now.Sub(r.Updated) > maxA2ATaskAge:
			drop = append(drop, id)
		case r.state.Terminal():
			finished = append(finished, r)
		}
	}
	over := len(t.tasks) - len(drop) - t.maxTasks + 1
	if over > 0 {
		slices.SortFunc(finished, func(a, b *a2aTaskRecord) int { return a.Updated.Compare(b.Updated) })
		for _, r := range finished[:min(over, len(finished))] {
			drop = append(drop, r.id)
		}
	}
	return drop
}

// Create implements taskstore.Store.
func (t *a2aTasks) Create(ctx context.Context, task *a2a.Task) (taskstore.TaskVersion, error) {
	now := time.Now()
	rec, err := encodeA2ATask(task, a2aUserName(ctx), 1, now)
	if err != nil {
		return taskstore.TaskVersionMissing, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tasks[task.ID] != nil {
		return taskstore.TaskVersionMissing, taskstore.ErrTaskAlreadyExists
	}
	if err := t.putLocked(rec, t.evictLocked(now)); err != nil {
		return taskstore.TaskVersionMissing, err
	}
	return 1, nil
}

// Update implements taskstore.Store.
func (t *a2aTasks) Update(ctx context.Context, req *taskstore.UpdateRequest) (taskstore.TaskVersion, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.tasks[req.Task.ID]
	if old == nil || old.User != a2aUserName(ctx) {
		return taskstore.TaskVersionMissing, a2a.ErrTaskNotFound
	}
	if req.PrevVersion != taskstore.TaskVersionMissing && taskstore.TaskVersion(old.Version) != req.PrevVersion {
		return taskstore.TaskVersionMissing, taskstore.ErrConcurrentModification
	}
	rec, err := encodeA2ATask(req.Task, old.User, old.Version+1, time.Now())
	if err != nil {
		return taskstore.TaskVersionMissing, err
	}
	if err := t.putLocked(rec, nil); err != nil {
		return taskstore.TaskVersionMissing, err
	}
	return taskstore.TaskVersion(rec.Version), nil
}

// Get implements taskstore.Store. Another caller's task is not found.
func (t *a2aTasks) Get(ctx context.Context, id a2a.TaskID) (*taskstore.StoredTask, error) {
	t.mu.Lock()
	rec := t.tasks[id]
	t.mu.Unlock()
	if rec == nil || rec.User != a2aUserName(ctx) {
		return nil, a2a.ErrTaskNotFound
	}
	var task a2a.Task
	if err := json.Unmarshal(rec.Task, &task); err != nil {
		return nil, fmt.Errorf("decode A2A task %s: %w", id, err)
	}
	return &taskstore.StoredTask{Task: &task, Version: taskstore.TaskVersion(rec.Version), User: rec.User}, nil
}

// List implements taskstore.Store: the caller's tasks, most recently
// updated first, filtered and paged as req asks.
func (t *a2aTasks) List(ctx context.Context, req *a2a.ListTasksRequest) (*a2a.ListTasksResponse, error) {
	user := a2aUserName(ctx)
	if user == "" {
		return nil, a2a.ErrUnauthenticated
	}
	size := cmp.Or(req.PageSize, 50)
	if size < 1 || size > 100 {
		return nil, fmt.Errorf("pageSize %d: it must be from 1 to 100: %w", req.PageSize, a2a.ErrInvalidRequest)
	}
	var recs []*a2aTaskRecord
	t.mu.Lock()
	for _, r := range t.tasks {
		if r.User == user && (req.ContextID == "" || r.ctxID == req.ContextID) &&
			(req.Status == a2a.TaskStateUnspecified || r.state == req.Status) &&
			(req.StatusTimestampAfter == nil || r.at == nil || !r.at.Before(*req.StatusTimestampAfter)) {
			recs = append(recs, r)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(recs, func(a, b *a2aTaskRecord) int {
		return cmp.Or(b.Updated.Compare(a.Updated), strings.Compare(string(b.id), string(a.id)))
	})
	total := len(recs)
	if req.PageToken != "" {
		at, id, err := decodeA2APageToken(req.PageToken)
		if err != nil {
			return nil, err
		}
		start := len(recs) // the first task after the cursor, in this order
		for i, r := range recs {
			if r.Updated.Compare(at) < 0 || r.Updated.Equal(at) && r.id < id {
				start = i
				break
			}
		}
		recs = recs[start:]
	}
	resp := &a2a.ListTasksResponse{TotalSize: total, PageSize: size, Tasks: []*a2a.Task{}}
	if len(recs) > size {
		last := recs[size-1]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString(
			[]byte(strconv.FormatInt(last.Updated.UnixNano(), 10) + "." + string(last.id)))
		recs = recs[:size]
	}
	for _, r := range recs {
		var task a2a.Task
		if err := json.Unmarshal(r.Task, &task); err != nil {
			return nil, fmt.Errorf("decode A2A task %s: %w", r.id, err)
		}
		if req.HistoryLength != nil {
			task.History = task.History[max(0, len(task.History)-max(0, *req.HistoryLength)):]
		}
		if !req.IncludeArtifacts {
			task.Artifacts = nil
		}
		resp.Tasks = append(resp.Tasks, &task)
	}
	return resp, nil
}

// decodeA2APageToken reads a NextPageToken of List.
func decodeA2APageToken(s string) (time.Time, a2a.TaskID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 512 {
		return time.Time{}, "", fmt.Errorf("pageToken is not one ListTasks gave: %w", a2a.ErrInvalidParams)
	}
	ns, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", fmt.Errorf("pageToken is not one ListTasks gave: %w", a2a.ErrInvalidParams)
	}
	return time.Unix(0, n), a2a.TaskID(id), nil
}
