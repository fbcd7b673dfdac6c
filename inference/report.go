package inference

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/metrics"
	"github.com/edema/edema/picture"
	"github.com/edema/edema/submission"

	"github.com/edema/edema/oct"
)

// Files that WriteReport writes into an evaluation's output folder.
const (
	// LogName is the original eval script's one-row log: Epoch, Dice_val,
	// Dice_1..3, AUC, AUC_1..3, the AUC pooled over all slices.
	LogName = "dice_epoch.txt"
	// CubesName holds the figures of each cube, the AUC per cube.
	CubesName = "cubes.tsv"
	// ScoreName holds the challenge's official figures, as `edema score`
	// prints them.
	ScoreName = "score.txt"
	// ROCName is the plot of the ROC curves pooled over all slices of all
	// cubes, whose AUCs are the official detection figures.
	ROCName = "roc.png"
)

// WriteReport writes the figures of an evaluation into dir: LogName,
// CubesName, ScoreName, the ROC plot ROCName titled title (unless the
// network does not detect), and ReportName, which shows them all with
// worst's slices (nil for none).
func WriteReport(dir, title string, ev *metrics.Evaluation, worst *WorstSlices) error {
	if err := WriteLog(filepath.Join(dir, LogName), ev.Summary()); err != nil {
		return err
	}
	if err := WriteCubes(filepath.Join(dir, CubesName), ev.Cubes()); err != nil {
		return err
	}
	var score bytes.Buffer
	if err := submission.Official(ev).WriteTable(&score); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, ScoreName), func(w io.Writer) error {
		_, err := w.Write(score.Bytes())
		return err
	}); err != nil {
		return err
	}
	roc := ""
	if !ev.Absent.Has(oct.Detection) {
		roc = filepath.Join(dir, ROCName)
		if err := picture.WriteROC(roc, title, ev.PooledROC()); err != nil {
			return err
		}
	}
	return WriteHTMLReport(filepath.Join(dir, ReportName), title, ev, roc, worst)
}

// WriteLog writes the original eval script's log: a header of the columns
// Epoch, Dice_val, Dice_1, Dice_2, Dice_3, AUC, AUC_1, AUC_2, AUC_3 and one
// row, epoch 000, in its format (a tab after every field, figures as
// Python's "{:6f}", so an undefined one reads "nan").
func WriteLog(path string, s metrics.Summary) error {
	var b bytes.Buffer
	for _, c := range []string{"Epoch", "Dice_val", "Dice_1", "Dice_2", "Dice_3", "AUC", "AUC_1", "AUC_2", "AUC_3"} {
		b.WriteString(c + "\t")
	}
	b.WriteString("\n000\t")
	for _, v := range []float64{s.MeanDice, s.Dice[0], s.Dice[1], s.Dice[2], s.MeanPooledAUC, s.PooledAUC[0], s.PooledAUC[1], s.PooledAUC[2]} {
		b.WriteString(pyFloat(v) + "\t")
	}
	b.WriteString("\n")
	return writeBytes(path, b.Bytes())
}

// WriteCubes writes the figures of each cube as tab-separated values: its
// index and name, the mean of its defined Dice figures (the original's
// per-cube score), the Dice per class, the mean of its defined detection
// AUCs and the AUC per class, "nan" where undefined.
func WriteCubes(path string, cubes []metrics.CubeScores) error {
	var b bytes.Buffer
	b.WriteString("Cube\tName\tDice\tDice_1\tDice_2\tDice_3\tAUC\tAUC_1\tAUC_2\tAUC_3\n")
	for i, c := range cubes {
		fmt.Fprintf(&b, "%04d\t%s\t%s", i, c.Name, tsvFloat(c.Dice.Mean()))
		for _, v := range c.Dice {
			b.WriteString("\t" + tsvFloat(v))
		}
		b.WriteString("\t" + tsvFloat(c.AUC.Mean()))
		for _, v := range c.AUC {
			b.WriteString("\t" + tsvFloat(v))
		}
		b.WriteString("\n")
	}
	return writeBytes(path, b.Bytes())
}

// WriteSummary writes the figures of an evaluation for people: the
// original eval script's (Dice per cube averaged per class, AUC pooled over
// all slices), then the challenge's official ones as `edema score` prints
// them.
func WriteSummary(w io.Writer, ev *metrics.Evaluation) error {
	s := ev.Summary()
	var b bytes.Buffer
	fmt.Fprintf(&b, "original eval (%d cubes; Dice per cube, AUC pooled over all slices):\n", s.Cubes)
	if s.Absent.Has(oct.Segmentation) {
		b.WriteString("  Dice absent (the network does not segment)\n")
	} else {
		fmt.Fprintf(&b, "  Dice %s  %s\n", Figure(s.MeanDice), PerLesion(s.Dice))
	}
	if s.Absent.Has(oct.Detection) {
		b.WriteString("  AUC  absent (the network does not detect)\n")
	} else {
		fmt.Fprintf(&b, "  AUC  %s  %s\n", Figure(s.MeanPooledAUC), PerLesion(s.PooledAUC))
	}
	b.WriteString("official score (Dice per cube averaged over cubes, AUC pooled over all slices):\n")
	var table bytes.Buffer
	if err := submission.Official(ev).WriteTable(&table); err != nil {
		return err
	}
	for line := range strings.Lines(table.String()) {
		b.WriteString("  " + line)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// CubeLine describes one cube that Evaluate has finished, on one line.
func CubeLine(c CubeDone) string {
	line := fmt.Sprintf("cube %d/%d %s:", c.Index+1, c.Total, c.Name)
	if c.Scores != nil {
		line += fmt.Sprintf(" Dice %s (%s), AUC %s (%s),", Figure(c.Scores.Dice.Mean()), PerLesion(c.Scores.Dice),
			Figure(c.Scores.AUC.Mean()), PerLesion(c.Scores.AUC))
	}
	return line + fmt.Sprintf(" %.1fs", c.Took.Seconds())
}

// Figure formats a figure with four decimals, or "n/a" when undefined.
func Figure(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}

// PerLesion formats per-class figures as "REA 0.9012  SRF 0.8011  PED n/a".
func PerLesion(p metrics.PerLesion) string {
	parts := make([]string, len(p))
	for c, v := range p {
		parts[c] = oct.LesionNames[c] + " " + Figure(v)
	}
	return strings.Join(parts, "  ")
}

// tsvFloat formats v with six decimals, or as "nan".
func tsvFloat(v float64) string {
	if math.IsNaN(v) {
		return "nan"
	}
	return fmt.Sprintf("%.6f", v)
}

// pyFloat formats v as Python's "{:6f}" does.
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "   nan"
	case math.IsInf(v, 1):
		return "   inf"
	case math.IsInf(v, -1):
		return "  -inf"
	}
	return fmt.Sprintf("%6f", v)
}

func writeBytes(path string, data []byte) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
