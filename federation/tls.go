package federation

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// TLS, both ways. A gateway with gateway.tls.certFile serves wss:// and
// reloads its certificate when the files change; with clientCaFile it asks
// for client certificates and maps their names to gateway.auth.peers. A
// wss:// peer is dialled with verification on: system roots, or the peer's
// tls.caFile, optionally narrowed by a public-key pin.

// certCheckInterval is how often, at most, a handshake looks at whether the
// certificate files changed.
const certCheckInterval = time.Second

// keyPair is a certificate and key loaded from two PEM files, reloaded when
// either file's modification time changes. A pair that fails to load is
// logged and the previous one kept.
type keyPair struct {
	certFile, keyFile string
	field             string // config path, for logs: gateway.tls
	log               *slog.Logger

	mu        sync.Mutex // guards the fields below
	cert      *tls.Certificate
	certMod   time.Time // modification times of the loaded files
	keyMod    time.Time
	checked   time.Time    // last look at the files
	failedMod [2]time.Time // modification times of the last pair that failed, logged once
}

// loadKeyPair loads the pair now, failing when it cannot.
func loadKeyPair(certFile, keyFile, field string, log *slog.Logger) (*keyPair, error) {
	k := &keyPair{certFile: certFile, keyFile: keyFile, field: field, log: log}
	certMod, keyMod := k.modTimes()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: load certFile %q and keyFile %q: %w", field, certFile, keyFile, err)
	}
	k.cert, k.certMod, k.keyMod, k.checked = &cert, certMod, keyMod, time.Now()
	return k, nil
}

func (k *keyPair) modTimes() (cert, key time.Time) {
	if fi, err := os.Stat(k.certFile); err == nil {
		cert = fi.ModTime()
	}
	if fi, err := os.Stat(k.keyFile); err == nil {
		key = fi.ModTime()
	}
	return cert, key
}

// get returns the current pair, first reloading it when the files changed
// and the last look was more than certCheckInterval ago.
func (k *keyPair) get() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.checked) < certCheckInterval {
		return k.cert
	}
	k.checked = time.Now()
	certMod, keyMod := k.modTimes()
	if certMod.Equal(k.certMod) && keyMod.Equal(k.keyMod) {
		return k.cert
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		// Perhaps one file is written and the other not yet: retry at the
		// next check, but log each changed pair once.
		if k.failedMod != [2]time.Time{certMod, keyMod} {
			k.failedMod = [2]time.Time{certMod, keyMod}
			k.log.Error("certificate files changed but do not load; still serving the previous certificate",
				"field", k.field, "certFile", k.certFile, "keyFile", k.keyFile, "err", err)
		}
		return k.cert
	}
	k.cert, k.certMod, k.keyMod = &cert, certMod, keyMod
	k.log.Info("certificate reloaded", "field", k.field, "certFile", k.certFile,
		"subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter)
	return k.cert
}

// newServerTLS returns the configuration the gateway serves wss:// with, or
// nil when gateway.tls has no certificate.
func newServerTLS(c ServerTLSConfig, log *slog.Logger) (*tls.Config, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	kp, err := loadKeyPair(c.CertFile, c.KeyFile, "gateway.tls", log)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get(), nil },
	}
	if c.ClientCAFile != "" {
		if cfg.ClientCAs, err = loadCAs(c.ClientCAFile); err != nil {
			return nil, fmt.Errorf("gateway.tls.clientCaFile: %w", err)
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	log.Info("serving TLS", "certFile", c.CertFile, "subject", kp.cert.Leaf.Subject.String(), "notAfter", kp.cert.Leaf.NotAfter,
		"clientAuth", cfg.ClientAuth.String())
	return cfg, nil
}

// logPeerTLS warns at start about a peer whose certificate is not verified.
func logPeerTLS(log *slog.Logger, p *PeerConfig) {
	switch c := p.TLS; {
	case c == nil || !c.InsecureSkipVerify:
	case c.PinSHA256 != "":
		log.Warn("peer TLS trusts the pinned public key only (insecureSkipVerify with pinSha256): the certificate chain, name and expiry are not checked",
			"peer", p.ID)
	default:
		log.Warn("peer TLS certificate verification is OFF (insecureSkipVerify): anyone on the network path can impersonate this peer; set tls.caFile or tls.pinSha256 instead",
			"peer", p.ID, "url", p.URL)
	}
}

// loadCAs reads a PEM bundle of CA certificates.
func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// certPeerID returns the gateway.auth.peers serverId named by the verified
// client certificate of r (its common name or a DNS name), or "".
func certPeerID(r *http.Request, creds []PeerCredential) string {
	if r == nil || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return ""
	}
	leaf := r.TLS.VerifiedChains[0][0]
	for _, c := range creds {
		if c.ServerID == "" {
			continue
		}
		if leaf.Subject.CommonName == c.ServerID {
			return c.ServerID
		}
		for _, name := range leaf.DNSNames {
			if name == c.ServerID {
				return c.ServerID
			}
		}
	}
	return ""
}

// pin is a parsed pinSha256: the SHA-256 of a SubjectPublicKeyInfo.
type pin struct {
	sum [sha256.Size]byte
	hex bool // written in hex, so shown in hex
}

// parsePin accepts the digest in hex (colons allowed) or base64, with an
// optional "sha256/" prefix.
func parsePin(s string) (pin, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "sha256/")
	var p pin
	if b, err := hex.DecodeString(strings.ReplaceAll(s, ":", "")); err == nil {
		if len(b) != sha256.Size {
			return p, fmt.Errorf("%q is %d bytes of hex; a SHA-256 is 32 bytes (64 hex digits)", s, len(b))
		}
		copy(p.sum[:], b)
		p.hex = true
		return p, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != sha256.Size {
				return p, fmt.Errorf("%q is %d bytes of base64; a SHA-256 is 32 bytes", s, len(b))
			}
			copy(p.sum[:], b)
			return p, nil
		}
	}
	return p, fmt.Errorf("%q is neither hex nor base64; give the SHA-256 of the certificate's public key", s)
}

func (p pin) matches(c *x509.Certificate) bool {
	return sha256.Sum256(c.RawSubjectPublicKeyInfo) == p.sum
}

// format shows sum the way p was written.
func (p pin) format(sum [sha256.Size]byte) string {
	if p.hex {
		return hex.EncodeToString(sum[:])
	}
	return base64.StdEncoding.EncodeToString(sum[:])
}

// peerTLSConfig builds the client configuration for dialling peer id.
//
// Without insecureSkipVerify the chain is verified against the system roots
// or tls.caFile, and a pin must then match a certificate of the verified
// chain (the leaf, or the CA that issued it). With insecureSkipVerify and a
// pin, only the pin is checked, against the leaf's key: the trust model of
// a self-signed certificate known in advance. With insecureSkipVerify alone
// nothing is checked.
func peerTLSConfig(id string, c *PeerTLSConfig, log *slog.Logger) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c == nil {
		return cfg, nil
	}
	var err error
	if c.CAFile != "" {
		if cfg.RootCAs, err = loadCAs(c.CAFile); err != nil {
			return nil, fmt.Errorf("peer %q: tls.caFile: %w", id, err)
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		kp, err := loadKeyPair(c.CertFile, c.KeyFile, fmt.Sprintf("peer %q tls", id), log)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get(), nil }
	}
	cfg.InsecureSkipVerify = c.InsecureSkipVerify
	if c.PinSHA256 != "" {
		want, err := parsePin(c.PinSHA256)
		if err != nil {
			return nil, fmt.Errorf("peer %q: tls.pinSha256: %w", id, err)
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return checkPin(id, want, c.PinSHA256, cs) }
	}
	return cfg, nil
}

// checkPin runs after the usual verification, which insecureSkipVerify
// turns off: then only the leaf can be pinned.
func checkPin(id string, want pin, wrote string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("peer %q: presented no certificate to check pinSha256 against", id)
	}
	if len(cs.VerifiedChains) == 0 {
		if want.matches(cs.PeerCertificates[0]) {
			return nil
		}
	}
	for _, chain := range cs.VerifiedChains {
		for _, cert := range chain {
			if want.matches(cert) {
				return nil
			}
		}
	}
	got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
	return &pinError{peer: id, got: want.format(got), want: wrote}
}

// pinError is a failed pinSha256 check.
type pinError struct {
	peer, got, want string
}

func (e *pinError) Error() string {
	return fmt.Sprintf("peer %q: certificate pin mismatch: got sha256/%s, want %s; check federation.peers[].tls.pinSha256", e.peer, e.got, e.want)
}

// peerClients keeps one HTTP client, with its own transport, per wss://
// peer, rebuilt when the peer's URL or TLS settings change.
type peerClients struct {
	mu   sync.Mutex // guards byID
	byID map[string]*peerClient
}

type peerClient struct {
	url    string
	tls    PeerTLSConfig  // the settings it was built from
	guard  *hostAllowList // whose dialer it was built with; a reloaded list builds a new client
	client *http.Client
}

// get returns the HTTP client for dialling p: nil (the default) for a
// ws:// peer without guard. A guard, when not nil, checks every address
// the client connects to (a dynamic peer under gateway.dynamicPeerHosts).
// gateway.Dial follows no redirect, whatever client it is given.
func (pc *peerClients) get(p *PeerConfig, guard *hostAllowList, log *slog.Logger) (*http.Client, error) {
	u, err := url.Parse(p.URL)
	secure := err == nil && u.Scheme == "wss"
	if !secure && guard == nil {
		return nil, nil
	}
	var want PeerTLSConfig
	if p.TLS != nil {
		want = *p.TLS
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c := pc.byID[p.ID]; c != nil {
		if c.url == p.URL && c.tls == want && c.guard == guard {
			return c.client, nil
		}
		c.client.CloseIdleConnections()
		delete(pc.byID, p.ID)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if secure {
		if tr.TLSClientConfig, err = peerTLSConfig(p.ID, p.TLS, log); err != nil {
			return nil, err
		}
	}
	tr.ForceAttemptHTTP2 = false // a WebSocket upgrade needs HTTP/1.1
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if guard != nil {
		tr.Proxy = nil // the address checked must be the peer's, not a proxy's
		tr.DialContext = guard.dialer(p.ID).DialContext
	}
	if pc.byID == nil {
		pc.byID = make(map[string]*peerClient)
	}
	c := &peerClient{url: p.URL, tls: want, guard: guard, client: &http.Client{Transport: tr}}
	pc.byID[p.ID] = c
	return c.client, nil
}

// closeIdle releases every cached transport's idle connections.
func (pc *peerClients) closeIdle() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, c := range pc.byID {
		c.client.CloseIdleConnections()
	}
}

// explainDialError rewrites a TLS failure dialling peer id so that it says
// what failed and what to change; other errors pass unchanged.
func explainDialError(id string, err error) error {
	var (
		aerr *addrRefusedError
		perr *pinError
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		oerr *net.OpError
	)
	switch {
	case errors.As(err, &aerr):
		return fmt.Errorf("%w: %v", ErrForbidden, aerr)
	case errors.As(err, &perr):
		return perr // names the peer and both pins
	case errors.As(err, &herr):
		return fmt.Errorf("peer %q: TLS certificate is not valid for this URL's host: %v; dial a name the certificate lists", id, herr)
	case errors.As(err, &verr):
		return fmt.Errorf("peer %q: TLS certificate not trusted: %v; set federation.peers[].tls.caFile to the CA that issued it, or pin its key with tls.pinSha256", id, verr.Err)
	case errors.As(err, &oerr) && oerr.Op == "remote error":
		return fmt.Errorf("peer %q refused the TLS handshake (%v): if it requires a client certificate, set tls.certFile and tls.keyFile to one it trusts", id, oerr)
	}
	return err
}

// serverTLS validates gateway.tls.
func (ch *checker) serverTLS(c *ServerTLSConfig) {
	const path = "gateway.tls"
	if ch.keyPairFiles(path, c.CertFile, c.KeyFile) {
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			ch.add(path+".certFile", "cannot load the certificate and key: %v", err)
		}
	}
	if c.ClientCAFile != "" {
		if c.CertFile == "" {
			ch.add(path+".clientCaFile", "needs gateway.tls.certFile and keyFile: client certificates are asked for only over TLS")
		}
		ch.caFile(path+".clientCaFile", c.ClientCAFile)
	}
	if c.RequireClientCert && c.ClientCAFile == "" {
		ch.add(path+".requireClientCert", "needs gateway.tls.clientCaFile, the CAs that client certificates must be issued by")
	}
}

// peerTLS validates federation.peers[i].tls.
func (ch *checker) peerTLS(p *PeerConfig, path string) {
	c := p.TLS
	if c == nil || *c == (PeerTLSConfig{}) {
		return
	}
	path += ".tls"
	if u, err := url.Parse(p.URL); err == nil && (u.Scheme == "ws" || u.Scheme == "http") {
		secure := map[string]string{"ws": "wss", "http": "https"}[u.Scheme]
		ch.add(path, "has no effect on a %s:// URL, which is neither encrypted nor verified; use %s:// or remove tls", u.Scheme, secure)
	}
	if ch.keyPairFiles(path, c.CertFile, c.KeyFile) {
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			ch.add(path+".certFile", "cannot load the client certificate and key: %v", err)
		}
	}
	if c.CAFile != "" {
		ch.caFile(path+".caFile", c.CAFile)
	}
	if c.PinSHA256 != "" {
		if _, err := parsePin(c.PinSHA256); err != nil {
			ch.add(path+".pinSha256", "%v", err)
		}
	}
}

// keyPairFiles checks that certFile and keyFile are both set or both
// empty, and reports whether both are set.
func (ch *checker) keyPairFiles(path, certFile, keyFile string) bool {
	switch {
	case certFile != "" && keyFile == "":
		ch.add(path+".keyFile", "required with %s.certFile; give the PEM file of its private key", path)
	case certFile == "" && keyFile != "":
		ch.add(path+".certFile", "required with %s.keyFile; give the PEM file of its certificate", path)
	}
	return certFile != "" && keyFile != ""
}

func (ch *checker) caFile(path, file string) {
	pem, err := os.ReadFile(file)
	switch {
	case err != nil:
		ch.add(path, "cannot read it: %v", err)
	case !x509.NewCertPool().AppendCertsFromPEM(pem):
		ch.add(path, "%s holds no PEM certificate", file)
	}
}
