package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot sizes, in pixels at PlotDPI.
const (
	PlotWidth  = 1600
	PlotHeight = 1000
	PlotDPI    = 96
)

// MaxPlotRuns is how many earlier runs Plot draws beside r.
const MaxPlotRuns = 3

// Plot draws r beside up to MaxPlotRuns earlier comparable runs (see
// Comparable) as a PNG of PlotWidth×PlotHeight pixels: one chart per
// panel (Panels), grouped bars per workload on a log scale, one bar per
// run and engine (CPU blues, GPU greens, darker is newer, the newest
// being r), each labelled with its value.
func Plot(w io.Writer, r *Report, earlier []Report) error {
	runs := append(slices.Clone(Comparable(r, earlier, MaxPlotRuns)), *r)
	img := vgimg.NewWith(vgimg.UseWH(PlotWidth*vg.Inch/PlotDPI, PlotHeight*vg.Inch/PlotDPI), vgimg.UseDPI(PlotDPI))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	// Header: what and where.
	head := vg.Points(44)
	title := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, vg.Points(15)), XAlign: text.XLeft, YAlign: text.YTop, Handler: plot.DefaultTextHandler}
	sub := title
	sub.Font = font.From(plot.DefaultFont, vg.Points(10))
	sub.Color = color.Gray{Y: 0x50}
	dc.FillText(title, vg.Point{X: dc.Min.X + 12, Y: dc.Max.Y - 8}, fmt.Sprintf("taobox bench — %s", hostLine(r)))
	var cmp []string
	for _, h := range runs[:len(runs)-1] {
		cmp = append(cmp, h.Time.Format("2006-01-02 15:04"))
	}
	gpu := r.Machine.GPU
	if !strings.HasPrefix(gpu, "no GPU") {
		gpu = "GPU: " + gpu
	}
	subline := fmt.Sprintf("run of %s UTC, seed %d%s; %s", r.Time.Format("2006-01-02 15:04"), r.Seed, map[bool]string{true: ", quick workloads"}[r.Quick], gpu)
	if len(cmp) > 0 {
		subline += "; earlier runs: " + strings.Join(cmp, ", ")
	}
	dc.FillText(sub, vg.Point{X: dc.Min.X + 12, Y: dc.Max.Y - 28}, subline)

	body := draw.Crop(dc, 0, 0, 0, -head)
	var plots []*plot.Plot
	for _, panel := range Panels {
		p, err := panelPlot(panel, runs)
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Points(18), PadY: vg.Points(18), PadTop: vg.Points(6), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(14)}
	grid := [][]*plot.Plot{{plots[0], plots[1]}, {plots[2], plots[3]}}
	cs := plot.Align(grid, tiles, body)
	for i := range grid {
		for j := range grid[i] {
			grid[i][j].Draw(cs[i][j])
		}
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func hostLine(r *Report) string {
	m := r.Machine
	s := fmt.Sprintf("%s (%s/%s, %d CPUs", orDash(m.Hostname), m.OS, m.Arch, m.CPUs)
	if m.CPUModel != "" {
		s += ", " + m.CPUModel
	}
	return s + ")"
}

var panelNotes = map[string]string{
	PanelYuma:    "Yuma epochs per second by workload (subnets × uids)",
	PanelModel:   "Model tokens per second (CPU), t = threads",
	PanelLatency: "Latency, µs (lower is better)",
	PanelRate:    "Throughput (higher is better)",
}

// series is one bar colour: one run's figures on one engine.
type series struct {
	name  string
	color color.Color
	vals  map[string]float64 // label → value
}

func panelPlot(panel string, runs []Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = panelNotes[panel] + ", log scale"
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Y.Label.Text = panelUnit(panel)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), vg.Points(-4)
	p.Legend.Padding = vg.Points(1.5)

	// Categories: the newest run's labels in its order, then any that
	// only earlier runs have, newest run first.
	var labels []string
	var ss []series
	for ri := len(runs) - 1; ri >= 0; ri-- {
		for _, m := range Metrics(&runs[ri]) {
			if m.Panel == panel && !slices.Contains(labels, m.Label) {
				labels = append(labels, m.Label)
			}
		}
	}
	for ri, r := range runs {
		name := r.Time.Format("01-02 15:04")
		if h := r.Machine.Hostname; h != runs[len(runs)-1].Machine.Hostname {
			name = h + " " + name // a report copied from another machine
		}
		if ri == len(runs)-1 {
			name = "this run"
		}
		for _, eng := range []string{"CPU", "GPU"} {
			s := series{name: name + " " + eng, vals: map[string]float64{}}
			for _, m := range Metrics(&r) {
				if m.Panel == panel && m.Series == eng {
					s.vals[m.Label] = m.Value
				}
			}
			if len(s.vals) > 0 {
				s.color = shade(eng, ri, len(runs))
				ss = append(ss, s)
			}
		}
	}
	if panel == PanelYuma && !slices.ContainsFunc(ss, func(s series) bool { return s.name == "this run GPU" }) {
		p.Title.Text += " (no GPU here)"
	}
	if len(labels) == 0 {
		p.Title.Text = panelNotes[panel] + ": not measured"
		p.HideAxes()
		return p, nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.vals {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.5, float64(len(labels))-0.5
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = hi * 12 // room for the legend and the value labels
	groupW := vg.Points(150) / vg.Length(max(len(labels), 1)) * 3
	barW := min(groupW/vg.Length(len(ss)+1), vg.Points(34))
	p.Add(gridLines{}) // under the bars
	for i, s := range ss {
		b := &bars{labels: labels, vals: s.vals, color: s.color, width: barW,
			offset: (vg.Length(i) - vg.Length(len(ss)-1)/2) * barW}
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	return p, nil
}

func panelUnit(panel string) string {
	switch panel {
	case PanelYuma:
		return "epochs/s"
	case PanelModel:
		return "tokens/s"
	case PanelLatency:
		return "µs"
	}
	return "MB/s or batches/s (see label)"
}

// shade is run ri of n's colour for an engine: light for the oldest,
// saturated for the newest.
func shade(engine string, ri, n int) color.Color {
	t := 1.0
	if n > 1 {
		t = 0.35 + 0.65*float64(ri)/float64(n-1)
	}
	mix := func(light, dark uint8) uint8 { return uint8(float64(light) + (float64(dark)-float64(light))*t) }
	if engine == "GPU" {
		return color.RGBA{mix(0xc7, 0x2c), mix(0xe9, 0xa0), mix(0xc0, 0x2c), 0xff}
	}
	return color.RGBA{mix(0xc6, 0x1f), mix(0xdb, 0x5f), mix(0xef, 0xb4), 0xff}
}

// bars is one series of a grouped bar chart on any Y scale: bar i is
// drawn at category i shifted by offset, from the bottom of the plot
// area to vals[labels[i]], with its value written above it.
type bars struct {
	labels []string
	vals   map[string]float64
	color  color.Color
	width  vg.Length
	offset vg.Length
}

func (b *bars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	lab := plt.X.Tick.Label
	lab.Font.Size = vg.Points(7)
	lab.XAlign, lab.YAlign = text.XCenter, text.YBottom
	lab.Rotation = 0
	for i, l := range b.labels {
		v, ok := b.vals[l]
		if !ok || v <= 0 {
			continue
		}
		x := trX(float64(i)) + b.offset
		y0, y1 := c.Min.Y, trY(v)
		pts := []vg.Point{{X: x - b.width/2, Y: y0}, {X: x - b.width/2, Y: y1}, {X: x + b.width/2, Y: y1}, {X: x + b.width/2, Y: y0}}
		c.FillPolygon(b.color, c.ClipPolygonY(pts))
		c.StrokeLines(draw.LineStyle{Color: color.Gray{Y: 0x40}, Width: vg.Points(0.4)}, c.ClipLinesY(pts)...)
		c.FillText(lab, vg.Point{X: x, Y: y1 + vg.Points(1.5)}, short(v))
	}
}

func (b *bars) DataRange() (xmin, xmax, ymin, ymax float64) {
	ymin, ymax = math.Inf(1), math.Inf(-1)
	for _, v := range b.vals {
		ymin, ymax = min(ymin, v), max(ymax, v)
	}
	return 0, float64(len(b.labels) - 1), ymin, ymax
}

// Thumbnail draws the legend's swatch.
func (b *bars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
	c.FillPolygon(b.color, pts)
}

// gridLines draws a light horizontal line at each major tick.
type gridLines struct{}

func (gridLines) Plot(c draw.Canvas, plt *plot.Plot) {
	_, trY := plt.Transforms(&c)
	for _, t := range plt.Y.Tick.Marker.Ticks(plt.Y.Min, plt.Y.Max) {
		if t.IsMinor() {
			continue
		}
		y := trY(t.Value)
		c.StrokeLine2(draw.LineStyle{Color: color.Gray{Y: 0xdd}, Width: vg.Points(0.5)}, c.Min.X, y, c.Max.X, y)
	}
}

// logTicks marks each power of ten with a readable label (1, 10, 100,
// 1k, 10k, ...) and 2 and 5 times it as minor ticks.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		v := math.Pow(10, e)
		if v >= lo*0.999 && v <= hi*1.001 {
			ts = append(ts, plot.Tick{Value: v, Label: short(v)})
		}
		for _, m := range []float64{2, 5} {
			if mv := m * v; mv >= lo && mv <= hi {
				ts = append(ts, plot.Tick{Value: mv})
			}
		}
	}
	return ts
}

// short formats v in three significant figures with a k, M or G suffix:
// 1, 25, 1.5k, 250k, 3M.
func short(v float64) string {
	suf := ""
	for _, u := range []struct {
		div float64
		suf string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= u.div {
			v, suf = v/u.div, u.suf
			break
		}
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64) + suf
}
