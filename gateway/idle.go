package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/agentfed/agentfed/internal/wsconn"
)

// Any bytes read count as activity, WebSocket pings included, which the
// WebSocket library answers without showing them to us; so activity is
// tracked on the TCP connection itself.

// activityConn records when it last read anything.
type activityConn struct {
	net.Conn
	last atomic.Int64 // Unix nanoseconds of the last successful Read
}

func (c *activityConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

type activityListener struct{ net.Listener }

func (l activityListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ac := &activityConn{Conn: wsconn.NewServer(c)}
	ac.last.Store(time.Now().UnixNano())
	return ac, nil
}

// TrackActivity wraps a listener so that Server can close connections that
// stay idle past IdleTimeout, and batches the frames written while a
// connection's reader is busy into one write (see wsconn.Conn). Wrap the
// plain TCP listener (under any TLS listener), and set the http.Server's
// ConnContext to ConnContext.
func TrackActivity(ln net.Listener) net.Listener { return activityListener{ln} }

type connKey struct{}

// ConnContext is an http.Server ConnContext that makes the connection
// known to Server's idle check.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// tracked returns the request's connection as TrackActivity wrapped it,
// or nil when it is not tracked.
func tracked(ctx context.Context) *activityConn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	ac, _ := c.(*activityConn)
	return ac
}

// lastActivity returns a func reporting when the request's connection last
// read anything, or nil when the connection is not tracked.
func lastActivity(ctx context.Context) func() time.Time {
	ac := tracked(ctx)
	if ac == nil {
		return nil
	}
	return func() time.Time { return time.Unix(0, ac.last.Load()) }
}

// batching returns the request connection's wsconn.Conn, or nil.
func batching(ctx context.Context) *wsconn.Conn {
	ac := tracked(ctx)
	if ac == nil {
		return nil
	}
	b, _ := ac.Conn.(*wsconn.Conn)
	return b
}
