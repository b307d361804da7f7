package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentfed/agentfed/federation"
	"github.com/agentfed/agentfed/gateway"
)

var hostile = flag.Duration("hostile", 0, "run the hostile-peer soak for this long (e.g. 60s); 0 skips it")

// TestHostileSoak attacks an `agentfed serve` process for -hostile: a
// credentialed peer sends at (and beyond) its rate limit with every field
// at its maximum, requests and syncs to ever new sessions; throw-away
// unauthenticated senders flood the replay memory; meanwhile another
// peer must keep being served, and the attacker's captured message must
// stay refused. It reports the victim's peak RSS and fails above 256 MiB.
func TestHostileSoak(t *testing.T) {
	if *hostile == 0 {
		t.Skip("run with -hostile 60s")
	}
	const maxBytes = 64 << 10
	victim := serve(t, "--config", writeFile(t, "victim.yaml", fmt.Sprintf(`
federation: {enabled: true, serverId: victim}
gateway:
  auth:
    peers:
      - {serverId: attacker, token: attacker-token, ratePerSec: 500, maxMessageBytes: %d}
      - {serverId: observer, token: observer-token}
agents:
  - {id: echo, handler: {type: echo}, maxQueue: 256}
storage: {dir: %q}
`, maxBytes, t.TempDir())))
	dial := func(name, token string) (*gateway.Client, error) {
		return gateway.Dial(context.Background(), victim.URL, &gateway.DialOptions{Role: gateway.RolePeer, Token: token,
			Client: gateway.ClientInfo{ID: gateway.ClientIDGateway, Mode: gateway.ClientModeBack, InstanceID: name}})
	}
	relay := func(c *gateway.Client, m *federation.Message) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Call(ctx, federation.MethodRelay, federation.RelayParams{TargetAgent: "echo", Message: m}, nil)
	}
	pad := func(prefix string, n int64) string { // an identifier of the maximum length
		s := prefix + strconv.FormatInt(n, 10) + "-"
		return s + strings.Repeat("x", federation.MaxIDBytes-len(s))
	}
	attacker, err := dial("attacker", "attacker-token")
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	captured := federation.NewMessage(federation.TypeRequest, "attacker", "a", "echo", "once")
	if err := relay(attacker, captured); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *hostile)
	defer cancel()
	var wg sync.WaitGroup
	var seq, sent, refused, flooded atomic.Int64
	codes := sync.Map{}
	content := strings.Repeat("c", maxBytes-2048)
	for w := range 16 { // the credentialed attacker, at its limit, every field at its maximum
		wg.Go(func() {
			for ctx.Err() == nil {
				n := seq.Add(1)
				m := federation.NewMessage(federation.TypeRequest, "attacker", pad("a", n), "echo", content)
				m.MessageID, m.CorrelationID = pad("m", n), pad("s", n)
				if w%2 == 1 { // syncs to ever new sessions
					m.Type, m.Content, m.Context = federation.TypeSync, "", map[string]any{"k": content}
				}
				err := relay(attacker, m)
				sent.Add(1)
				if err != nil {
					refused.Add(1)
					codes.Store(gateway.CodeOf(err), true)
					if gateway.CodeOf(err) == federation.CodeRateLimited {
						time.Sleep(time.Millisecond) // keep at the limit, not far beyond it
					}
				}
			}
		})
	}
	for w := range 4 { // throw-away unauthenticated senders
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				name := pad(fmt.Sprintf("f%d-", w), int64(i))
				c, err := dial(name, "")
				if err != nil {
					continue
				}
				for j := range 20 {
					m := federation.NewMessage(federation.TypeRequest, name, "a", "echo", "")
					m.MessageID = pad("u", int64(j))
					relay(c, m)
					flooded.Add(1)
				}
				c.Close()
			}
		})
	}
	observer, err := dial("observer", "observer-token")
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	var worst time.Duration
	var peak int64
	tick := time.NewTicker(100 * time.Millisecond)
	for ctx.Err() == nil {
		<-tick.C
		start := time.Now()
		if err := relay(observer, federation.NewMessage(federation.TypeRequest, "observer", "a", "echo", "ping")); err != nil {
			t.Errorf("the observer was refused during the attack: %v", err)
		}
		worst = max(worst, time.Since(start))
		peak = max(peak, rss(t, victim.Cmd.Process.Pid, "VmHWM"))
	}
	tick.Stop()
	wg.Wait()
	if err := relay(attacker, captured); gateway.CodeOf(err) != federation.CodeReplayed {
		t.Errorf("the attacker's captured message after the attack: %v; want REPLAYED", err)
	}
	var seen []string
	codes.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	t.Logf("%v: attacker sent %d (%d refused: %v), %d flood messages; observer's worst latency %v; victim peak RSS %d MiB",
		*hostile, sent.Load(), refused.Load(), seen, flooded.Load(), worst.Round(time.Millisecond), peak>>20)
	if peak > 256<<20 {
		t.Errorf("the victim's peak RSS is %d MiB, over 256 MiB", peak>>20)
	}
}

// rss reads a memory field (VmRSS, VmHWM) of process pid, in bytes.
func rss(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
