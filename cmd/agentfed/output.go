package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/internal/errtext"
)

// printer writes human-readable results, with what a terminal would act
// on made visible (termSafe).
type printer struct{ w io.Writer }

func (p *printer) f(format string, args ...any) {
	io.WriteString(p.w, termSafe(fmt.Sprintf(format, args...)))
}

func decode[T any](raw json.RawMessage) (*T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("unexpected result from gateway: %v", err)}
	}
	return &v, nil
}

// line prints one delivery: who answered, how fast, and what.
func (p *printer) line(r *federation.Result) {
	switch {
	case r.Status == federation.StatusQueued:
		p.f("queued for %s as %s; check it with: agentfed status %s\n", orAny(r.PeerID), r.MessageID, r.MessageID)
	case r.Status == federation.StatusOK && r.Response != nil:
		p.f("%s answered in %.2f ms (%s/%s):\n%s\n", r.PeerID, r.LatencyMs, r.Response.FromServer, r.Response.FromAgent, r.Response.Content)
	case r.Error != nil:
		p.f("%s: %s after %.2f ms: %s: %s\n", r.PeerID, r.Status, r.LatencyMs, r.Error.Code, errtext.Plain(r.Error.Message))
	default:
		p.f("%s: %s\n", r.PeerID, r.Status)
	}
}

func orAny(peer string) string {
	if peer == "" {
		return "whichever capable peer answers"
	}
	return peer
}

func showResult(p *printer, raw json.RawMessage) error {
	r, err := decode[federation.Result](raw)
	if err != nil {
		return err
	}
	p.line(r)
	return nil
}

func showDelegate(p *printer, raw json.RawMessage) error {
	r, err := decode[federation.DelegateResult](raw)
	if err != nil {
		return err
	}
	for _, s := range r.Skipped {
		p.f("skipped %s: %s\n", s.PeerID, s.Reason)
	}
	for _, a := range r.Attempts[:max(len(r.Attempts)-1, 0)] {
		p.f("tried %s: %s: %s\n", a.PeerID, a.Status, errtext.Plain(a.Error.Message))
	}
	p.line(&r.Result)
	return nil
}

func showBroadcast(p *printer, raw json.RawMessage) error {
	rs, err := decode[[]federation.Result](raw)
	if err != nil {
		return err
	}
	if len(*rs) == 0 {
		p.f("no enabled peers\n")
	}
	for _, r := range *rs {
		p.line(&r)
	}
	return nil
}

func showPeers(p *printer, raw json.RawMessage) error {
	l, err := decode[federation.PeerList](raw)
	if err != nil {
		return err
	}
	p.f("%s: %s\n", l.ServerID, plural(l.TotalPeers, "peer"))
	if l.TotalPeers == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tURL\tAGENT\tCAPABILITIES\tSOURCE\tSTATE\tHEALTH\tRTT")
	for _, e := range l.Peers {
		state := "disabled"
		switch {
		case e.Enabled && e.Connected:
			state = "connected"
		case e.Enabled:
			state = "idle"
		case e.Discovered != nil && !e.Discovered.Accepted:
			state = "not accepted" // listed only; see federation.discovery.accept
		}
		health, rtt := e.Health.State, "-"
		if e.Health.Circuit == "open" {
			health += " (circuit open)"
		}
		if e.Health.RTTMs > 0 {
			rtt = fmt.Sprintf("%.2f ms", e.Health.RTTMs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(e.ID), cell(e.Name), cell(e.URL), cell(e.AgentID),
			cell(strings.Join(e.Capabilities, ",")), cell(e.Source), state, cell(health), rtt)
	}
	return tw.Flush()
}

func showChange(p *printer, raw json.RawMessage) error {
	c, err := decode[federation.PeerChange](raw)
	if err != nil {
		return err
	}
	p.f("%s\n", c.Message)
	return nil
}

func showSync(p *printer, raw json.RawMessage) error {
	r, err := decode[federation.SyncResult](raw)
	if err != nil {
		return err
	}
	if r.Status != federation.StatusOK {
		p.line(&r.Result)
		return nil
	}
	p.f("%s stored the context (version %d) in %.2f ms\n", r.PeerID, r.Version, r.LatencyMs)
	return nil
}

func showCaps(p *printer, raw json.RawMessage) error {
	c, err := decode[federation.CapabilityReport](raw)
	if err != nil {
		return err
	}
	p.f("%s (%s): %s\n", c.PeerID, c.PeerName, strings.Join(c.Capabilities, ", "))
	if c.Description != "" {
		p.f("%s\n", c.Description)
	}
	return nil
}

// plural is "1 peer", "2 peers", "0 peers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
