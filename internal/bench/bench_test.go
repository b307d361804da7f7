package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

// signed lists figures that may legitimately be zero or negative: a
// difference of two medians.
var signed = map[string]bool{"hit-overhead": true}

// TestRunSmoke runs every measurement for a few milliseconds and checks
// that each produced positive figures and that every target was computed.
// It asserts no timing. The full sizes (256-peer broadcast, 2,000 idle
// connections, 10,000 peers) run only without -short and without -race.
func TestRunSmoke(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	o := Options{Duration: 40 * time.Millisecond, Concurrency: 8}
	if testing.Short() || raceEnabled {
		o.Duration = 20 * time.Millisecond
		o.Connections = 2
		o.BroadcastSizes = []int{1, 16}
		o.SelectPeers, o.SelectCapabilities = 1000, 20
		o.MemoryPeers = 100
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	o.Progress = &progress
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}

	var ran []string
	for _, r := range rep.Results {
		ran = append(ran, r.Name)
		switch {
		case r.Error != "":
			t.Errorf("%s failed: %s", r.Name, r.Error)
		case r.Skipped != "":
			t.Errorf("%s skipped: %s", r.Name, r.Skipped)
		case len(r.Figures) == 0:
			t.Errorf("%s has no figures", r.Name)
		}
		for _, f := range r.Figures {
			if !(f.Value > 0) && !signed[f.Name] {
				t.Errorf("%s %s = %v %s; want a positive figure", r.Name, f.Name, f.Value, f.Unit)
			}
		}
	}
	if _, ok := processCPU(); ok { // CPU per operation, where the OS reports it
		for _, fig := range []struct{ measurement, figure string }{{RelayRTT, "cpu-per-op"}, {RawWSRTT, "cpu-per-op"}, {Broadcast, "n16-cpu-per-peer"}} {
			if r, _ := rep.Result(fig.measurement); r != nil {
				if _, ok := r.Figure(fig.figure); !ok {
					t.Errorf("%s has no %s figure", fig.measurement, fig.figure)
				}
			}
		}
	}
	if d := cmp.Diff(Measurements, ran); d != "" {
		t.Errorf("measurements run (-want +got):\n%s", d)
	}
	if len(rep.Targets) == 0 {
		t.Fatal("no targets computed")
	}
	for _, tg := range rep.Targets {
		want := []string{StatusMet, StatusMissed, StatusInfo}
		ok := false
		for _, s := range want {
			ok = ok || tg.Status == s
		}
		if !ok || !(tg.Value > 0) {
			t.Errorf("target %q: status %q value %v; want one of %v with a positive value", tg.Name, tg.Status, tg.Value, want)
		}
	}
	for _, name := range Measurements {
		if !strings.Contains(progress.String(), name) {
			t.Errorf("progress does not name %s:\n%s", name, progress.String())
		}
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range append(Measurements, "relay-rtt p50 / raw-ws-rtt p50", "durable throughput") {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rep, &back); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", d)
	}
}

func TestRunOnly(t *testing.T) {
	rep, err := Run(context.Background(), Options{Duration: 10 * time.Millisecond, Only: []string{RawWSRTT, Durable}})
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, r := range rep.Results {
		ran = append(ran, r.Name)
	}
	if d := cmp.Diff([]string{RawWSRTT, Durable}, ran); d != "" {
		t.Errorf("measurements run (-want +got):\n%s", d)
	}
	for _, tg := range rep.Targets {
		if strings.Contains(tg.Name, "relay-rtt") && tg.Status != StatusNotMeasured {
			t.Errorf("target %q is %q without relay-rtt in the run; want %q", tg.Name, tg.Status, StatusNotMeasured)
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"unknown measurement", Options{Only: []string{"relay"}}, `unknown measurement "relay"`},
		{"broadcast size", Options{BroadcastSizes: []int{4, 0}}, "broadcast size 0"},
		{"few capabilities", Options{SelectCapabilities: 3}, "SelectCapabilities 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	l := latencies{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {90, 9}, {99, 10}, {99.9, 10}, {10, 1}, {1, 1}}
	for _, tt := range tests {
		if got := l.percentile(tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := (latencies{}).percentile(50); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		v     float64
		ok    bool
		op    string
		limit float64
		want  Target
	}{
		{"met", 1.2, true, "<=", 1.5, Target{Name: "met", Value: 1.2, Unit: "x", Goal: "<= 1.5", Status: StatusMet}},
		{"missed", 2, true, "<=", 1.5, Target{Name: "missed", Value: 2, Unit: "x", Goal: "<= 1.5", Status: StatusMissed}},
		{"at least", 0.4, true, ">=", 0.5, Target{Name: "at least", Value: 0.4, Unit: "x", Goal: ">= 0.5", Status: StatusMissed}},
		{"strict", 5, true, "<", 5, Target{Name: "strict", Value: 5, Unit: "x", Goal: "< 5", Status: StatusMissed}},
		{"info", 3, true, "", 0, Target{Name: "info", Value: 3, Unit: "x", Status: StatusInfo}},
		{"not measured", 0, false, "<=", 1, Target{Name: "not measured", Unit: "x", Goal: "<= 1", Status: StatusNotMeasured}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, check(tt.name, tt.v, tt.ok, unitRatio, tt.op, tt.limit)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
