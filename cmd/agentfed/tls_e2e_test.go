package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTLSFiles writes a fresh CA and a server certificate for 127.0.0.1
// signed by it, and returns the CA, certificate and key file names.
func writeTLSFiles(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("gw.pem", "CERTIFICATE", leafDER), write("gw-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestCLIOverWSS: the CLI reaches a wss:// gateway whose certificate a
// private CA signed when given --ca-file, and refuses it without.
func TestCLIOverWSS(t *testing.T) {
	caFile, certFile, keyFile := writeTLSFiles(t)
	cfg := writeFile(t, "tls.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: tls-gw}
gateway: {tls: {certFile: %q, keyFile: %q}}
storage: {dir: %q}
`, certFile, keyFile, t.TempDir()))
	s := serve(t, "--config", cfg)
	wss := "wss://" + strings.TrimPrefix(s.URL, "ws://")
	out, errOut, code := agentfed(t, "", "peers", "--gateway", wss, "--ca-file", caFile)
	if code != 0 || !strings.Contains(out, "tls-gw: 0 peers") {
		t.Fatalf("peers over wss with --ca-file: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := agentfed(t, "", "peers", "--gateway", wss); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("peers over wss without the CA: exit %d %q; want a certificate error", code, errOut)
	}
	if _, errOut, code := agentfed(t, "", "peers", "--gateway", wss, "--ca-file", cfg); code != 2 || !strings.Contains(errOut, "no PEM certificate") {
		t.Fatalf("--ca-file that is not PEM: exit %d %q", code, errOut)
	}
}
