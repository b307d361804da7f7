package federation

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/agentfed/agentfed/internal/store"
)

// TestPruneFinished: delivered entries finished before the cutoff go;
// recent ones, and failed ones whatever their age, stay.
func TestPruneFinished(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &outbox{st: st}
	cutoff := time.UnixMilli(1_000_000)
	for _, e := range []OutboxEntry{
		{MessageID: "delivered-old", State: StateDelivered, FinishedAt: 999_000},
		{MessageID: "delivered-new", State: StateDelivered, FinishedAt: 1_001_000},
		{MessageID: "failed-old", State: StateFailed, FinishedAt: 999_000},
	} {
		b, _ := json.Marshal(e)
		st.Put(store.Outbox, e.MessageID, b)
	}
	o.pruneFinished(cutoff)
	var left []string
	st.ForEach(store.Outbox, func(k string, _ []byte) error { left = append(left, k); return nil })
	if fmt.Sprint(left) != "[delivered-new failed-old]" {
		t.Fatalf("after prune: %v", left)
	}
}
