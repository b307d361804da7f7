package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/wsconn"
)

// bothModes runs test with handlers on goroutines of their own and with
// inline (a wsconn.Inliner handler).
func bothModes(t *testing.T, test func(t *testing.T, inline bool)) {
	t.Run("goroutines", func(t *testing.T) { test(t, false) })
	t.Run("inline", func(t *testing.T) { test(t, true) })
}

// TestInlineHandlerHoldsTheReader: an inline handler that does not detach
// runs on the reader, so a request sent after it is read, and answered,
// only once it has returned.
func TestInlineHandlerHoldsTheReader(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	srv := startServer(t, &gateway.Server{Handler: inlineIf(gateway.HandlerFunc(
		func(ctx context.Context, id *gateway.Identity, method string, params json.RawMessage) (any, error) {
			if method == "hold" {
				close(started)
				<-release
			}
			return map[string]string{"method": method}, nil
		}), true)})
	c := dialRaw(t, srv.URL)
	c.connect()
	c.send(`{"type":"req","id":"1","method":"hold"}`)
	<-started
	c.send(`{"type":"req","id":"2","method":"echo"}`)
	close(release)
	var order []string
	for len(order) < 2 {
		if f := c.read(); f.Type == gateway.FrameRes {
			order = append(order, f.ID)
		}
	}
	if order[0] != "1" || order[1] != "2" {
		t.Errorf("responses in order %v, want [1 2]: the second request was served while the first held the reader", order)
	}
}

// TestInlineDetachedRequestsRunTogether: each detached handler hands the
// reader on, so many blocked requests on one connection are all running
// at once, and all answer once released.
func TestInlineDetachedRequestsRunTogether(t *testing.T) {
	const n = 20
	started, release := make(chan string, n), make(chan struct{})
	srv := startServer(t, &gateway.Server{Handler: inlineIf(testHandler{started: started, release: release}, true)})
	c := dial(t, srv.URL, nil)
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.Call(context.Background(), "block", fmt.Sprint(i), nil) }()
	}
	for range n {
		<-started // all n handlers run before any is released
	}
	if err := c.Call(context.Background(), "echo", map[string]int{"x": 1}, nil); err != nil {
		t.Fatalf("echo while %d requests are detached: %v", n, err)
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("block: %v", err)
		}
	}
	checkServing(t, srv.URL)
}

// TestDetachedParamsOutliveTheReader: an inline reader reuses its read
// buffer for the next frame; a detached request keeps the one its params
// are in, so they are intact however many frames the connection reads
// meanwhile.
func TestDetachedParamsOutliveTheReader(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	srv := startServer(t, &gateway.Server{Handler: inlineIf(gateway.HandlerFunc(
		func(ctx context.Context, id *gateway.Identity, method string, params json.RawMessage) (any, error) {
			if method == "keep" {
				wsconn.Detach(ctx)
				close(started)
				<-release
			}
			return params, nil
		}), true)})
	c := dial(t, srv.URL, nil)
	want := map[string]string{"kept": strings.Repeat("k", 300)}
	got := make(chan map[string]string, 1)
	go func() {
		var out map[string]string
		if err := c.Call(context.Background(), "keep", want, &out); err != nil {
			t.Error(err)
		}
		got <- out
	}()
	<-started
	for i := range 100 { // frames of the same size, read into the reader's buffer
		var out map[string]string
		in := map[string]string{"kept": strings.Repeat(fmt.Sprint(i%10), 300)}
		if err := c.Call(context.Background(), "echo", in, &out); err != nil || out["kept"] != in["kept"] {
			t.Fatalf("echo %d = %v, %v", i, out, err)
		}
	}
	close(release)
	if out := <-got; out["kept"] != want["kept"] {
		t.Errorf("the detached request's params changed while it waited: %.40q...", out["kept"])
	}
}
