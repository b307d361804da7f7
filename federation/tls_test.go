package federation_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"github.com/agentfed/agentfed/internal/tstest"
	"log/slog"
	"math/big"
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
)

// testCA is a certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
	dir  string
}

func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		panic(err)
	}
	return n
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, dir: t.TempDir()}
	ca.file = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue signs a certificate for cn: a server certificate for 127.0.0.1,
// or a client certificate. It returns the PEM certificate and key.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), cert
}

// issueFiles is issue writing the pair to files named after cn.
func (ca *testCA) issueFiles(t *testing.T, cn string, usage x509.ExtKeyUsage) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	certPEM, keyPEM, cert := ca.issue(t, cn, usage)
	certFile, keyFile = filepath.Join(ca.dir, cn+".pem"), filepath.Join(ca.dir, cn+"-key.pem")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	return certFile, keyFile, cert
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	writeFile(t, file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func writeFile(t *testing.T, file string, b []byte) {
	t.Helper()
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func pinOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func pinHexOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// logBuffer collects a node's logs for a test to search.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged is start with the node's logs, debug and up, kept in logs.
func startLogged(t *testing.T, cfg *federation.Config, ln net.Listener, logs *logBuffer) *gw {
	t.Helper()
	return startWith(t, cfg, ln, nil, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// tlsGateway starts "secure-server", hosting agent-1, serving wss:// with a
// certificate for 127.0.0.1 issued by ca.
func tlsGateway(t *testing.T, ca *testCA, logs *logBuffer, tune func(*federation.Config)) (*gw, *x509.Certificate) {
	t.Helper()
	cfg := newConfig(t, "secure-server", "agent-1", "x")
	var leaf *x509.Certificate
	cfg.Gateway.TLS.CertFile, cfg.Gateway.TLS.KeyFile, leaf = ca.issueFiles(t, "secure-server", x509.ExtKeyUsageServerAuth)
	if tune != nil {
		tune(cfg)
	}
	g := startLogged(t, cfg, listen(t), logs)
	if !strings.HasPrefix(g.URL(), "wss://") {
		t.Fatalf("URL %s; want wss://", g.URL())
	}
	return g, leaf
}

// sendOverTLS starts a plain gateway named serverID whose peer "secure" is
// target with the given tls settings, and sends it one message.
func sendOverTLS(t *testing.T, serverID string, target *gw, tlsConf *federation.PeerTLSConfig, logs *logBuffer) map[string]any {
	t.Helper()
	cfg := newConfig(t, serverID, "")
	p := federation.PeerConfig{ID: "secure", Name: "secure gateway", URL: target.URL(), AgentID: "agent-1", Capabilities: []string{"x"}, TLS: tlsConf}
	cfg.Federation.Peers = []federation.PeerConfig{p}
	m := startLogged(t, cfg, listen(t), logs)
	return mustTool(t, operator(t, m, ""), `{"action":"send","peerId":"secure","message":"hi"}`)
}

// checkSend fails t unless r succeeded (wantCode "") or failed with
// wantCode and a message containing every one of want.
func checkSend(t *testing.T, r map[string]any, wantCode string, want ...string) {
	t.Helper()
	if wantCode == "" {
		if r["status"] != "ok" {
			t.Fatalf("send: %v; want ok", r)
		}
		return
	}
	msg, _ := at(r, "error", "message").(string)
	if r["status"] != "error" || at(r, "error", "code") != wantCode {
		t.Fatalf("send: %v; want error %s", r, wantCode)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("send error %q does not mention %q", msg, w)
		}
	}
}

func TestPeerTLSVerification(t *testing.T) {
	ca, other := newCA(t, "test CA"), newCA(t, "other CA")
	g, leaf := tlsGateway(t, ca, &logBuffer{}, nil)
	for _, tt := range []struct {
		name     string
		tls      *federation.PeerTLSConfig
		wantCode string   // "" for a delivered message
		want     []string // in the error message, or else in the log
	}{
		{name: "caFile", tls: &federation.PeerTLSConfig{CAFile: ca.file}},
		{name: "system roots do not know a private CA", wantCode: gateway.CodePeerUnavailable,
			want: []string{`peer "secure"`, "certificate not trusted", "tls.caFile"}},
		{name: "caFile of another CA", tls: &federation.PeerTLSConfig{CAFile: other.file}, wantCode: gateway.CodePeerUnavailable,
			want: []string{`peer "secure"`, "certificate not trusted"}},
		{name: "pin of the leaf", tls: &federation.PeerTLSConfig{CAFile: ca.file, PinSHA256: pinOf(leaf)}},
		{name: "pin of the CA, in hex", tls: &federation.PeerTLSConfig{CAFile: ca.file, PinSHA256: pinHexOf(ca.cert)}},
		{name: "pin mismatch", tls: &federation.PeerTLSConfig{CAFile: ca.file, PinSHA256: pinOf(other.cert)}, wantCode: gateway.CodePeerUnavailable,
			want: []string{`peer "secure": certificate pin mismatch`, "got sha256/" + pinOf(leaf), "want " + pinOf(other.cert)}},
		{name: "pin alone", tls: &federation.PeerTLSConfig{InsecureSkipVerify: true, PinSHA256: "sha256/" + pinOf(leaf)},
			want: []string{"level=WARN", "pinned public key only", "peer=secure"}},
		{name: "pin alone checks the leaf only", tls: &federation.PeerTLSConfig{InsecureSkipVerify: true, PinSHA256: pinOf(ca.cert)},
			wantCode: gateway.CodePeerUnavailable, want: []string{"certificate pin mismatch"}},
		{name: "insecureSkipVerify", tls: &federation.PeerTLSConfig{InsecureSkipVerify: true},
			want: []string{"level=WARN", "verification is OFF", "peer=secure"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			r := sendOverTLS(t, "main-server", g, tt.tls, logs)
			if tt.wantCode != "" {
				checkSend(t, r, tt.wantCode, tt.want...)
				return
			}
			checkSend(t, r, "")
			for _, w := range tt.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log does not mention %q:\n%s", w, logs)
				}
			}
			if len(tt.want) == 0 && strings.Contains(logs.String(), "level=WARN msg=\"peer TLS") {
				t.Errorf("unexpected TLS warning:\n%s", logs)
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA := newCA(t, "server CA"), newCA(t, "client CA")
	mtls := func(require bool) func(*federation.Config) {
		return func(cfg *federation.Config) {
			cfg.Federation.RequireAuth = true
			cfg.Gateway.Auth.Peers = []federation.PeerCredential{{ServerID: "main-server", Token: "main-token"}}
			cfg.Gateway.TLS.ClientCAFile = clientCA.file
			cfg.Gateway.TLS.RequireClientCert = require
		}
	}
	required, _ := tlsGateway(t, serverCA, &logBuffer{}, mtls(true))
	optional, _ := tlsGateway(t, serverCA, &logBuffer{}, mtls(false))
	withCert := func(cn string) *federation.PeerTLSConfig {
		c := &federation.PeerTLSConfig{CAFile: serverCA.file}
		c.CertFile, c.KeyFile, _ = clientCA.issueFiles(t, cn, x509.ExtKeyUsageClientAuth)
		return c
	}
	for _, tt := range []struct {
		name, serverID string
		target         *gw
		tls            *federation.PeerTLSConfig
		wantCode       string
		want           []string
	}{
		{"certificate names an auth.peers serverId", "main-server", required, withCert("main-server"), "", nil},
		// The identity is the certificate's, whatever the dialling
		// gateway calls itself: its messages' fromServer must match it.
		{"identity comes from the certificate", "impostor", required, withCert("main-server"), gateway.CodeForbidden,
			[]string{`fromServer "impostor"`, `authenticated as "main-server"`}},
		{"certificate names no auth.peers entry", "stranger", required, withCert("stranger"), gateway.CodeUnauthorized,
			[]string{"requires authentication"}},
		{"no client certificate", "main-server", required, &federation.PeerTLSConfig{CAFile: serverCA.file}, gateway.CodePeerUnavailable,
			[]string{`peer "secure" refused the TLS handshake`, "tls.certFile"}},
		{"optional: certificate", "main-server", optional, withCert("main-server"), "", nil},
		{"optional: no certificate, no token", "main-server", optional, &federation.PeerTLSConfig{CAFile: serverCA.file}, gateway.CodeUnauthorized,
			[]string{"requires authentication"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkSend(t, sendOverTLS(t, tt.serverID, tt.target, tt.tls, &logBuffer{}), tt.wantCode, tt.want...)
		})
	}
}

// dialTrusting connects to g as an operator, trusting only caFile.
func dialTrusting(g *gw, caFile string) error {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("read %s: %v", caFile, err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gateway.Dial(ctx, g.URL(), &gateway.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return err
	}
	return c.Close()
}

func TestServerCertReload(t *testing.T) {
	caOld, caNew := newCA(t, "old CA"), newCA(t, "new CA")
	logs := &logBuffer{}
	g, _ := tlsGateway(t, caOld, logs, nil)
	if err := dialTrusting(g, caOld.file); err != nil {
		t.Fatalf("before the reload, trusting the old CA: %v", err)
	}
	if err := dialTrusting(g, caNew.file); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("before the reload, trusting the new CA: %v; want a certificate error", err)
	}

	// A key that does not load is logged, and the old pair kept.
	writeFile(t, g.cfg.Gateway.TLS.KeyFile, []byte("not a key"))
	tstest.WaitFor(t, 5*time.Second, func() error {
		if err := dialTrusting(g, caOld.file); err != nil {
			return fmt.Errorf("with a broken key file, trusting the old CA: %v", err)
		}
		if !strings.Contains(logs.String(), "still serving the previous certificate") {
			return fmt.Errorf("no error logged for the broken key file")
		}
		return nil
	})

	certPEM, keyPEM, _ := caNew.issue(t, "secure-server", x509.ExtKeyUsageServerAuth)
	writeFile(t, g.cfg.Gateway.TLS.CertFile, certPEM)
	writeFile(t, g.cfg.Gateway.TLS.KeyFile, keyPEM)
	tstest.WaitFor(t, 5*time.Second, func() error { return dialTrusting(g, caNew.file) })
	if err := dialTrusting(g, caOld.file); err == nil {
		t.Fatal("after the reload, a client trusting only the old CA still connects")
	}
	checkSend(t, sendOverTLS(t, "main-server", g, &federation.PeerTLSConfig{CAFile: caNew.file}, &logBuffer{}), "")
}
