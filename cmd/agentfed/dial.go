package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/agentfed/agentfed/gateway"
)

// checkURL refuses a --gateway that is not a ws:// or wss:// URL before
// anything is dialled, suggesting the URL that was probably meant.
func (f *clientFlags) checkURL() error {
	u, err := url.Parse(f.gateway)
	if err == nil && (u.Scheme == "ws" || u.Scheme == "wss") && u.Host != "" {
		return nil
	}
	shown := f.gateway
	if len(shown) > 100 {
		shown = shown[:100] + "..."
	}
	hint := "write it ws://HOST:PORT, or wss://HOST:PORT for a gateway that serves TLS"
	switch s := f.gateway; {
	case strings.HasPrefix(s, "http://"):
		hint = "did you mean --gateway ws://" + strings.TrimPrefix(s, "http://") + "?"
	case strings.HasPrefix(s, "https://"):
		hint = "did you mean --gateway wss://" + strings.TrimPrefix(s, "https://") + "?"
	case s != "" && !strings.Contains(s, "://") && len(s) <= 100:
		hint = "did you mean --gateway ws://" + s + "? (wss:// if it serves TLS)"
	}
	return usageErr("--gateway %q is not a ws:// or wss:// URL; %s", shown, hint)
}

// dialWaiting dials the gateway; while the dial fails the way a gateway
// that is starting or restarting makes it fail (see startingUp) it tries
// again until --wait has passed.
func (f *clientFlags) dialWaiting(ctx context.Context, opts *gateway.DialOptions) (*gateway.Client, error) {
	if f.wait < 0 {
		return nil, usageErr("--wait %v: give a duration such as 10s, or 0 not to wait", f.wait)
	}
	deadline := time.Now().Add(f.wait)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		// A gateway that is starting may be writing its operator token.
		token, err := f.operatorToken()
		if err != nil {
			return nil, err
		}
		opts.Token = token
		c, err := gateway.Dial(ctx, f.gateway, opts)
		left := time.Until(deadline)
		if err == nil || !startingUp(err) || left <= 0 {
			return c, err
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// startingUp reports whether a dial failed the way it does while a gateway
// starts or restarts: nothing listens yet (connection refused), or the
// connection is reset or cut before the handshake is answered (a process
// going down, or a port being handed over).
func startingUp(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// dialProblem explains why the gateway could not be reached, and what to
// do about it.
func (f *clientFlags) dialProblem(ctx context.Context, err error) error {
	fail := func(format string, args ...any) error {
		return &exitError{code: exitFailed, errCode: codeUnreachable, err: fmt.Errorf(format, args...)}
	}
	var (
		ge        *gateway.Error
		authority x509.UnknownAuthorityError
		cert      *tls.CertificateVerificationError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &ge):
		return &exitError{code: exitFailed, err: fmt.Errorf("gateway %s refused the connection: %w", f.gateway, err)}
	case errors.As(err, &authority) && f.caFile == "":
		return fail("gateway %s presented a certificate from an authority this machine does not trust; "+
			"pass --ca-file with the CA that signed it (or set $AGENTFED_CA_FILE)", f.gateway)
	case errors.As(err, &authority):
		return fail("gateway %s presented a certificate that no CA in --ca-file %s signed", f.gateway, f.caFile)
	case errors.As(err, &cert):
		return fail("gateway %s presented a certificate that is not valid: %v", f.gateway, cert.Err)
	case errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fail("gateway %s does not serve TLS; use --gateway ws://%s", f.gateway, strings.TrimPrefix(f.gateway, "wss://"))
	case errors.Is(err, syscall.ECONNREFUSED) && f.wait > 0:
		return fail("no gateway answered at %s within --wait %v (connection refused); is 'agentfed serve' running there?", f.gateway, f.wait)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail("cannot reach gateway at %s: connection refused; is 'agentfed serve' running there? "+
			"(if it is still starting, add --wait 10s)", f.gateway)
	case strings.HasPrefix(f.gateway, "ws://") && servesTLS(ctx, f.gateway):
		return fail("gateway %s serves TLS; use --gateway wss://%s", f.gateway, strings.TrimPrefix(f.gateway, "ws://"))
	}
	return fail("cannot reach gateway at %s (is 'agentfed serve' running there?): %v", f.gateway, err)
}

// servesTLS reports whether the host of a ws:// URL answers a TLS
// handshake, which explains a failed plain-text dial.
func servesTLS(ctx context.Context, rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		InsecureSkipVerify: true, // only to learn whether TLS is spoken; nothing is sent
		MinVersion:         tls.VersionTLS12,
	}}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
