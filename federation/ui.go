package federation

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agentfed/agentfed/gateway"
	"github.com/agentfed/agentfed/internal/errtext"
)

// PathUI is the dashboard: a page (embedded files, no CDN) and the JSON
// API under PathUI+"/api/" it polls. Every API call but login needs a
// session (uisession.go); see docs/SECURITY.md, "The dashboard".
const PathUI = "/ui"

//go:embed ui
var uiFiles embed.FS

// uiStatic are the files the dashboard serves, by path under PathUI.
var uiStatic = map[string]string{"/": "ui/index.html", "/app.js": "ui/app.js", "/app.css": "ui/app.css"}

// Bounds of the dashboard API.
const (
	uiMaxLogin     = 4 << 10  // a login request body
	uiMaxBody      = 1 << 20  // an action or outbox request body
	uiOutboxShown  = 50       // outbox entries a state lists
	uiAuditShown   = 40       // audit lines a state lists
	uiAuditTail    = 64 << 10 // bytes of the audit log read for them
	uiContentShown = 200      // bytes of message content shown per entry
)

// uiCSP allows the page's own files and calls only: no inline script or
// style, no other origin, no framing.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// serveUI serves the dashboard's files and its API.
func (n *Node) serveUI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	sub := strings.TrimPrefix(r.URL.Path, PathUI)
	if sub == "" {
		http.Redirect(w, r, PathUI+"/", http.StatusMovedPermanently)
		return
	}
	if api, ok := strings.CutPrefix(sub, "/api/"); ok {
		n.serveUIAPI(w, r, api)
		return
	}
	file, ok := uiStatic[sub]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	http.ServeFileFS(w, r, uiFiles, file)
}

func (n *Node) serveUIAPI(w http.ResponseWriter, r *http.Request, api string) {
	if api == "login" {
		n.uiLogin(w, r)
		return
	}
	session, err := n.uiSession(r)
	if err != nil {
		if _, cookieErr := r.Cookie(uiCookie); cookieErr == nil { // a page not logged in yet is no refusal
			n.metrics.refused("auth")
			n.audit.refuse(auditEvent{Dir: "in", Kind: "auth", Remote: r.RemoteAddr, Method: PathUI, Outcome: gateway.CodeOf(err)}, time.Now())
		}
		uiError(w, http.StatusUnauthorized, err)
		return
	}
	switch api {
	case "state":
		if r.Method != http.MethodGet {
			uiError(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: %s wants GET", ErrInvalidParams, r.URL.Path))
			return
		}
		uiJSON(w, n.uiState())
	case "logout":
		if n.uiWriteAllowed(w, r, 0) {
			n.ui.close(session)
			http.SetCookie(w, sessionCookie(r, "", -1))
			uiJSON(w, map[string]bool{"loggedOut": true})
		}
	case "outbox":
		if n.uiWriteAllowed(w, r, uiMaxBody) {
			n.uiOutbox(w, r)
		}
	case "tool":
		if n.uiWriteAllowed(w, r, uiMaxBody) {
			n.uiTool(w, r)
		}
	default:
		uiError(w, http.StatusNotFound, fmt.Errorf("%w: no dashboard API %.64q", ErrInvalidParams, api))
	}
}

// uiSession returns the request's session id when it is open and was
// opened with the current operator token.
func (n *Node) uiSession(r *http.Request) (string, error) {
	c, err := r.Cookie(uiCookie)
	if err != nil || c.Value == "" {
		return "", unauthorized("AUTH_SESSION_MISSING", "log in to the dashboard with the operator token")
	}
	if !n.ui.valid(c.Value, tokenFingerprint(n.auth().OperatorToken), time.Now()) {
		return "", unauthorized("AUTH_SESSION_EXPIRED", "the dashboard session has ended (logged out, expired, or the operator token changed); log in again")
	}
	return c.Value, nil
}

// uiWriteAllowed checks a state-changing call: POST, a JSON body of at
// most limit bytes, and an Origin header (which gateway.Guard has already
// checked is this gateway's own or an allowed one). With the session
// cookie being SameSite=Strict, a page of another site can neither send
// the cookie nor pass these checks.
func (n *Node) uiWriteAllowed(w http.ResponseWriter, r *http.Request, limit int64) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		uiError(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: %s wants POST", ErrInvalidParams, r.URL.Path))
	case r.Header.Get("Origin") == "":
		uiError(w, http.StatusForbidden, gateway.NewError(gateway.CodeForbidden, "a dashboard call that changes state needs an Origin header, as browsers send"))
	case limit > 0 && mt != "application/json":
		uiError(w, http.StatusUnsupportedMediaType, fmt.Errorf("%w: Content-Type must be application/json, not %.64q", ErrInvalidParams, mt))
	default:
		r.Body = http.MaxBytesReader(w, r.Body, max(limit, 1))
		return true
	}
	return false
}

// uiLogin opens a session for the operator token given as {"token": ...}.
func (n *Node) uiLogin(w http.ResponseWriter, r *http.Request) {
	if !n.uiWriteAllowed(w, r, uiMaxLogin) {
		return
	}
	var in struct {
		Token string `json:"token"`
	}
	if err := uiDecode(r, &in); err != nil {
		uiError(w, http.StatusBadRequest, err)
		return
	}
	want := n.auth().OperatorToken
	err := n.guesses.check(r)
	switch {
	case err != nil:
	case want == "":
		err = unauthorized("AUTH_TOKEN_NOT_CONFIGURED", "the dashboard needs gateway.auth.operatorToken (agentfed serve keeps a generated one in storage.dir/operator.token)")
	case in.Token == "":
		err = unauthorized("AUTH_TOKEN_MISSING", "enter the operator token (gateway.auth.operatorToken, or storage.dir/operator.token)")
	case !tokenEqual(in.Token, want):
		err = unauthorized("AUTH_TOKEN_MISMATCH", "operator token is wrong")
		n.guesses.failed(r)
	}
	if err != nil {
		n.metrics.refused("auth")
		n.audit.refuse(auditEvent{Dir: "in", Kind: "auth", Remote: r.RemoteAddr, Method: PathUI, Outcome: gateway.CodeOf(err)}, time.Now())
		uiError(w, refusalStatus(w, err), err)
		return
	}
	id := n.ui.open(tokenFingerprint(want), time.Now())
	n.audit.write(auditEvent{Dir: "op", Kind: "auth", Action: "ui_login", Remote: r.RemoteAddr, Outcome: "ok"})
	http.SetCookie(w, sessionCookie(r, id, int(uiSessionTTL/time.Second)))
	uiJSON(w, map[string]string{"serverId": n.serverID})
}

// uiTool runs a send or delegate action object from the dashboard's form.
func (n *Node) uiTool(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		uiError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: an action is at most %d bytes", ErrTooLarge, uiMaxBody))
		return
	}
	action, err := peekAction(body)
	if err == nil && action != "send" && action != "delegate" {
		err = fmt.Errorf("%w: the dashboard runs send and delegate, not %.32q", ErrInvalidParams, action)
	}
	if err != nil {
		uiError(w, http.StatusBadRequest, err)
		return
	}
	out, err := n.operatorTool(r.Context(), r.RemoteAddr, body)
	if err != nil {
		uiError(w, http.StatusBadRequest, err)
		return
	}
	uiJSON(w, out)
}

// uiOutbox retries, cancels or drops one durable message:
// {"op": "retry"|"cancel"|"drop", "messageId": ...}.
func (n *Node) uiOutbox(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Op        string `json:"op"`
		MessageID string `json:"messageId"`
	}
	if err := uiDecode(r, &in); err != nil {
		uiError(w, http.StatusBadRequest, err)
		return
	}
	var out any
	var err error
	switch in.Op {
	case "retry":
		out, err = n.RetryMessage(in.MessageID)
	case "cancel":
		out, err = n.CancelMessage(in.MessageID)
	case "drop":
		err = n.DropMessage(in.MessageID)
		out = map[string]string{"dropped": in.MessageID}
	default:
		err = fmt.Errorf("%w: op %.32q is not one of retry, cancel, drop", ErrInvalidParams, in.Op)
	}
	n.audit.write(auditEvent{Dir: "op", Kind: "outbox", Action: clip(in.Op, 32), Remote: r.RemoteAddr,
		MessageID: clip(in.MessageID, 128), Outcome: outcomeOf(err)})
	if err != nil {
		uiError(w, http.StatusBadRequest, err)
		return
	}
	uiJSON(w, out)
}

// uiStateView is what the dashboard polls: everything it shows, bounded.
type uiStateView struct {
	ServerID    string         `json:"serverId"`
	URL         string         `json:"url"`
	Time        int64          `json:"time"` // Unix ms
	Peers       []PeerInfo     `json:"peers"`
	Agents      []AgentHealth  `json:"agents"`
	OutboxCount map[string]int `json:"outboxCounts"`
	Outbox      []uiOutboxRow  `json:"outbox"` // queued, failed and dead; oldest first
	OutboxMore  bool           `json:"outboxMore,omitempty"`
	Audit       []auditEvent   `json:"audit"` // newest last
	AuditError  string         `json:"auditError,omitempty"`
}

// uiOutboxRow is one outbox entry as the dashboard lists it.
type uiOutboxRow struct {
	MessageID     string         `json:"messageId"`
	Kind          string         `json:"kind"`
	PeerID        string         `json:"peerId,omitempty"`
	State         string         `json:"state"`
	Attempts      int            `json:"attempts"`
	CreatedAt     int64          `json:"createdAt"`
	NextAttemptAt int64          `json:"nextAttemptAt,omitempty"`
	LastError     *gateway.Error `json:"lastError,omitempty"`
	Content       string         `json:"content,omitempty"`
}

func (n *Node) uiState() *uiStateView {
	v := &uiStateView{ServerID: n.serverID, URL: n.URL(), Time: time.Now().UnixMilli(), Peers: n.ListPeers().Peers,
		Agents: n.health().Agents, OutboxCount: n.outbox.Counts(), Outbox: []uiOutboxRow{}}
	if v.Agents == nil {
		v.Agents = []AgentHealth{}
	}
	page, err := n.OutboxPage(OutboxQuery{States: []string{StateQueued, StateFailed, StateDead}, Limit: uiOutboxShown})
	if err == nil {
		v.OutboxMore = page.Next != ""
		for _, e := range page.Messages {
			row := uiOutboxRow{MessageID: e.MessageID, Kind: e.Kind, PeerID: e.PeerID, State: e.State, Attempts: e.Attempts,
				CreatedAt: e.CreatedAt, NextAttemptAt: e.NextAttemptAt}
			if e.LastError != nil { // shown as "CODE: message"
				last := *e.LastError
				last.Message = errtext.Plain(last.Message)
				row.LastError = &last
			}
			if e.Message != nil {
				row.Content = clip(e.Message.Content, uiContentShown)
			}
			v.Outbox = append(v.Outbox, row)
		}
	}
	v.Audit, err = n.audit.tail(uiAuditShown, uiAuditTail)
	if err != nil {
		v.AuditError = clip(err.Error(), 200)
	}
	return v
}

// tail returns the last (at most) count events of the audit log's current
// file, read from its last size bytes, with long fields clipped. A nil
// log has none.
func (a *auditLog) tail(count int, size int64) ([]auditEvent, error) {
	out := []auditEvent{}
	if a == nil {
		return out, nil
	}
	f, err := os.Open(a.path)
	if err != nil {
		return out, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return out, fmt.Errorf("audit log: %w", err)
	}
	from := max(st.Size()-size, 0)
	buf := make([]byte, st.Size()-from)
	if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return out, fmt.Errorf("audit log: %w", err)
	}
	lines := bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n"))
	if from > 0 && len(lines) > 0 {
		lines = lines[1:] // starts mid-line
	}
	for _, line := range lines[len(lines)-min(len(lines), count):] {
		var e auditEvent
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		e.Content, e.Detail = clip(e.Content, uiContentShown), clip(e.Detail, uiContentShown)
		out = append(out, e)
	}
	return out, nil
}

// uiDecode decodes a request's JSON body strictly.
func uiDecode(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: the request body is over %d bytes", ErrTooLarge, tooBig.Limit)
		}
		return fmt.Errorf("%w: request body: %s", ErrInvalidParams, clip(err.Error(), 200))
	}
	return nil
}

func uiJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// uiError answers {"error": {"code", "message", ...}} with status.
func uiError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	e := *gateway.ToError(err)
	e.Message = errtext.Plain(e.Message) // the page shows the code beside it
	json.NewEncoder(w).Encode(map[string]any{"error": &e})
}
