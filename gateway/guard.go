package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Guard holds the rules every HTTP request to a gateway's listener must
// pass, whatever it asks for (the WebSocket upgrade today, other endpoints
// later), against DNS rebinding and cross-site use by web pages:
//
//   - A request that carries an Origin header (browsers send one with
//     every WebSocket and every cross-site request) is refused unless
//     that origin is in AllowedOrigins. Programs (the CLI, peer gateways)
//     send none.
//   - Trust granted because a request comes from this machine (Local) also
//     needs its Host to name this machine: a loopback IP, "localhost", or
//     the host of ListenAddr. A page whose name was rebound to 127.0.0.1
//     sends its own name as Host, and is not local.
//
// Its zero value allows no browser origin. A Guard must not change once in
// use; it is safe for concurrent use.
type Guard struct {
	// ListenAddr is the configured listen address (host:port); its host,
	// unless it is a wildcard such as 0.0.0.0, is accepted as a local Host.
	ListenAddr string
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may make requests; compared case-insensitively, exactly otherwise.
	AllowedOrigins []string
	// Refused, when set, is called with "origin" for every request Wrap
	// refuses (for metrics). It must be safe for concurrent use.
	Refused func(reason string)
}

// maxShown bounds how much of a client's header an error repeats.
const maxShown = 80

// CheckOrigin returns a FORBIDDEN error when r carries an Origin header
// that is neither in AllowedOrigins nor r's own origin (SameOrigin).
func (g *Guard) CheckOrigin(r *http.Request) error {
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return nil
	}
	if len(origins) == 1 && g.SameOrigin(r, origins[0]) {
		return nil
	}
	if len(origins) == 1 && g != nil {
		for _, o := range g.AllowedOrigins {
			if NormalizeOrigin(o) == NormalizeOrigin(origins[0]) {
				return nil
			}
		}
	}
	return NewError(CodeForbidden, fmt.Sprintf("browser origin %q is not allowed here; list it in gateway.allowedOrigins to allow it",
		truncate(strings.Join(origins, ", "), maxShown)))
}

// SameOrigin reports whether origin is r's own scheme://Host (a page the
// gateway served itself) and that Host names this machine (LocalHost). A
// page whose name was rebound to this machine sends its own name as Host
// and as Origin, which agree but are not local, so it stays refused.
func (g *Guard) SameOrigin(r *http.Request, origin string) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return r.Host != "" && NormalizeOrigin(origin) == NormalizeOrigin(scheme+"://"+r.Host) && g.LocalHost(r)
}

// NormalizeOrigin lowercases an origin's scheme and host and drops a
// trailing slash, so that origins written differently compare equal.
func NormalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(o, "/"))
}

// ValidOrigin reports what is wrong with o as an AllowedOrigins entry, or
// "" when it is a scheme://host[:port] origin.
func ValidOrigin(o string) string {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "needs an http:// or https:// scheme"
	case u.Host == "" || u.User != nil:
		return "needs a host, like https://dashboard.example.com"
	case strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return "must be an origin only (scheme://host[:port]), without a path"
	}
	return ""
}

// LocalHost reports whether r's Host header names this machine: a loopback
// IP, "localhost" (or a name under .localhost), or the host of ListenAddr.
func (g *Guard) LocalHost(r *http.Request) bool {
	host := hostOnly(r.Host)
	if host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	if g == nil {
		return false
	}
	listen := hostOnly(g.ListenAddr)
	if ip := net.ParseIP(listen); listen == "" || ip != nil && ip.IsUnspecified() {
		return false // a wildcard names no host
	}
	return strings.EqualFold(strings.TrimSuffix(listen, "."), name)
}

// Local reports whether r came from this machine and says so itself: its
// connection is from a loopback address and its Host is local (LocalHost).
// Only then may a request be trusted for being local.
func (g *Guard) Local(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && g.LocalHost(r)
}

// Wrap returns a handler that refuses, with 403, every request whose
// Origin CheckOrigin refuses, and passes the others to next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.CheckOrigin(r); err != nil {
			if g != nil && g.Refused != nil {
				g.Refused("origin")
			}
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostOnly strips the port, and the brackets of an IPv6 literal, from a
// host[:port].
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}
