package discovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/mdns"
)

// Defaults of Config.
const (
	DefaultService  = "_agentfed._tcp"
	DefaultInterval = 10 * time.Second
)

// maxGateways bounds the gateways one MDNS keeps track of.
const maxGateways = 256

// Config says where and how an MDNS advertises and browses.
type Config struct {
	// Service is the DNS-SD service type, like "_agentfed._tcp" (the
	// default). Gateways see each other only when they use the same one.
	Service string
	// Interface names the network interface to advertise and browse on,
	// like "lo" or "eth0". Required: there is no default.
	Interface string
	// Interval is how often to browse. Default 10s. A gateway not seen for
	// three intervals has left.
	Interval time.Duration
	// Logger receives what happens, at debug level for what a remote host
	// can cause. Nil: discard.
	Logger *slog.Logger
	// OnChange is called, from the browsing goroutine, with every gateway
	// seen (sorted by serverId, fingerprint and URL: the same serverId and
	// key announced with two URLs are two entries) whenever that set or
	// one of its announcements changes. It must not block for long.
	OnChange func([]Gateway)
}

// MDNS advertises one gateway and browses for others. See the package doc.
type MDNS struct {
	cfg    Config
	iface  *net.Interface
	self   Gateway
	server *mdns.Server
	stdlog *log.Logger // the library's logs, into cfg.Logger at debug level
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex // guards seen
	seen map[string]seenGateway
}

type seenGateway struct {
	g   Gateway
	sig string // the announcement as received, to notice changes
}

// Start advertises self on cfg.Interface and starts browsing. self's URL
// must be ws:// or wss:// with a port; when its host is not an IP address
// of the interface (a name, or 0.0.0.0), the interface's IPv4 addresses are
// advertised for it. It returns how many of self's agents and capabilities
// did not fit in the TXT record (see docs/PROTOCOL.md).
func Start(cfg Config, self Gateway) (*MDNS, int, error) {
	if cfg.Interface == "" {
		return nil, 0, errors.New("discovery: no interface: name the one to advertise and browse on, like lo or eth0")
	}
	iface, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, 0, fmt.Errorf("discovery: interface %q: %w", cfg.Interface, err)
	}
	cfg.Service = cmpOr(cfg.Service, DefaultService)
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &MDNS{cfg: cfg, iface: iface, self: self, seen: make(map[string]seenGateway), done: make(chan struct{}),
		stdlog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	zone, dropped, err := m.zone()
	if err != nil {
		return nil, 0, err
	}
	if m.server, err = mdns.NewServer(&mdns.Config{Zone: zone, Iface: iface, Logger: m.stdlog}); err != nil {
		return nil, 0, fmt.Errorf("discovery: advertise on %q: %w", cfg.Interface, err)
	}
	var ctx context.Context
	ctx, m.cancel = context.WithCancel(context.Background())
	go m.browse(ctx)
	return m, dropped, nil
}

// zone is the DNS-SD service that answers for self. A URL whose host is
// unspecified (a listener on 0.0.0.0) is advertised with the interface's
// first IPv4 address instead.
func (m *MDNS) zone() (*mdns.MDNSService, int, error) {
	u, err := url.Parse(m.self.URL)
	if err != nil {
		return nil, 0, fmt.Errorf("discovery: url %q: %w", m.self.URL, err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port <= 0 {
		return nil, 0, fmt.Errorf("discovery: url %q has no port", m.self.URL)
	}
	ips, err := m.addrs(u.Hostname())
	if err != nil {
		return nil, 0, err
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
		u.Host = net.JoinHostPort(ips[0].String(), u.Port())
		m.self.URL = u.String()
	}
	txt, dropped := encodeTXT(m.self)
	inst := instance(m.self.ServerID)
	zone, err := mdns.NewMDNSService(inst, m.cfg.Service, "local.", inst+".local.", port, ips, txt)
	if err != nil {
		return nil, 0, fmt.Errorf("discovery: service %q: %w", m.cfg.Service, err)
	}
	return zone, dropped, nil
}

// addrs returns host when it is a usable IPv4 address, else the
// interface's IPv4 addresses.
func (m *MDNS) addrs(host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && ip.To4() != nil {
		return []net.IP{ip}, nil
	}
	as, err := m.iface.Addrs()
	if err != nil {
		return nil, fmt.Errorf("discovery: addresses of %q: %w", m.cfg.Interface, err)
	}
	var ips []net.IP
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ips = append(ips, n.IP)
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("discovery: interface %q has no IPv4 address to advertise", m.cfg.Interface)
	}
	return ips, nil
}

// instance is the DNS-SD instance name of a serverId: its letters, digits
// and hyphens, and a hash of all of it, so that two ids never share one.
func instance(serverID string) string {
	var b strings.Builder
	for _, r := range serverID {
		if b.Len() >= 40 {
			break
		}
		if r < 128 && (r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	sum := sha256.Sum256([]byte(serverID))
	return b.String() + "-" + hex.EncodeToString(sum[:4])
}

// Close stops advertising and browsing, and returns when the browsing
// goroutine has finished.
func (m *MDNS) Close() error {
	m.cancel()
	err := m.server.Shutdown()
	<-m.done
	return err
}

// Gateways returns the gateways seen now, as OnChange last reported them.
func (m *MDNS) Gateways() []Gateway {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshotLocked()
}

func (m *MDNS) browse(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round queries once, then merges what answered into the gateways seen,
// forgets those silent for three intervals, and reports a change.
func (m *MDNS) round(ctx context.Context) {
	entries := make(chan *mdns.ServiceEntry, maxGateways) // the library drops entries when full
	params := &mdns.QueryParam{Service: m.cfg.Service, Domain: "local", Timeout: min(max(m.cfg.Interval/2, 50*time.Millisecond), time.Second),
		Interface: m.iface, Entries: entries, DisableIPv6: true, Logger: m.stdlog}
	if err := mdns.QueryContext(ctx, params); err != nil && ctx.Err() == nil {
		m.cfg.Logger.Warn("mdns browse", "interface", m.cfg.Interface, "service", m.cfg.Service, "err", err)
	}
	close(entries)
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	m.mu.Lock()
	changed := false
	for e := range entries {
		g, err := decodeTXT(e.InfoFields)
		if err != nil {
			m.cfg.Logger.Debug("mdns announcement ignored", "name", clip(e.Name), "err", err)
			continue
		}
		if g.ServerID == m.self.ServerID && g.Fingerprint == m.self.Fingerprint {
			continue // ourselves
		}
		if e.AddrV4 != nil {
			g.Addr = e.AddrV4.String()
		}
		g.LastSeen = now
		key := g.ServerID + "\x00" + g.Fingerprint + "\x00" + g.URL // a copy with another URL is another claim
		sig := strings.Join(e.InfoFields, "\x00") + "\x00" + g.Addr
		old, ok := m.seen[key]
		if !ok && len(m.seen) >= maxGateways {
			continue
		}
		changed = changed || !ok || old.sig != sig
		m.seen[key] = seenGateway{g: g, sig: sig}
	}
	for k, s := range m.seen {
		if now.Sub(s.g.LastSeen) > 3*m.cfg.Interval {
			delete(m.seen, k)
			changed = true
		}
	}
	var snap []Gateway
	if changed {
		snap = m.snapshotLocked()
	}
	m.mu.Unlock()
	if changed && m.cfg.OnChange != nil {
		m.cfg.OnChange(snap)
	}
}

func (m *MDNS) snapshotLocked() []Gateway {
	keys := slices.Sorted(maps.Keys(m.seen))
	out := make([]Gateway, 0, len(keys))
	for _, k := range keys {
		out = append(out, m.seen[k].g)
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
