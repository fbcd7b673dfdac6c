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

// Plot sizes; PNGs are rendered at vgimg's default 96 dots per inch.
const (
	rocSize         = 6 * vg.Inch
	curvesWidth     = 8 * vg.Inch
	curvesPanelHigh = 4 * vg.Inch
)

// WriteROC plots the ROC curve of each lesion class in its colour, with its
// AUC in the legend (curves of all slices of all cubes pooled, so the legend
// says "pooled AUC"), and writes the plot as a PNG file at path. An undefined
// curve (a class whose targets are all one value) is listed in the legend
// as "n/a" with no line.
func WriteROC(path, title string, curves [oct.NumLesions]metrics.ROCCurve) error {
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
// contains "loss" go to an upper panel, the others (Dice, AUC, ...) to a
// lower one, as their scales differ; a panel with no figure is left out.
func WriteTrainingCurves(path, title string, log []Epoch) error {
	if len(log) == 0 {
		return errors.New("training curves of an empty log")
	}
	var losses, scores []string
	seen := map[string]bool{}
	for _, row := range log {
		for name := range row.Values {
			if seen[name] {
				continue
			}
			seen[name] = true
			if strings.Contains(strings.ToLower(name), "loss") {
				losses = append(losses, name)
			} else {
				scores = append(scores, name)
			}
		}
	}
	if len(seen) == 0 {
		return errors.New("training log holds no figure")
	}
	slices.Sort(losses)
	slices.Sort(scores)

	var panels []*plot.Plot
	for _, group := range []struct {
		names []string
		label string
		// Losses fall and scores rise: their legends go where the curves
		// end up far from.
		legendTop bool
	}{{losses, "loss", true}, {scores, "score", false}} {
		if len(group.names) == 0 {
			continue
		}
		p, err := curvesPanel(log, group.names, group.label, group.legendTop)
		if err != nil {
			return err
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

// curvesPanel plots the named figures of log against the epoch.
func curvesPanel(log []Epoch, names []string, label string, legendTop bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = label
	p.Add(plotter.NewGrid())
	p.Legend.Top = legendTop
	for i, name := range names {
		var points plotter.XYs
		for _, row := range log {
			v, ok := row.Values[name]
			if ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
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
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		line.Width = vg.Points(1.5)
		marks.Color = line.Color
		marks.Shape = plotutil.Shape(i)
		marks.Radius = vg.Points(2)
		p.Add(line, marks)
		p.Legend.Add(name, line, marks)
	}
	return p, nil
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
