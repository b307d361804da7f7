package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const natsSubject = "bench.echo"

// natsEcho is an embedded nats-server on a random 127.0.0.1 port with a
// responder connection that answers natsSubject with the request's bytes
// after decoding them as a gateway would, and a requester connection.
type natsEcho struct {
	srv       *server.Server
	responder *nats.Conn
	requester *nats.Conn
}

// startNATSEcho starts the server and responders subscribers in one queue
// group, the usual way to let a NATS service answer concurrently.
func startNATSEcho(responders int) (*natsEcho, error) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	srv.Start()
	e := &natsEcho{srv: srv}
	if !srv.ReadyForConnections(10 * time.Second) {
		e.close()
		return nil, errors.New("nats-server: not ready for connections after 10s")
	}
	if e.responder, err = nats.Connect(srv.ClientURL(), nats.Name("bench-responder")); err != nil {
		e.close()
		return nil, err
	}
	for range responders {
		_, err := e.responder.QueueSubscribe(natsSubject, "echo", func(m *nats.Msg) {
			if decode(m.Data) == nil {
				m.Respond(m.Data)
			}
		})
		if err != nil {
			e.close()
			return nil, err
		}
	}
	if err := e.responder.Flush(); err != nil {
		e.close()
		return nil, err
	}
	if e.requester, err = nats.Connect(srv.ClientURL(), nats.Name("bench-requester")); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *natsEcho) request(s *sample) error {
	m, err := e.requester.Request(natsSubject, s.frame, 10*time.Second)
	if err != nil {
		return err
	}
	return decode(m.Data)
}

func (e *natsEcho) close() {
	for _, c := range []*nats.Conn{e.requester, e.responder} {
		if c != nil {
			c.Close()
		}
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// startNATSRTT starts a NATS echo with one responder: one op is one
// request-reply of the sample frame.
func startNATSRTT(_ context.Context, _ *Options, s *sample) (func(context.Context) error, func(), error) {
	e, err := startNATSEcho(1)
	if err != nil {
		return nil, nil, err
	}
	return func(context.Context) error { return e.request(s) }, e.close, nil
}

// startNATSThroughput starts a NATS echo with GOMAXPROCS queue-group
// responders; a run keeps o.Concurrency requests in flight.
func startNATSThroughput(o *Options, s *sample) (countFunc, func(), error) {
	e, err := startNATSEcho(runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context, d time.Duration) (int64, time.Duration, error) {
		return count(ctx, o.Concurrency, d, func(context.Context) error { return e.request(s) })
	}
	return run, e.close, nil
}
