package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// WritePlot renders the report's main figures as a PNG: the three round
// trips (p50 and p99), throughput at the report's concurrency, and how
// broadcast grows with the number of peers against its target's bound of
// half N sequential relays. Measurements the report lacks leave their
// panel empty, with a note.
func (rep *Report) WritePlot(w io.Writer) error {
	p := newPlot(1200, 420)
	p.text(12, 20, fmt.Sprintf("agentfed-bench: %d CPUs, %s, %d-byte messages, %s per measurement",
		rep.Machine.CPUs, rep.Machine.GoVersion, rep.MessageBytes, rep.Duration), black)

	var bars []bar
	for _, name := range []string{RelayRTT, RawWSRTT, NATSRTT} {
		if r, ok := rep.Result(name); ok {
			p50, _ := r.Figure("p50")
			p99, _ := r.Figure("p99")
			bars = append(bars, bar{name, []float64{p50.Value, p99.Value}})
		}
	}
	p.bars(image.Rect(40, 50, 400, 380), "round trip (us): p50 blue, p99 orange", bars, []color.RGBA{blue, orange})

	bars = nil
	if r, ok := rep.Result(Throughput); ok {
		for _, name := range []string{"relay-1conn", "relay-4conn", "nats", "raw-ws-pipelined"} {
			if f, ok := r.Figure(name); ok {
				label := strings.NewReplacer("-1conn", " x1", "-4conn", " x4", "-pipelined", "").Replace(name)
				bars = append(bars, bar{label, []float64{f.Value / 1000}})
			}
		}
	}
	p.bars(image.Rect(440, 50, 800, 380), fmt.Sprintf("throughput (k msg/s), %d in flight", rep.concurrency()), bars, []color.RGBA{blue})

	var ns, p50s, bound []float64
	relay, okRelay := rep.Result(RelayRTT)
	if r, ok := rep.Result(Broadcast); ok && okRelay {
		rp50, _ := relay.Figure("p50")
		for _, n := range DefaultBroadcastSizes {
			if f, ok := r.Figure(fmt.Sprintf("n%d-p50", n)); ok {
				ns = append(ns, float64(n))
				p50s = append(p50s, f.Value/1000)
				bound = append(bound, 0.5*float64(n)*rp50.Value/1000)
			}
		}
	}
	p.lines(image.Rect(860, 50, 1180, 380), "broadcast p50 (ms) by peers, log-log", ns,
		[]series{{"broadcast", p50s, blue}, {"0.5 x N x relay p50", bound, orange}})
	return png.Encode(w, p.img)
}

var (
	black  = color.RGBA{0, 0, 0, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{255, 127, 14, 255}
)

type bar struct {
	label  string
	values []float64 // one per colour
}

type series struct {
	label string
	y     []float64
	c     color.RGBA
}

type plot struct{ img *image.RGBA }

func newPlot(w, h int) *plot {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	return &plot{img}
}

func (p *plot) text(x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: p.img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func (p *plot) fill(r image.Rectangle, c color.RGBA) {
	draw.Draw(p.img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// line draws from (x0, y0) to (x1, y1), two pixels wide.
func (p *plot) line(x0, y0, x1, y1 int, c color.RGBA) {
	steps := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= steps; i++ {
		x := x0 + (x1-x0)*i/steps
		y := y0 + (y1-y0)*i/steps
		p.fill(image.Rect(x, y, x+2, y+2), c)
	}
}

func abs(v int) int { return max(v, -v) }

// frame draws a panel's title and axes, and returns the plotting area.
func (p *plot) frame(r image.Rectangle, title string) image.Rectangle {
	p.text(r.Min.X, r.Min.Y, title, black)
	area := image.Rect(r.Min.X+40, r.Min.Y+12, r.Max.X, r.Max.Y-24)
	p.fill(image.Rect(area.Min.X, area.Min.Y, area.Min.X+1, area.Max.Y), black)
	p.fill(image.Rect(area.Min.X, area.Max.Y, area.Max.X, area.Max.Y+1), black)
	return area
}

// yAxis labels the top of a linear axis from 0 to top and returns top.
func (p *plot) yAxis(area image.Rectangle, top float64) {
	for i := 0; i <= 4; i++ {
		y := area.Max.Y - area.Dy()*i/4
		p.fill(image.Rect(area.Min.X+1, y, area.Max.X, y+1), grey)
		p.text(area.Min.X-40, y+4, strconv.FormatFloat(top*float64(i)/4, 'g', 3, 64), black)
	}
}

func (p *plot) bars(r image.Rectangle, title string, bars []bar, colours []color.RGBA) {
	area := p.frame(r, title)
	if len(bars) == 0 {
		p.text(area.Min.X+10, area.Min.Y+20, "not measured", black)
		return
	}
	top := 0.0
	for _, b := range bars {
		for _, v := range b.values {
			top = math.Max(top, v)
		}
	}
	top = niceCeil(top)
	p.yAxis(area, top)
	slot := area.Dx() / len(bars)
	for i, b := range bars {
		x := area.Min.X + i*slot + slot/8
		width := (slot * 3 / 4) / len(b.values)
		for j, v := range b.values {
			h := int(float64(area.Dy()) * v / top)
			p.fill(image.Rect(x+j*width, area.Max.Y-h, x+(j+1)*width-2, area.Max.Y), colours[j%len(colours)])
		}
		p.text(area.Min.X+i*slot+2, area.Max.Y+16, b.label, black)
	}
}

// lines plots series over x on log-scaled axes (x: peers, y: time).
func (p *plot) lines(r image.Rectangle, title string, x []float64, ss []series) {
	area := p.frame(r, title)
	if len(x) < 2 {
		p.text(area.Min.X+10, area.Min.Y+20, "not measured", black)
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.y {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	lo, hi = math.Log10(lo), math.Log10(hi)
	if hi-lo < 1e-9 {
		hi = lo + 1
	}
	px := func(v float64) int {
		return area.Min.X + int(float64(area.Dx()-10)*math.Log10(v/x[0])/math.Log10(x[len(x)-1]/x[0]))
	}
	py := func(v float64) int {
		return area.Max.Y - int(float64(area.Dy()-10)*(math.Log10(v)-lo)/(hi-lo))
	}
	for _, v := range x {
		p.text(px(v)-4, area.Max.Y+16, strconv.FormatFloat(v, 'g', -1, 64), black)
	}
	for _, e := range []float64{lo, hi} {
		v := math.Pow(10, e)
		p.text(area.Min.X-40, py(v)+4, strconv.FormatFloat(v, 'g', 2, 64), black)
	}
	for i, s := range ss {
		for j := 1; j < len(s.y); j++ {
			p.line(px(x[j-1]), py(s.y[j-1]), px(x[j]), py(s.y[j]), s.c)
		}
		for j, v := range s.y {
			p.fill(image.Rect(px(x[j])-3, py(v)-3, px(x[j])+3, py(v)+3), s.c)
			if i == 0 {
				p.text(px(x[j])+6, py(v)-4, strconv.FormatFloat(v, 'f', 2, 64), s.c)
			}
		}
		p.fill(image.Rect(area.Min.X+10, area.Min.Y+8+16*i, area.Min.X+22, area.Min.Y+14+16*i), s.c)
		p.text(area.Min.X+28, area.Min.Y+16+16*i, s.label, black)
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// concurrency is the in-flight count throughput measured with.
func (rep *Report) concurrency() int {
	if r, ok := rep.Result(Throughput); ok {
		if f, ok := r.Figure("in-flight"); ok {
			return int(f.Value)
		}
	}
	return DefaultConcurrency
}
