package picture

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/edema/edema/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/edema/edema/metrics"

	"github.com/edema/edema/oct"
)

// OperatingThreshold is the detection probability from which a slice
// counts as showing a lesion; the ROC plot marks its point on each curve.
const OperatingThreshold = 0.5

// Plot sizes; PNGs are rendered at vgimg's default 96 dots per inch.
const (
	rocSize         = 6 * vg.Inch
	curvesWidth     = 8 * vg.Inch
	curvesPanelHigh = 4 * vg.Inch
)

// WriteROC plots the ROC curve of each lesion class in its colour, with its
// AUC in the legend (curves of all slices of all cubes pooled, so the legend
// says "pooled AUC") and its operating point at OperatingThreshold marked,
// and writes the plot as a PNG file at path. An undefined curve (a class
// whose targets are all one value) is listed in the legend as "n/a" with
// no line.
func WriteROC(path, title string, curves [oct.NumLesions]metrics.ROCCurve) (err error) {
	defer plotPanic(&err)
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	// The curves are those of all slices of all cubes together, the ROC
	// whose AUC the challenge scores; say so, since a per-cube AUC is
	// printed beside it in the reports.
	p.X.Label.Text = "false positive rate (all slices of all cubes pooled)"
	p.Y.Label.Text = "true positive rate"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top = false
	p.Legend.Left = false

	chance, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return err
	}
	chance.Color = color.Gray{Y: 160}
	chance.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(chance)

	for c, curve := range curves {
		name := oct.LesionNames[c]
		if !curve.Defined() {
			// An empty line keeps the class in the legend.
			p.Legend.Add(name+": pooled AUC n/a", &plotter.Line{LineStyle: draw.LineStyle{Color: oct.LesionColors[c], Width: vg.Points(2)}})
			continue
		}
		points := make(plotter.XYs, len(curve.FPR))
		for i := range points {
			points[i] = plotter.XY{X: curve.FPR[i], Y: curve.TPR[i]}
		}
		line, err := plotter.NewLine(points)
		if err != nil {
			return fmt.Errorf("ROC curve of %s: %w", name, err)
		}
		line.Color = oct.LesionColors[c]
		line.Width = vg.Points(2)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s: pooled AUC %.4f", name, curve.AUC()), line)

		// Where a detection "probability ≥ 0.5" stands on the curve.
		fpr, tpr := curve.At(OperatingThreshold)
		point, err := plotter.NewScatter(plotter.XYs{{X: fpr, Y: tpr}})
		if err != nil {
			return err
		}
		point.Color = oct.LesionColors[c]
		point.Shape = draw.CircleGlyph{}
		point.Radius = vg.Points(4)
		p.Add(point)
		p.Legend.Add(fmt.Sprintf("%s at ≥ %.1f: TPR %.3f, FPR %.3f", name, OperatingThreshold, tpr, fpr), point)
	}
	return writePlotPNG(path, p, rocSize, rocSize)
}

// Epoch is one row of a training log: the epoch number and the figures
// logged for it by name ("train loss", "val Dice", "AUC REA", ...). A
// figure missing from a row, or NaN, leaves a gap in its curve.
type Epoch struct {
	Epoch  int
	Values map[string]float64
}

// WriteTrainingCurves plots every figure of a training log against the
// epoch and writes the plot as a PNG file at path. Figures whose name
// contains "loss" go to an upper panel, the learning rate ("learning
// rate") to a logarithmic one of its own at the bottom, the others (Dice,
// AUC, ...) to the middle one, as their scales differ; a panel with no
// figure is left out. Each figure has a colour of its own, the epochs are
// whole numbers as the log numbers them, and best, when not negative, is
// marked in every panel as the best epoch.
func WriteTrainingCurves(path, title string, log []Epoch, best int) (err error) {
	defer plotPanic(&err)
	if len(log) == 0 {
		return errors.New("training curves of an empty log")
	}
	var losses, scores, rates []string
	seen := map[string]bool{}
	for _, row := range log {
		for name := range row.Values {
			if seen[name] {
				continue
			}
			seen[name] = true
			switch lower := strings.ToLower(name); {
			case strings.Contains(lower, "loss"):
				losses = append(losses, name)
			case lower == "learning rate":
				rates = append(rates, name)
			default:
				scores = append(scores, name)
			}
		}
	}
	if len(seen) == 0 {
		return errors.New("training log holds no figure")
	}
	slices.Sort(losses)
	slices.Sort(scores)
	// One colour per figure across the panels.
	colours := map[string]color.Color{}
	for i, name := range slices.Concat(losses, scores, rates) {
		colours[name] = curveColours[i%len(curveColours)]
	}

	var panels []*plot.Plot
	for _, group := range []struct {
		names []string
		label string
		// Losses fall and scores rise: their legends go where the curves
		// end up far from.
		legendTop bool
		log       bool
	}{{losses, "loss", true, false}, {scores, "score", false, false}, {rates, "learning rate", true, true}} {
		if len(group.names) == 0 {
			continue
		}
		p, err := curvesPanel(log, group.names, colours, group.label, group.legendTop, group.log)
		if err != nil {
			return err
		}
		if best >= 0 {
			if err := markBest(p, best); err != nil {
				return err
			}
		}
		panels = append(panels, p)
	}
	panels[0].Title.Text = title

	height := curvesPanelHigh * vg.Length(len(panels))
	canvas := vgimg.New(curvesWidth, height)
	grid := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		grid[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	for i, row := range plot.Align(grid, tiles, draw.New(canvas)) {
		panels[i].Draw(row[0])
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: canvas}.WriteTo(w)
		return err
	})
}

// curveColours are twelve colours told apart at a glance (Tableau's ten,
// then two more), so that no two figures of a plot look alike.
var curveColours = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255}, color.RGBA{0, 0, 0, 255}, color.RGBA{0, 0, 128, 255},
}

// epochTicks puts ticks on whole epochs only, at most about ten of them.
type epochTicks struct{}

func (epochTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	step := math.Max(1, math.Ceil((hi-lo+1)/10))
	var ticks []plot.Tick
	for e := lo; e <= hi; e += step {
		ticks = append(ticks, plot.Tick{Value: e, Label: fmt.Sprintf("%d", int(e))})
	}
	return ticks
}

// curvesPanel plots the named figures of log against the epoch.
func curvesPanel(log []Epoch, names []string, colours map[string]color.Color, label string, legendTop, logScale bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "epoch (from 0, as dice_epoch.txt numbers them)"
	p.X.Tick.Marker = epochTicks{}
	p.Y.Label.Text = label
	if logScale {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: 2}
	}
	first, last := log[0].Epoch, log[len(log)-1].Epoch
	p.X.Min, p.X.Max = float64(first)-0.25, float64(last)+0.25
	p.Add(plotter.NewGrid())
	p.Legend.Top = legendTop
	for i, name := range names {
		var points plotter.XYs
		for _, row := range log {
			v, ok := row.Values[name]
			if ok && !math.IsNaN(v) && !math.IsInf(v, 0) && (!logScale || v > 0) {
				points = append(points, plotter.XY{X: float64(row.Epoch), Y: v})
			}
		}
		if len(points) == 0 {
			continue
		}
		line, marks, err := plotter.NewLinePoints(points)
		if err != nil {
			return nil, fmt.Errorf("curve %q: %w", name, err)
		}
		line.Color = colours[name]
		line.Width = vg.Points(1.5)
		marks.Color = line.Color
		marks.Shape = plotutil.Shape(i)
		marks.Radius = vg.Points(2)
		p.Add(line, marks)
		p.Legend.Add(name, line, marks)
	}
	if logScale && p.Y.Min > 0 {
		// A margin, so that the decades at the ends get their labels; and
		// for one value (a constant rate) a range at all, where gonum
		// would widen it by ±1, below 0, which a logarithmic axis cannot
		// show.
		p.Y.Min, p.Y.Max = p.Y.Min/1.5, p.Y.Max*1.5
	}
	return p, nil
}

// markBest draws a dashed vertical line at the best epoch, across the
// range of the panel's figures (which adding them has set).
func markBest(p *plot.Plot, best int) error {
	line, err := plotter.NewLine(plotter.XYs{{X: float64(best), Y: p.Y.Min}, {X: float64(best), Y: p.Y.Max}})
	if err != nil {
		return err
	}
	line.Color = color.Gray{Y: 90}
	line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	line.Width = vg.Points(1)
	p.Add(line)
	p.Legend.Add(fmt.Sprintf("best epoch (%d)", best), line)
	return nil
}

// writePlotPNG renders p at w×h and writes it as a PNG file at path.
func writePlotPNG(path string, p *plot.Plot, w, h vg.Length) error {
	png, err := p.WriterTo(w, h, "png")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(out io.Writer) error {
		_, err := png.WriteTo(out)
		return err
	})
}

// plotPanic turns a panic of gonum's plotting (it panics on ranges it
// cannot draw) into an error, so that a picture never ends a run.
func plotPanic(errp *error) {
	if r := recover(); r != nil {
		*errp = fmt.Errorf("plotting: %v", r)
	}
}
