package federation

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Bounds on what one audit line may hold of a field that a remote party
// chooses (an instanceId, an agent name, an error text): a flood of
// oversized values must not fill the disk or rotate earlier lines away.
const (
	auditFieldMax  = 256  // bytes of an id, a name, a method
	auditDetailMax = 4096 // bytes of detail (an agent's error: its command line, the tail of its stderr)
)

// Refusals (refused handshakes, denied requests, rate-limit refusals) are
// written once per window and source in full; the rest of the window only
// counts them, and one line with the count is written when the window ends.
// At most refusalSources sources are tracked per window; refusals beyond
// them are counted together under the source "*". So a flood from anywhere
// writes at most about 2×refusalSources+1 lines a minute.
const (
	refusalWindow  = time.Minute
	refusalSources = 128
)

// refusalKey groups refusals: the same kind, source (the remote address
// for handshakes, the peer for requests), method, outcome and detail.
type refusalKey struct {
	kind, remote, peer, method, outcome, detail string
}

// refuse audits a refusal that a remote party can provoke at will. source
// is what identifies the party: for a refused handshake, its remote
// address (reduced by sourceOf), otherwise its peer id. The first refusal
// of a key in a window is written as e; later ones are counted.
func (a *auditLog) refuse(e auditEvent, now time.Time) {
	if a == nil {
		return
	}
	e.bound()
	e.Detail = clipField(e.Detail, auditFieldMax*2) // a rule or a code, not an agent's output
	k := refusalKey{kind: e.Kind, peer: e.Peer, method: e.Method, outcome: e.Outcome, detail: e.Detail}
	if e.Kind == "auth" { // the claimed name is the attacker's choice; the address is not
		k.remote, k.peer = sourceOf(e.Remote), ""
	}
	a.refMu.Lock()
	if a.refCounts == nil {
		a.refCounts, a.refStart = make(map[refusalKey]int), now
	}
	n, seen := a.refCounts[k]
	first := false
	switch {
	case seen:
		a.refCounts[k] = n + 1
	case len(a.refCounts) >= refusalSources:
		a.refOverflow++
	default:
		a.refCounts[k], first = 0, true
	}
	a.refMu.Unlock()
	if first {
		a.write(e)
	}
}

// summarize writes one line per key refused more than once in a window
// that has ended by now (any window when force), and starts a new window.
func (a *auditLog) summarize(now time.Time, force bool) {
	a.refMu.Lock()
	if a.refCounts == nil || (!force && now.Sub(a.refStart) < refusalWindow) {
		a.refMu.Unlock()
		return
	}
	counts, overflow, since := a.refCounts, a.refOverflow, a.refStart.UTC().Format(time.RFC3339)
	a.refCounts, a.refOverflow = nil, 0
	a.refMu.Unlock()
	for k, n := range counts {
		if n > 0 {
			a.write(auditEvent{Dir: "in", Kind: k.kind, Remote: k.remote, Peer: k.peer, Method: k.method,
				Outcome: k.outcome, Detail: k.detail, Count: n, Since: since})
		}
	}
	if overflow > 0 {
		a.write(auditEvent{Dir: "in", Kind: "refused", Remote: "*", Outcome: "MANY_SOURCES", Count: overflow, Since: since,
			Detail: "refusals from more than " + strconv.Itoa(refusalSources) + " sources in one window, not written one by one"})
	}
}

// windowLeft reports whether a refusal window is open at now, and how
// long until it ends.
func (a *auditLog) windowLeft(now time.Time) (time.Duration, bool) {
	a.refMu.Lock()
	defer a.refMu.Unlock()
	if a.refCounts == nil {
		return 0, false
	}
	return a.refStart.Add(refusalWindow).Sub(now), true
}

// sourceOf reduces a remote address to what identifies its sender: the IP
// without the port, and for IPv6 its /64 (one host usually holds a whole
// /64).
func sourceOf(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return clipField(remote, auditFieldMax)
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// bound truncates every field a remote party can choose.
func (e *auditEvent) bound() {
	for _, s := range []*string{&e.Peer, &e.Remote, &e.Method, &e.Action, &e.Agent, &e.MessageID, &e.CorrelationID, &e.Type, &e.Outcome} {
		*s = clipField(*s, auditFieldMax)
	}
	e.Detail = clipField(e.Detail, auditDetailMax)
}

// clipField returns s when it has at most limit bytes, else as much of its start
// (to a character boundary) as fits in limit bytes together with how long it
// was. Clipping twice changes nothing.
func clipField(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	mark := "…[" + strconv.Itoa(len(s)) + " bytes]"
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + mark
}
