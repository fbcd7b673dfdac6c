package demo

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/atomicfile"
)

// SummaryName is the file, in the output folder, that holds the table.
const SummaryName = "summary.txt"

// WriteTable writes the demo's results: per model the validation Dice
// (mean and per class) and detection AUC (pooled over all slices, as the
// original's eval), and the official validation score; then the official
// score of the fusion's test submission.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tval Dice\tREA\tSRF\tPED\tval AUC\tofficial val score")
	for _, row := range r.Rows {
		s := row.Summary
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Model, inference.Figure(s.MeanDice),
			inference.Figure(s.Dice[0]), inference.Figure(s.Dice[1]), inference.Figure(s.Dice[2]),
			inference.Figure(s.MeanPooledAUC), inference.Figure(row.Official.Score))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "test submission (fusion): Dice %s, AUC %s, official score %s\n",
		inference.Figure(r.Test.AvgSegmentation), inference.Figure(r.Test.AvgDetection), inference.Figure(r.Test.Score))
	return err
}

// WriteOutputs lists where the demo's outputs are.
func (r *Report) WriteOutputs(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "outputs in %s:\n", r.Out)
	fmt.Fprintf(&b, "  data (-d) %s, lists (-l) %s\n", r.Data, r.Lists)
	for _, recipe := range Recipes(1, 1) {
		fmt.Fprintf(&b, "  %s checkpoint: %s\n", recipe.Name, r.Checkpoints[recipe.Name])
	}
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "  %s: %s (dice_epoch.txt, cubes.tsv, score.txt, roc.png)\n", row.Model, row.Dir)
	}
	fmt.Fprintf(&b, "  slice pictures (fusion): %s\n", r.Pictures)
	fmt.Fprintf(&b, "  test submission (fusion): %s\n", r.Submission)
	fmt.Fprintf(&b, "  this table: %s\n", filepath.Join(r.Out, SummaryName))
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSummary writes the table and the run time into the output folder.
func writeSummary(r *Report) error {
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		return err
	}
	fmt.Fprintf(&b, "run time %s\n", r.Took.Round(time.Second))
	return atomicfile.Write(filepath.Join(r.Out, SummaryName), func(w io.Writer) error {
		_, err := w.Write(b.Bytes())
		return err
	})
}
