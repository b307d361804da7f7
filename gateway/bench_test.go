package gateway

// Benchmarks of the wire's hot paths: frame encoding and decoding as the
// client and server do them for every request, and whole Calls over a
// loopback connection. Run with
//
//	go test -run '^$' -bench . -benchmem ./gateway/

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// benchMessage mirrors federation.Message (package federation imports this
// one, so it cannot be used here): the payload of a federation.relay.
type benchMessage struct {
	MessageID     string         `json:"messageId"`
	FromAgent     string         `json:"fromAgent"`
	FromServer    string         `json:"fromServer"`
	ToAgent       string         `json:"toAgent"`
	Type          string         `json:"type"`
	Content       string         `json:"content"`
	Context       map[string]any `json:"context,omitempty"`
	CorrelationID string         `json:"correlationId,omitempty"`
	Priority      string         `json:"priority,omitempty"`
	Timestamp     int64          `json:"timestamp"`
}

type benchRelayParams struct {
	TargetAgent string        `json:"targetAgent"`
	Message     *benchMessage `json:"message"`
	TimeoutMs   int64         `json:"timeoutMs,omitempty"`
}

func benchParams(content string) benchRelayParams {
	return benchRelayParams{TargetAgent: "echo", TimeoutMs: 30000, Message: &benchMessage{
		MessageID: "8d0c6f3e-5a55-4c1b-9d7e-0f6c1c3a9b21", FromAgent: "operator", FromServer: "main-agent-server",
		ToAgent: "echo", Type: "request", Content: content, CorrelationID: "0b7f5d8e-2c4a-4e63-8f0e-6d2b9c1a7e44",
		Priority: "normal", Timestamp: 1795550689350,
	}}
}

// benchSizes are the message contents the size-dependent benchmarks use.
var benchSizes = []int{16, 1 << 10, 16 << 10, 256 << 10}

// BenchmarkEncodeRequest is what Client.Call does before writing: encode
// the params, then the req frame around them.
func BenchmarkEncodeRequest(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("content=%d", size), func(b *testing.B) {
			params := benchParams(strings.Repeat("x", size))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				raw, err := marshalPayload(params)
				if err != nil {
					b.Fatal(err)
				}
				out, err := json.Marshal(Request{Type: FrameReq, ID: "1k", Method: "federation.relay", Params: raw})
				if err != nil {
					b.Fatal(err)
				}
				n = len(out)
			}
			b.SetBytes(int64(n))
		})
	}
}

// BenchmarkDecodeFrame is what the server's and the client's readers do
// with every frame, then the handler's decode of the params.
func BenchmarkDecodeFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("content=%d", size), func(b *testing.B) {
			raw, _ := marshalPayload(benchParams(strings.Repeat("x", size)))
			data, _ := json.Marshal(Request{Type: FrameReq, ID: "1k", Method: "federation.relay", Params: raw})
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := decodeFrame(data)
				if err != nil {
					b.Fatal(err)
				}
				var p benchRelayParams
				if err := json.Unmarshal(f.Params, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeResponse is what the server does with a handler's result.
func BenchmarkEncodeResponse(b *testing.B) {
	msg := benchParams("build status?").Message
	b.ReportAllocs()
	for b.Loop() {
		payload, err := marshalPayload(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(Response{Type: FrameRes, ID: "1k", OK: true, Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEchoHandler decodes relay params and answers with their message,
// the shape of a federation.relay without the federation.
func benchEchoHandler(_ context.Context, _ *Identity, _ string, params json.RawMessage) (any, error) {
	var p benchRelayParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, NewError(CodeInvalidParams, err.Error())
	}
	return p.Message, nil
}

// inlineEcho serves benchEchoHandler on the reader goroutine, as
// federation's handler is served.
type inlineEcho struct{}

func (inlineEcho) ServeRPC(ctx context.Context, id *Identity, method string, params json.RawMessage) (any, error) {
	return benchEchoHandler(ctx, id, method, params)
}

func (inlineEcho) ServesInline() bool { return true }

// benchServe serves a Server answering with benchEchoHandler on a
// loopback port, and dials it, until the benchmark ends.
func benchServe(b *testing.B) *Client {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	// Set up as a federation node is: the handler never blocks, so it runs
	// inline, and the listener batches writes.
	srv := &Server{Handler: inlineEcho{}}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ConnContext: ConnContext}
	served := make(chan struct{})
	go func() { defer close(served); hs.Serve(TrackActivity(ln)) }()
	c, err := Dial(context.Background(), "ws://"+ln.Addr().String(), nil)
	if err != nil {
		hs.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close()
		srv.Shutdown(ctx)
		hs.Shutdown(ctx)
		<-served
	})
	return c
}

// BenchmarkCall is one sequential Call round trip over loopback: encode,
// write, server read, decode, handler, encode, write, client read, decode.
func BenchmarkCall(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("content=%d", size), func(b *testing.B) {
			c := benchServe(b)
			params := benchParams(strings.Repeat("x", size))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				var out benchMessage
				if err := c.Call(ctx, "echo", params, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCallTLS is BenchmarkCall over wss://, with a 16-byte content.
func BenchmarkCallTLS(b *testing.B) {
	srv := &Server{Handler: inlineEcho{}}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ConnContext = ConnContext
	ts.Listener = TrackActivity(ts.Listener)
	ts.StartTLS()
	c, err := Dial(context.Background(), "wss://"+ts.Listener.Addr().String(), &DialOptions{HTTPClient: ts.Client()})
	if err != nil {
		ts.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.Close()
	})
	params := benchParams(strings.Repeat("x", 16))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var out benchMessage
		if err := c.Call(ctx, "echo", params, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallParallel keeps 64 Calls in flight on one connection (32
// goroutines per GOMAXPROCS on 2 CPUs; more on larger machines).
func BenchmarkCallParallel(b *testing.B) {
	c := benchServe(b)
	params := benchParams("build status?")
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			var out benchMessage
			if err := c.Call(ctx, "echo", params, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkWebSocketEcho is the floor under BenchmarkCall: the same frames
// through a bare coder/websocket echo, decoded with the same decodeFrame
// and params decode on both sides, with no gateway around them.
func BenchmarkWebSocketEcho(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("content=%d", size), func(b *testing.B) {
			url := benchWSEcho(b)
			ws, _, err := websocket.Dial(context.Background(), url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ws.CloseNow()
			ws.SetReadLimit(defaultMaxPayload)
			raw, _ := marshalPayload(benchParams(strings.Repeat("x", size)))
			data, _ := json.Marshal(Request{Type: FrameReq, ID: "1k", Method: "federation.relay", Params: raw})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := ws.Write(ctx, websocket.MessageText, data); err != nil {
					b.Fatal(err)
				}
				_, got, err := ws.Read(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := benchDecode(got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchDecode(data []byte) error {
	f, err := decodeFrame(data)
	if err != nil {
		return err
	}
	var p benchRelayParams
	return json.Unmarshal(f.Params, &p)
}

// benchWSEcho serves a bare WebSocket echo that decodes every message, on
// a loopback port, until the benchmark ends.
func benchWSEcho(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var conns sync.WaitGroup
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conns.Add(1)
		defer conns.Done()
		defer ws.CloseNow()
		ws.SetReadLimit(defaultMaxPayload)
		for {
			typ, data, err := ws.Read(context.Background())
			if err != nil || benchDecode(data) != nil {
				return
			}
			if err := ws.Write(context.Background(), typ, data); err != nil {
				return
			}
		}
	})}
	served := make(chan struct{})
	go func() { defer close(served); hs.Serve(ln) }()
	b.Cleanup(func() {
		hs.Close()
		<-served
		conns.Wait() // the client has closed its end by now
	})
	return "ws://" + ln.Addr().String()
}
