package bench

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

func TestWritePlot(t *testing.T) {
	full := &Report{Machine: Machine{CPUs: 2, GoVersion: "go1.26"}, MessageBytes: 375, Duration: "5s"}
	for name, figs := range map[string][]Figure{
		RelayRTT:   {{Name: "p50", Value: 30}, {Name: "p99", Value: 80}},
		RawWSRTT:   {{Name: "p50", Value: 20}, {Name: "p99", Value: 40}},
		NATSRTT:    {{Name: "p50", Value: 38}, {Name: "p99", Value: 110}},
		Throughput: {{Name: "in-flight", Value: 64}, {Name: "relay-1conn", Value: 97000}, {Name: "relay-4conn", Value: 93000}, {Name: "nats", Value: 101000}, {Name: "raw-ws-pipelined", Value: 152000}},
		Broadcast:  {{Name: "n1-p50", Value: 24}, {Name: "n16-p50", Value: 356}, {Name: "n64-p50", Value: 842}, {Name: "n256-p50", Value: 3369}},
	} {
		full.Results = append(full.Results, Result{Name: name, Figures: figs})
	}
	for name, rep := range map[string]*Report{"full": full, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := rep.WritePlot(&buf); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if got := img.Bounds(); got != image.Rect(0, 0, 1200, 420) {
				t.Fatalf("bounds %v", got)
			}
			blue := 0 // bars and lines are drawn in blue
			for y := range 420 {
				for x := range 1200 {
					if r, g, b, _ := img.At(x, y).RGBA(); r>>8 == 31 && g>>8 == 119 && b>>8 == 180 {
						blue++
					}
				}
			}
			if name == "full" && blue < 1000 {
				t.Errorf("only %d blue pixels: the figures were not drawn", blue)
			}
			if name == "empty" && blue != 0 {
				t.Errorf("%d blue pixels for a report with no figures", blue)
			}
		})
	}
}
