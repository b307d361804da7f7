package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// A WebSocket dial never follows an HTTP redirect. The server dialled was
// chosen and checked by its URL: a redirect could take the connection, and
// the token sent after the upgrade, to another host, or from wss:// down to
// ws://. A gateway that moved is dialled at its new address instead.

// maxShownURL bounds a redirect target quoted in an error: the server chose
// it.
const maxShownURL = 120

// redirectError is the error of a dial answered with a redirect.
type redirectError struct {
	to string // the target, without userinfo, bounded
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("the server answered the WebSocket upgrade with a redirect to %s; "+
		"redirects are never followed (they could leave TLS or the hosts allowed): dial the final address instead", e.to)
}

// refuseRedirect is every dial's http.Client CheckRedirect.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return &redirectError{to: shownURL(req.URL)}
}

// shownURL is u for an error message: without userinfo, and cut to
// maxShownURL bytes.
func shownURL(u *url.URL) string {
	s := u.Redacted()
	if len(s) > maxShownURL {
		s = s[:maxShownURL] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// redirectRefused returns a coded error for a dial that failed on a
// redirect, without the client's wrapping (which quotes the whole target
// URL), or nil.
func redirectRefused(dialURL string, err error) error {
	var re *redirectError
	if !errors.As(err, &re) {
		return nil
	}
	shown := "the gateway"
	if u, perr := url.Parse(dialURL); perr == nil {
		shown = shownURL(u)
	}
	return NewError(CodePeerUnavailable, fmt.Sprintf("dial %s: %v", shown, re))
}
