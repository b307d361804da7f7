package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/tstest"
	"github.com/chromedp/chromedp"
)

const uiToken = "dashboard-test-operator-token-0123456789"

// uiGateways starts gateway "a" (operator token uiToken) with peers "b"
// and "c", each a real gateway on a loopback port, and returns a, b and
// b's listen address.
func uiGateways(t *testing.T) (a, b *gw, addrB string) {
	lnB, lnC := listen(t), listen(t)
	b = start(t, newConfig(t, "b-server", "b-agent", "translate"), lnB, nil)
	start(t, newConfig(t, "c-server", "c-agent", "summarize"), lnC, nil)
	cfg := newConfig(t, "a-server", "a-agent")
	cfg.Gateway.Auth.OperatorToken = uiToken
	cfg.Gateway.HeartbeatMs = 50
	cfg.Gateway.Breaker = federation.BreakerConfig{Failures: 2, OpenMs: 60000}
	cfg.Federation.Peers = []federation.PeerConfig{peerConf("b", "b-agent", lnB, "translate"), peerConf("c", "c-agent", lnC, "summarize")}
	a = start(t, cfg, listen(t), nil)
	return a, b, lnB.Addr().String()
}

// chromium returns the Chromium binary the dashboard test drives, skipping
// the test when there is none (failing it under CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AGENTFED_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed (apt-get install chromium), nor AGENTFED_CHROMIUM set"
	if os.Getenv("CI") == "true" {
		t.Fatal("CI must run the dashboard browser test: " + msg)
	}
	t.Skip(msg)
	return ""
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// real gateways: a wrong token is refused, the right one logs in, a message
// sent from the form shows its answer, peer b turns down when its gateway
// stops and healthy when it is back, and a dead letter is retried.
func TestDashboardInBrowser(t *testing.T) {
	path := chromium(t)
	a, b, addrB := uiGateways(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1200, 1500))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first action starts the browser, which lives as long as its
	// context: it has no timeout; the later ones do.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// until waits for a JavaScript condition on the page.
	until := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	peerState := func(id string) string {
		return fmt.Sprintf(`document.querySelector('#peers tr[data-peer=%q] .state')?.textContent`, id)
	}

	run("open the dashboard", chromedp.Navigate("http://"+a.Addr().String()+federation.PathUI), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	run("log in with a wrong token", chromedp.SetValue(chromedp.CSS("#token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login-form button")))
	until("the wrong token is refused", `document.querySelector('#error').textContent.includes('operator token is wrong')`)
	run("log in", chromedp.SetValue(chromedp.CSS("#token"), uiToken), chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#dashboard")))
	until("local agent listed", `document.querySelector('#agents tr[data-agent="a-agent"]') !== null`)

	run("send a message", chromedp.SetValue(chromedp.CSS("#send-target"), "b"),
		chromedp.SetValue(chromedp.CSS("#send-message"), "hello from the dashboard"), chromedp.Click(chromedp.CSS("#send-form button")))
	until("the answer is shown", `document.querySelector('#send-result').textContent.startsWith('answer: ') &&
		document.querySelector('#send-result').textContent.includes('hello from the dashboard')`)
	until("peer b healthy", peerState("b")+` === 'healthy'`)
	if r, err := a.Send(context.Background(), federation.SendRequest{PeerID: "c", Message: "hi"}); err != nil || r.Status != federation.StatusOK {
		t.Fatalf("send to c: %+v, %v", r, err)
	}
	until("peer c healthy", peerState("c")+` === 'healthy'`)

	// Stop b: two failed sends open its circuit; a durable message with a
	// short ttl becomes a dead letter.
	b.stop(t)
	for range 2 {
		a.Send(context.Background(), federation.SendRequest{PeerID: "b", Message: "lost"})
	}
	r, err := a.Send(context.Background(), federation.SendRequest{PeerID: "b", Message: "retry me",
		MessageOptions: federation.MessageOptions{Durable: true, TTLMs: 500}})
	if err != nil {
		t.Fatal(err)
	}
	until("peer b down", peerState("b")+` === 'down'`)
	dead := fmt.Sprintf(`#outbox tr[data-message=%q]`, r.MessageID)
	until("dead letter listed", fmt.Sprintf(`document.querySelector('%s .state')?.textContent === 'dead'`, dead))

	// The screenshot README shows: a peer down, one healthy, a dead letter.
	if out := os.Getenv("AGENTFED_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if !filepath.IsAbs(out) {
			out = filepath.Join("..", out) // relative to the repository root
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ln, err := net.Listen("tcp", addrB)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addrB, err)
	}
	start(t, newConfig(t, "b-server", "b-agent", "translate"), ln, nil)
	tstest.WaitFor(t, 20*time.Second, func() error { // the heartbeat redials b and closes its circuit
		if p := a.ListPeers().Peers[0]; !p.Connected || p.Health.Circuit != "closed" {
			return fmt.Errorf("peer b not back: connected=%v %+v", p.Connected, p.Health)
		}
		return nil
	})
	run("retry the dead letter", chromedp.Click(chromedp.CSS(dead+` button[data-op="retry"]`)))
	tstest.WaitFor(t, 20*time.Second, func() error {
		e, err := a.MessageStatus(r.MessageID)
		if err != nil || e.State != federation.StateDelivered {
			return fmt.Errorf("retried message: %+v, %v", e, err)
		}
		return nil
	})
	until("delivered message leaves the list", fmt.Sprintf(`document.querySelector('%s') === null`, dead))
	// Successful deliveries outweigh the failures that took it down.
	tstest.WaitFor(t, 20*time.Second, func() error {
		a.Send(context.Background(), federation.SendRequest{PeerID: "b", Message: "are you back?"})
		if p := a.ListPeers().Peers[0]; p.Health.State != federation.HealthHealthy {
			return fmt.Errorf("peer b: %+v", p.Health)
		}
		return nil
	})
	until("peer b healthy again", peerState("b")+` === 'healthy'`)
	until("audit trail shows the retry", `[...document.querySelectorAll('#audit td')].some(td => td.textContent === 'retry')`)

	run("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	if err := chromedp.Cancel(bctx); err != nil {
		t.Errorf("closing the browser: %v", err)
	}
}

// uiClient calls gateway g's dashboard API over plain HTTP, as a browser
// on origin would (none: a program).
type uiClient struct {
	t      *testing.T
	base   string
	origin string
	cookie *http.Cookie
}

func (c *uiClient) do(method, path, contentType, body string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res, string(data)
}

func (c *uiClient) login(token string) (*http.Response, string) {
	c.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	return c.do(http.MethodPost, "/ui/api/login", "application/json", string(body))
}

// TestDashboardLoginAndOrigin checks the dashboard's security rules over
// plain HTTP: the page's headers, login by token only, the session
// cookie's flags and bound, and that state-changing calls need the
// session, JSON and an allowed Origin.
func TestDashboardLoginAndOrigin(t *testing.T) {
	a, _, _ := uiGateways(t)
	self := "http://" + a.Addr().String()
	c := &uiClient{t: t, base: self, origin: self}

	res, body := c.do(http.MethodGet, "/ui/", "", "")
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
		strings.Contains(csp, "unsafe-inline") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET /ui/: %d, headers %v", res.StatusCode, res.Header)
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, `<script src="app.js"`) {
		t.Fatalf("the page should load its script from a file only:\n%s", body)
	}
	if res, body := c.do(http.MethodGet, "/ui/api/state", "", ""); res.StatusCode != 401 || !strings.Contains(body, "log in") {
		t.Fatalf("state without a session: %d %s", res.StatusCode, body)
	}
	if res, body := c.login("wrong"); res.StatusCode != 401 || !strings.Contains(body, "operator token is wrong") {
		t.Fatalf("wrong token: %d %s", res.StatusCode, body)
	}
	if res, body := c.login(strings.Repeat("x", 8<<10)); res.StatusCode != 400 || !strings.Contains(body, "TOO_LARGE") {
		t.Fatalf("oversized login: %d %s", res.StatusCode, body)
	}
	evil := &uiClient{t: t, base: self, origin: "http://evil.example"}
	if res, body := evil.login(uiToken); res.StatusCode != 403 || !strings.Contains(body, "evil.example") {
		t.Fatalf("login from another origin: %d %s", res.StatusCode, body)
	}
	if res, body := (&uiClient{t: t, base: self}).login(uiToken); res.StatusCode != 403 || !strings.Contains(body, "Origin") {
		t.Fatalf("login without an Origin: %d %s", res.StatusCode, body)
	}

	res, _ = c.login(uiToken)
	if res.StatusCode != 200 || len(res.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	ck := res.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui" || len(ck.Value) < 32 || ck.MaxAge <= 0 {
		t.Fatalf("session cookie: %+v", ck)
	}
	if strings.Contains(ck.Value, uiToken) {
		t.Fatal("the session cookie carries the operator token")
	}
	c.cookie = ck
	res, body = c.do(http.MethodGet, "/ui/api/state", "", "")
	var state struct {
		ServerID string `json:"serverId"`
		Peers    []struct {
			ID string `json:"id"`
		} `json:"peers"`
	}
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &state) != nil || state.ServerID != "a-server" || len(state.Peers) != 2 {
		t.Fatalf("state: %d %s", res.StatusCode, body)
	}

	// A state-changing call with the cookie, but from another origin or
	// not as JSON, is refused.
	evil.cookie = ck
	op := `{"op":"drop","messageId":"m"}`
	if res, body := evil.do(http.MethodPost, "/ui/api/outbox", "application/json", op); res.StatusCode != 403 {
		t.Fatalf("outbox call from another origin: %d %s", res.StatusCode, body)
	}
	if res, body := c.do(http.MethodPost, "/ui/api/outbox", "text/plain", op); res.StatusCode != 415 {
		t.Fatalf("outbox call as a form: %d %s", res.StatusCode, body)
	}
	if res, body := c.do(http.MethodPost, "/ui/api/tool", "application/json", `{"action":"register_peer"}`); res.StatusCode != 400 ||
		!strings.Contains(body, "send and delegate") {
		t.Fatalf("other actions: %d %s", res.StatusCode, body)
	}
	// A refused action reads once: the code, then what is wrong, without
	// the sentinel words that restate the code.
	if res, body := c.do(http.MethodPost, "/ui/api/tool", "application/json", `{"action":"send","peerId":"nobody","message":"x"}`); res.StatusCode != 400 ||
		!strings.Contains(body, `"code":"UNKNOWN_PEER","message":"no peer named`) {
		t.Fatalf("send to an unknown peer: %d %s", res.StatusCode, body)
	}

	// Sessions are bounded: the oldest makes room for a new one.
	for range 32 {
		c.login(uiToken)
	}
	if res, _ := c.do(http.MethodGet, "/ui/api/state", "", ""); res.StatusCode != 401 {
		t.Fatalf("the oldest of 33 sessions still works: %d", res.StatusCode)
	}
	res, _ = c.login(uiToken)
	c.cookie = res.Cookies()[0]
	if res, body := c.do(http.MethodPost, "/ui/api/logout", "", ""); res.StatusCode != 200 {
		t.Fatalf("logout: %d %s", res.StatusCode, body)
	}
	if res, _ := c.do(http.MethodGet, "/ui/api/state", "", ""); res.StatusCode != 401 {
		t.Fatalf("a session works after logout: %d", res.StatusCode)
	}

	// Changing the operator token ends the sessions opened with the old one.
	res, _ = c.login(uiToken)
	c.cookie = res.Cookies()[0]
	next := *a.cfg
	next.Gateway.Auth.OperatorToken = uiToken + "-rotated"
	if _, err := a.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if res, body := c.do(http.MethodGet, "/ui/api/state", "", ""); res.StatusCode != 401 || !strings.Contains(body, "operator token changed") {
		t.Fatalf("a session of the old operator token: %d %s", res.StatusCode, body)
	}
}
