package natsbus

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options say how to reach the NATS system. Exactly one of URL and Embedded
// is set.
type Options struct {
	// URL is an external NATS system, such as "nats://127.0.0.1:4222"; a
	// comma-separated list names several of its servers.
	URL string
	// CredsFile is a standard NATS credentials file (user JWT and nkey
	// seed) used with URL. Empty: no credentials.
	CredsFile string
	// Embedded runs a nats-server inside the gateway.
	Embedded *Embedded
	// Name is the client connection's name, shown by nats-server's
	// monitoring (the gateway's serverId).
	Name string
	// User and Password authenticate the connection (a user of an
	// embedded server's Users). Empty: none.
	User, Password string
	// InboxPrefix replaces "_INBOX" in the connection's reply subjects,
	// so subject permissions can keep a gateway's replies its own.
	InboxPrefix string
}

// Embedded is a nats-server run inside the gateway.
type Embedded struct {
	// Listen is the client address, host:port. Default 127.0.0.1:4222;
	// port 0 picks a free one.
	Listen string
	// StoreDir holds JetStream's files. Empty: JetStream is off.
	StoreDir string
	// Cluster joins other embedded servers. Zero: no cluster.
	Cluster Cluster
	// Users may connect, each with its permissions (nil: all). Empty:
	// the server needs no authentication.
	Users []*server.User
}

// Cluster is an embedded server's cluster: the servers of one cluster
// route client traffic and replicate JetStream between them.
type Cluster struct {
	Name   string   // the cluster's name; the same on every member
	Listen string   // host:port for routes from the other members
	Routes []string // nats-route://host:port of the other members
}

// DefaultListen is an embedded server's client address when unset.
const DefaultListen = "127.0.0.1:4222"

// Errors.
var (
	ErrNotReady = errors.New("natsbus: embedded nats-server not ready")
	ErrOptions  = errors.New("natsbus: invalid options")
)

// Bus is a connection to a NATS system and, when embedded, its server.
type Bus struct {
	srv    *server.Server // nil when external
	conn   *nats.Conn
	closed chan struct{} // closed when conn has closed
	denied denials
}

// readyTimeout bounds how long an embedded server may take to start
// (a clustered JetStream server may wait for its peers' meta leader).
const readyTimeout = 10 * time.Second

// Open starts the embedded server, if any, and connects to the system.
func Open(o Options) (*Bus, error) {
	if (o.URL == "") == (o.Embedded == nil) {
		return nil, fmt.Errorf("%w: set exactly one of url and embedded", ErrOptions)
	}
	b := &Bus{closed: make(chan struct{})}
	url := o.URL
	if o.Embedded != nil {
		so, err := serverOptions(o.Embedded, o.Name)
		if err != nil {
			return nil, err
		}
		if b.srv, err = server.NewServer(so); err != nil {
			return nil, fmt.Errorf("natsbus: embedded nats-server: %w", err)
		}
		b.srv.Start()
		if !b.srv.ReadyForConnections(readyTimeout) {
			b.Close()
			return nil, fmt.Errorf("%w after %v (listen %s)", ErrNotReady, readyTimeout, o.Embedded.Listen)
		}
		url = b.srv.ClientURL()
	}
	opts := []nats.Option{nats.Name(o.Name), nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }), nats.ErrorHandler(b.asyncError)}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	conn, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("natsbus: connect to %s: %w", url, err)
	}
	b.conn = conn
	return b, nil
}

// serverOptions turns e into nats-server options.
func serverOptions(e *Embedded, name string) (*server.Options, error) {
	host, port, err := hostPort(cmpOr(e.Listen, DefaultListen))
	if err != nil {
		return nil, fmt.Errorf("%w: listen: %v", ErrOptions, err)
	}
	so := &server.Options{ServerName: name, Host: host, Port: port, NoLog: true, NoSigs: true}
	if port == 0 {
		so.Port = server.RANDOM_PORT
	}
	if e.StoreDir != "" {
		so.JetStream, so.StoreDir = true, e.StoreDir
	}
	so.Users = e.Users
	if c := e.Cluster; c.Name != "" {
		ch, cp, err := hostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("%w: cluster.listen: %v", ErrOptions, err)
		}
		so.Cluster = server.ClusterOpts{Name: c.Name, Host: ch, Port: cp}
		if cp == 0 {
			so.Cluster.Port = server.RANDOM_PORT
		}
		so.Routes = server.RoutesFromStr(strings.Join(c.Routes, ","))
	}
	return so, nil
}

func hostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", ps)
	}
	return host, port, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Conn is the bus's NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.conn }

// ClientURL is the embedded server's client URL, or "" when external.
func (b *Bus) ClientURL() string {
	if b.srv == nil {
		return ""
	}
	return b.srv.ClientURL()
}

// ClusterURL is the embedded server's route URL (nats-route://host:port),
// or "" when it is not clustered.
func (b *Bus) ClusterURL() string {
	if b.srv == nil {
		return ""
	}
	a := b.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats-route://" + a.String()
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.conn != nil {
		if b.conn.Drain() != nil {
			b.conn.Close()
		}
		<-b.closed
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}
