package federation_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentfed/agentfed/federation"
)

// TestDurableMaxAttemptsDeadLetters: a durable message without ttlMs to an
// agent that always times out is tried federation.durable.maxAttempts
// times, then dead, instead of running the agent forever.
func TestDurableMaxAttemptsDeadLetters(t *testing.T) {
	var runs atomic.Int64
	stuck := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		runs.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	main, _ := behindProxy(t, stuck, func(c *federation.Config) {
		c.Federation.Peers[0].TimeoutMs = 100
		c.Federation.Durable.MaxAttempts = 3
	})
	r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "never answered",
		MessageOptions: federation.MessageOptions{Durable: true}})
	if err != nil {
		t.Fatal(err)
	}
	e := waitState(t, main, r.MessageID, federation.StateDead)
	if e.LastError == nil || e.LastError.Code != "TIMEOUT" || !strings.Contains(e.LastError.Message, "maxAttempts") || e.PeerAttempts != 3 {
		t.Fatalf("dead letter: attempts %d/%d, last error %+v", e.Attempts, e.PeerAttempts, e.LastError)
	}
	// A retry that finds the previous handling still running waits for it
	// instead of running the agent again: 1 to 3 runs.
	if n := runs.Load(); n < 1 || n > 3 {
		t.Fatalf("the agent ran %d times; want 1 to 3", n)
	}
}

// TestDurableMaxAgeDeadLetters: with federation.durable.maxAgeMs, a
// message without ttlMs to a peer that stays down is dead once that much
// time has passed.
func TestDurableMaxAgeDeadLetters(t *testing.T) {
	lnPeer := listen(t)
	addr := lnPeer.Addr().String()
	lnPeer.Close()
	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "down", Name: "Down", URL: "ws://" + addr, AgentID: "c"}}
	cfg.Federation.Durable.MaxAgeMs = 500
	main := start(t, cfg, listen(t), nil)
	r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "down", Message: "m",
		MessageOptions: federation.MessageOptions{Durable: true}})
	if err != nil {
		t.Fatal(err)
	}
	e := waitState(t, main, r.MessageID, federation.StateDead)
	if e.LastError == nil || !strings.Contains(e.LastError.Message, "maxAgeMs 500") {
		t.Fatalf("dead letter: %+v", e.LastError)
	}
}

// TestOutboxListPages: outbox list returns bounded pages that always fit
// a frame, continued with after; a limit out of range is refused naming
// limit.
func TestOutboxListPages(t *testing.T) {
	main, _ := queueToDownPeer(t, 0)
	big := strings.Repeat("x", 1100<<10)
	const n = 4 // 4.4 MB of content: more than one frame holds
	want := map[string]bool{}
	for i := range n {
		r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "down", Message: fmt.Sprint(i, big),
			MessageOptions: federation.MessageOptions{Durable: true}})
		if err != nil {
			t.Fatal(err)
		}
		want[r.MessageID] = true
	}
	op := operator(t, main, "")
	got, pages, after := map[string]bool{}, 0, ""
	for {
		var l federation.OutboxList
		err := op.Call(context.Background(), federation.MethodOutbox, federation.OutboxParams{Op: "list", Limit: 1000, After: after}, &l)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		for _, e := range l.Messages {
			if got[e.MessageID] || !want[e.MessageID] {
				t.Fatalf("page %d lists %s again or unexpectedly", pages, e.MessageID)
			}
			got[e.MessageID] = true
		}
		if after = l.Next; after == "" {
			break
		}
	}
	if len(got) != n || pages < 3 {
		t.Fatalf("listed %d of %d messages in %d pages; want all, in at least 3 pages of at most 2 MiB", len(got), n, pages)
	}
	for _, limit := range []int{100000, -1} {
		err := op.Call(context.Background(), federation.MethodOutbox, federation.OutboxParams{Op: "list", Limit: limit}, nil)
		if code(err) != "INVALID_PARAMS" || !strings.Contains(err.Error(), fmt.Sprintf("limit %d is not from 1 to 1000", limit)) {
			t.Fatalf("limit %d: %v", limit, err)
		}
	}
}

// TestDurableCancel: a queued message can be cancelled (it is then dead,
// and can be dropped), including while an attempt is in flight, and is
// never delivered afterwards.
func TestDurableCancel(t *testing.T) {
	var held, delivered atomic.Int64
	entered, release := make(chan struct{}, 1), make(chan struct{})
	h := federation.HandlerFunc(func(ctx context.Context, m *federation.Message) (*federation.Answer, error) {
		if m.Content == "hold" {
			held.Add(1)
			entered <- struct{}{}
			select { // the receiver runs a durable handling to its end
			case <-release:
			case <-ctx.Done():
			}
			return &federation.Answer{Content: "late"}, nil
		}
		delivered.Add(1)
		return &federation.Answer{Content: m.Content}, nil
	})
	main, _ := behindProxy(t, h, nil)
	if err := main.DropMessage("nonexistent"); code(err) != "UNKNOWN_MESSAGE" {
		t.Fatalf("drop of an unknown message: %v", err)
	}
	r, err := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "hold",
		MessageOptions: federation.MessageOptions{Durable: true, TimeoutMs: 60000}})
	if err != nil {
		t.Fatal(err)
	}
	<-entered // its first attempt is in flight
	if err := main.DropMessage(r.MessageID); code(err) != "INVALID_PARAMS" || !strings.Contains(err.Error(), "cancel it first") {
		t.Fatalf("drop of a queued message: %v", err)
	}
	e, err := main.CancelMessage(r.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != federation.StateDead || e.LastError == nil || e.LastError.Code != "CANCELLED" {
		t.Fatalf("cancelled: %s %+v", e.State, e.LastError)
	}
	close(release) // the receiver's handling ends; the sender has stopped waiting for it
	// A later message is delivered; the cancelled one never is again.
	r2, _ := main.Send(context.Background(), federation.SendRequest{PeerID: "p", Message: "after",
		MessageOptions: federation.MessageOptions{Durable: true}})
	waitState(t, main, r2.MessageID, federation.StateDelivered)
	if e, _ := main.MessageStatus(r.MessageID); e.State != federation.StateDead || held.Load() != 1 {
		t.Fatalf("after cancel: %s, handled %d times", e.State, held.Load())
	}
	if _, err := main.CancelMessage(r2.MessageID); code(err) != "INVALID_PARAMS" {
		t.Fatalf("cancel of a delivered message: %v", err)
	}
	if err := main.DropMessage(r.MessageID); err != nil {
		t.Fatalf("drop after cancel: %v", err)
	}
}
