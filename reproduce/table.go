package reproduce

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/models"
)

// TableName is the file, in the output folder, of the table in Markdown.
const TableName = "reproduce.md"

// figure writes a reproduced figure beside the published one, "–" for
// either that is absent: "0.7712 (0.772)".
func figure(got, published float64) string {
	return value(got) + " (" + value(published) + ")"
}

func value(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.4f", v)
}

func multiTask(r Row) string {
	if r.MultiTask {
		return "yes"
	}
	return "no"
}

// WriteTable writes the reproduced table as aligned text: per row the
// model, whether it is multi-task, its loss, each figure reproduced with
// the published one in brackets, and the official validation score.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tmulti-task\tloss\tval Dice\tval AUC\ttest Dice\ttest AUC\tofficial val score")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Model, multiTask(r.Row), r.Terms,
			figure(r.Got.ValDice, r.Published.ValDice), figure(r.Got.ValAUC, r.Published.ValAUC),
			figure(r.Got.TestDice, r.Published.TestDice), figure(r.Got.TestAUC, r.Published.TestAUC), value(r.ValScore))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "(published figures in brackets; – where a row does not do the task, or the original gives none)\n")
	return err
}

// writeTables writes TableName: the table, and per row its recipe and
// folder.
func writeTables(dir string, results []Result) error {
	var b bytes.Buffer
	b.WriteString("# The original's results table, reproduced\n\n")
	b.WriteString("Each figure as reproduced, the published one in brackets; – where a row does not do the task, ")
	b.WriteString("where the original gives no figure, or where no test ground truth was given.\n\n")
	b.WriteString("| model | multi-task | loss | val Dice | val AUC | test Dice | test AUC | official val score |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Model, multiTask(r.Row), r.Terms,
			figure(r.Got.ValDice, r.Published.ValDice), figure(r.Got.ValAUC, r.Published.ValAUC),
			figure(r.Got.TestDice, r.Published.TestDice), figure(r.Got.TestAUC, r.Published.TestAUC), value(r.ValScore))
	}
	b.WriteString("\n## Recipes\n\n")
	for _, r := range results {
		recipe := "the fusion of " + strings.Join(fusionMembers, " and ") + ", 0.5 each"
		if r.Key != fusionKey {
			recipe = r.Recipe.String()
		}
		switch {
		case r.Start != "":
			recipe += ", from " + r.Start
		case r.Name == models.NameResNet18:
			recipe += ", from scratch (the original started from ImageNet weights: --pretrained)"
		}
		fmt.Fprintf(&b, "- `%s` (%s, %s): %s; in `%s`\n", r.Key, r.Model, r.Terms, recipe, r.Dir)
	}
	return atomicfile.Write(filepath.Join(dir, TableName), func(w io.Writer) error {
		_, err := w.Write(b.Bytes())
		return err
	})
}
