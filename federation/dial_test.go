package federation_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/store"
)

// wireTap is a loopback listener that counts the connections it accepts
// and keeps every byte read from them.
type wireTap struct {
	net.Listener
	mu    sync.Mutex // guards conns and got
	conns int
	got   bytes.Buffer
}

func tap(t *testing.T, addr string) *wireTap {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &wireTap{Listener: ln}
}

func (r *wireTap) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	return &tappedConn{Conn: c, r: r}, nil
}

// seen returns the connections accepted and the bytes received so far.
func (r *wireTap) seen() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, r.got.String()
}

type tappedConn struct {
	net.Conn
	r *wireTap
}

func (c *tappedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.r.mu.Lock()
	c.r.got.Write(b[:n])
	c.r.mu.Unlock()
	return n, err
}

// redirector serves HTTP on ln (over TLS with cfg when not nil), answering
// everything with a 302 to location.
func redirector(t *testing.T, ln net.Listener, cfg *tls.Config, location string) {
	t.Helper()
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, location, http.StatusFound)
	}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

func sendTo(t *testing.T, g *gw, peerID string) *federation.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := g.Send(ctx, federation.SendRequest{PeerID: peerID, Message: "hi"})
	if err != nil {
		t.Fatalf("send to %s: %v", peerID, err)
	}
	return r
}

// TestDialRefusesRedirectOutsideAllowList: an allowed dynamic peer host
// that answers with a redirect to a loopback address the allow-list does
// not name gets no request sent there.
func TestDialRefusesRedirectOutsideAllowList(t *testing.T) {
	target := tap(t, "127.0.0.2:0")
	defer target.Close()
	go func() { // accepts, and reads what a followed redirect would send
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); c.Read(make([]byte, 4096)) }()
		}
	}()
	allowed := listen(t)
	redirector(t, allowed, nil, "http://"+target.Addr().String()+"/")

	cfg := newConfig(t, "main", "")
	cfg.Gateway.DynamicPeerHosts = []string{"127.0.0.1"}
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "")
	mustTool(t, op, `{"action":"register_peer","peerId":"moved","peerName":"x","peerUrl":"`+url(allowed)+`","peerAgentId":"a"}`)

	r := sendTo(t, g, "moved")
	if code(r.Err()) != gateway.CodePeerUnavailable || !strings.Contains(r.Err().Error(), "redirect") {
		t.Fatalf("send through a redirect: %v; want PEER_UNAVAILABLE naming the redirect", r.Err())
	}
	if n, got := target.seen(); n != 0 || got != "" {
		t.Fatalf("the redirect target outside dynamicPeerHosts got %d connections and %q", n, got)
	}
}

// TestDialRefusesTLSDowngradeRedirect: a verified wss:// peer that
// redirects to http:// is not followed, so the peer token never crosses
// the network in plain text.
func TestDialRefusesTLSDowngradeRedirect(t *testing.T) {
	const token = "s3cret-peer-token-never-in-clear"
	// A real plain-text gateway behind the redirect, recording what it
	// reads: the connect frame with the token, were the redirect followed.
	plain := tap(t, "127.0.0.1:0")
	start(t, newConfig(t, "plain-server", "agent-1"), plain, nil)

	ca := newCA(t, "test CA")
	certFile, keyFile, _ := ca.issueFiles(t, "secure-server", x509.ExtKeyUsageServerAuth)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	secure := listen(t)
	redirector(t, secure, &tls.Config{Certificates: []tls.Certificate{cert}}, "http://"+plain.Addr().String()+"/")

	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "secure", Name: "secure", URL: "wss://" + secure.Addr().String(),
		AgentID: "agent-1", Token: token, TLS: &federation.PeerTLSConfig{CAFile: ca.file}}}
	g := start(t, cfg, listen(t), nil)

	r := sendTo(t, g, "secure")
	if code(r.Err()) != gateway.CodePeerUnavailable || !strings.Contains(r.Err().Error(), "redirect") {
		t.Fatalf("send through a downgrading redirect: %v; want PEER_UNAVAILABLE naming the redirect", r.Err())
	}
	n, got := plain.seen()
	if strings.Contains(got, token) {
		t.Fatal("the peer token reached the plain-text listener")
	}
	if n != 0 {
		t.Fatalf("the plain-text listener got %d connections (%d bytes); want none", n, len(got))
	}
}

// TestDynamicPeerAddressCheckedAtDial: a dynamic peer named by an allowed
// host name is dialled only if the address the name resolves to is
// allowed too; the check is on the address connected to, at every dial.
func TestDynamicPeerAddressCheckedAtDial(t *testing.T) {
	peer := tap(t, "127.0.0.1:0")
	start(t, newConfig(t, "peer-server", "agent-1"), peer, nil)
	_, port, _ := net.SplitHostPort(peer.Addr().String())
	peerURL := "ws://localhost:" + port // localhost is 127.0.0.1 (or ::1, where nothing listens)

	for _, tt := range []struct {
		name  string
		hosts []string
		want  string // "" for delivered
	}{
		{"name allowed, its address not", []string{"localhost", "127.0.0.2", "10.0.0.0/8"}, gateway.CodeForbidden},
		{"name and address allowed", []string{"localhost", "127.0.0.0/30"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := peer.seen()
			cfg := newConfig(t, "main", "")
			cfg.Gateway.DynamicPeerHosts = tt.hosts
			g := start(t, cfg, listen(t), nil)
			mustTool(t, operator(t, g, ""), `{"action":"register_peer","peerId":"p","peerName":"x","peerUrl":"`+peerURL+`","peerAgentId":"agent-1"}`)
			r := sendTo(t, g, "p")
			after, _ := peer.seen()
			if tt.want == "" {
				if r.Err() != nil || after == before {
					t.Fatalf("send: %v after %d connections; want delivered", r.Err(), after-before)
				}
				return
			}
			if code(r.Err()) != tt.want || !strings.Contains(r.Err().Error(), "127.0.0.1") || !strings.Contains(r.Err().Error(), "dynamicPeerHosts") {
				t.Fatalf("send: %v; want %s naming the address and gateway.dynamicPeerHosts", r.Err(), tt.want)
			}
			if after != before {
				t.Fatalf("the refused address got %d connections", after-before)
			}
		})
	}
}

// TestDynamicPeerHostEntries: what register_peer accepts under each kind
// of entry, and IP addresses written in other forms.
func TestDynamicPeerHostEntries(t *testing.T) {
	cfg := newConfig(t, "main", "")
	cfg.Gateway.DynamicPeerHosts = []string{"*.agents.test", "127.0.0.1", "192.168.10.0/24", "::1"}
	g := start(t, cfg, listen(t), nil)
	op := operator(t, g, "")
	for i, tt := range []struct{ url, want string }{
		{"ws://worker.agents.test:1", ""},
		{"ws://WORKER.Agents.Test:1", ""},
		{"ws://127.0.0.1:1", ""},
		{"ws://[::1]:1", ""},
		{"ws://192.168.10.7:1", ""},
		{"ws://192.168.11.7:1", gateway.CodeForbidden},
		{"ws://127.0.0.2:1", gateway.CodeForbidden},
		{"ws://agents.test.evil:1", gateway.CodeForbidden},
		{"ws://2130706433:1", gateway.CodeForbidden}, // 127.0.0.1 as one number
		{"ws://0x7f000001.agents.test:1", ""},        // a name, checked at dial
		{"ws://127.1:1", gateway.CodeForbidden},      // short form
		{"ws://0177.0.0.1:1", gateway.CodeForbidden}, // octal
		{"ws://[::ffff:127.0.0.1]:1", ""},            // mapped: the same address
		{"ws://[::ffff:169.254.169.254]:1", gateway.CodeForbidden},
	} {
		_, err := tool(t, op, `{"action":"register_peer","peerId":"p`+string(rune('a'+i))+`","peerName":"x","peerUrl":"`+tt.url+`","peerAgentId":"a"}`)
		if code(err) != tt.want {
			t.Errorf("register %s: %v; want %q", tt.url, err, tt.want)
		}
	}

	bad := newConfig(t, "main", "")
	bad.Gateway.DynamicPeerHosts = []string{"10.0.0.*", "10.1.2.3/8", "a b", ""}
	err := bad.Validate()
	for i := range bad.Gateway.DynamicPeerHosts {
		if want := "gateway.dynamicPeerHosts[" + string(rune('0'+i)) + "]"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want a problem at %s", err, want)
		}
	}
}

// TestPeerURLCredentialsRefused: a password in a peer URL is refused in the
// config file and by register_peer, naming the field and pointing to the
// token, and one stored before is not loaded; it shows nowhere.
func TestPeerURLCredentialsRefused(t *testing.T) {
	const pw = "hunter2-in-url"
	peerURL := "ws://alice:" + pw + "@127.0.0.1:1"

	cfg := newConfig(t, "main", "")
	cfg.Federation.Peers = []federation.PeerConfig{{ID: "p", Name: "p", URL: peerURL, AgentID: "a"}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "federation.peers[0].url") || !strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), pw) {
		t.Fatalf("Validate: %v; want a problem at federation.peers[0].url pointing to token, without the password", err)
	}

	// A dynamic peer stored by an earlier version, with its password.
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(federation.PeerConfig{ID: "old", Name: "old", URL: peerURL, AgentID: "a"})
	if err := st.Put(store.Peers, "old", b); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg = newConfig(t, "main", "")
	cfg.Storage.Dir = dir
	logs := &logBuffer{}
	g := startLogged(t, cfg, listen(t), logs)
	op := operator(t, g, "")
	_, err = tool(t, op, `{"action":"register_peer","peerId":"new","peerName":"x","peerUrl":"`+peerURL+`","peerAgentId":"a"}`)
	if code(err) != gateway.CodeInvalidParams || !strings.Contains(err.Error(), "peerUrl") || !strings.Contains(err.Error(), "peerToken") || strings.Contains(err.Error(), pw) {
		t.Fatalf("register_peer: %v; want INVALID_PARAMS naming peerUrl and peerToken, without the password", err)
	}
	list := mustTool(t, op, `{"action":"list_peers"}`)
	if n := at(list, "totalPeers"); n != 0.0 {
		t.Errorf("list_peers: %v; want no peer", list)
	}
	if !strings.Contains(logs.String(), `dynamic peer not loaded`) || !strings.Contains(logs.String(), "peer=old") {
		t.Errorf("no warning about the stored peer not loaded in the log:\n%s", logs)
	}
	op.Close()
	g.stop(t)
	audit, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	for where, s := range map[string]string{"list_peers": fmt.Sprint(list), "log": logs.String(), "audit log": string(audit)} {
		if strings.Contains(s, pw) {
			t.Errorf("the %s shows the password:\n%s", where, s)
		}
	}
}
