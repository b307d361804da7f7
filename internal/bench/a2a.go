package bench

import (
	"context"
	"errors"
	"iter"
	"net"
	"net/http"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
)

// a2aEcho is an A2A agent that answers every message with its text.
type a2aEcho struct{}

func (a2aEcho) Execute(_ context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		yield(a2a.NewMessage(a2a.MessageRoleAgent, ec.Message.Parts...), nil)
	}
}

func (a2aEcho) Cancel(context.Context, *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(func(a2a.Event, error) bool) {}
}

// startA2ARTT serves a2a-go's JSON-RPC handler with an echo agent on
// 127.0.0.1 and returns one a2a-go client SendMessage of the sample's
// content as op.
func startA2ARTT(ctx context.Context, _ *Options, s *sample) (func(context.Context) error, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(a2aEcho{})), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := a2aclient.NewFromEndpoints(ctx, []*a2a.AgentInterface{
		a2a.NewAgentInterface("http://"+ln.Addr().String(), a2a.TransportProtocolJSONRPC)}, a2aclient.WithJSONRPCTransport(hc))
	stop := func() {
		if c != nil {
			c.Destroy()
		}
		hc.CloseIdleConnections()
		srv.Close()
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	op := func(ctx context.Context) error {
		res, err := c.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(s.content))})
		if err != nil {
			return err
		}
		if m, ok := res.(*a2a.Message); !ok || len(m.Parts) != 1 || m.Parts[0].Text() != s.content {
			return errors.New("a2a echo answered something other than the message")
		}
		return nil
	}
	return op, stop, nil
}
