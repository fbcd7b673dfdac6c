package inference

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"

	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/metrics"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/submission"
)

// ReportName is the evaluation's report for a browser: one self-contained
// HTML file, its pictures embedded, readable offline.
const ReportName = "report.html"

// htmlFigure is a figure as the report shows it, and the number a sortable
// column sorts by ("" for an undefined figure, which sorts last).
type htmlFigure struct {
	Text, Sort string
}

func fig(v float64) htmlFigure {
	if math.IsNaN(v) {
		return htmlFigure{Text: "n/a"}
	}
	return htmlFigure{Text: fmt.Sprintf("%.4f", v), Sort: fmt.Sprintf("%.17g", v)}
}

type htmlReport struct {
	Title                 string
	Cubes, Slices         int
	Classes               []htmlClass
	AvgAUC, AvgDice, Mean htmlFigure
	Score                 htmlFigure
	Undefined             []string
	ROC                   template.URL
	Rows                  []htmlCube
	Worst                 []htmlWorstClass
	WorstK                int
}

type htmlClass struct {
	Name               string
	AUC, Dice, CubeAUC htmlFigure
}

type htmlCube struct {
	Index     int
	Name      string
	Dice, AUC htmlFigure
	ClassDice []htmlFigure
	ClassAUC  []htmlFigure
}

type htmlWorstClass struct {
	Name   string
	Slices []htmlWorst
}

type htmlWorst struct {
	WorstSlice
	Picture template.URL
	Figure  string
}

func pngURL(b []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
}

// WriteHTMLReport writes the report of an evaluation to path: the official
// figures per class and the score, the pooled ROC picture (the PNG file
// at rocPath, none when it is empty), the figures of every cube in a table sorted by a click on
// a column, and worst's slices (nil for none). It is replaced atomically.
func WriteHTMLReport(path, title string, ev *metrics.Evaluation, rocPath string, worst *WorstSlices) error {
	var roc []byte
	if rocPath != "" {
		var err error
		if roc, err = os.ReadFile(rocPath); err != nil {
			return err
		}
	}
	off := submission.Official(ev)
	_, slices := ev.PooledTargets()
	r := htmlReport{
		Title: title, Cubes: len(off.Cubes), Slices: slices,
		AvgAUC: fig(off.AvgDetection), AvgDice: fig(off.AvgSegmentation), Mean: fig(off.CubeAUC.Mean()),
		Score: fig(off.Score), Undefined: off.Undefined,
	}
	if roc != nil {
		r.ROC = pngURL(roc)
	}
	for c, name := range oct.LesionNames {
		r.Classes = append(r.Classes, htmlClass{Name: name, AUC: fig(off.Detection[c]), Dice: fig(off.Segmentation[c]), CubeAUC: fig(off.CubeAUC[c])})
	}
	for i, cube := range off.Cubes {
		row := htmlCube{Index: i, Name: cube.Name, Dice: fig(cube.Dice.Mean()), AUC: fig(cube.AUC.Mean())}
		for c := range oct.NumLesions {
			row.ClassDice = append(row.ClassDice, fig(cube.Dice[c]))
			row.ClassAUC = append(row.ClassAUC, fig(cube.AUC[c]))
		}
		r.Rows = append(r.Rows, row)
	}
	if worst != nil {
		r.WorstK = worst.K
		for c, name := range oct.LesionNames {
			wc := htmlWorstClass{Name: name}
			for _, s := range worst.Classes[c] {
				wc.Slices = append(wc.Slices, htmlWorst{WorstSlice: s, Picture: pngURL(s.PNG), Figure: fmt.Sprintf("%.4f", s.Dice)})
			}
			r.Worst = append(r.Worst, wc)
		}
	}
	var b bytes.Buffer
	if err := reportTemplate.Execute(&b, r); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(b.Bytes())
		return err
	})
}

var reportTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}: evaluation</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child, td.name { text-align: left; }
#cubes th { cursor: pointer; user-select: none; }
#cubes th.sorted-up::after { content: " ▲"; }
#cubes th.sorted-down::after { content: " ▼"; }
tr.average td { font-weight: bold; }
.note { color: #775; }
.key span { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; vertical-align: middle; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; }
figure img { max-width: 100%; image-rendering: pixelated; min-height: 12em; }
figcaption { font-size: 0.9em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Cubes}} cube(s), {{.Slices}} slice(s). The detection AUC is pooled over every slice of every cube, as the challenge scores it;
the segmentation Dice of a class is the mean over the cubes whose ground truth holds it.</p>

<h2>Summary</h2>
<table id="summary">
<thead><tr><th>class</th><th>detection AUC</th><th>segmentation Dice</th><th>AUC per cube (not scored)</th></tr></thead>
<tbody>
{{range .Classes}}<tr class="class"><td>{{.Name}}</td><td>{{.AUC.Text}}</td><td>{{.Dice.Text}}</td><td>{{.CubeAUC.Text}}</td></tr>
{{end}}<tr class="average"><td>average</td><td>{{.AvgAUC.Text}}</td><td>{{.AvgDice.Text}}</td><td>{{.Mean.Text}}</td></tr>
</tbody>
</table>
<p>score (the mean of the average detection AUC and the average segmentation Dice): <b id="score">{{.Score.Text}}</b></p>
{{range .Undefined}}<p class="note">note: {{.}}</p>
{{end}}
{{if .ROC}}<h2>ROC curves, pooled over all slices</h2>
<img id="roc" src="{{.ROC}}" alt="ROC curves of the detection of each class, pooled over all slices">{{end}}

<h2>Cubes</h2>
<p>Click a column to sort by it.</p>
<table id="cubes">
<thead><tr><th data-type="number">#</th><th data-type="text">cube</th><th data-type="number">Dice</th>{{range .Classes}}<th data-type="number">Dice {{.Name}}</th>{{end}}<th data-type="number">AUC</th>{{range .Classes}}<th data-type="number">AUC {{.Name}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr><td data-v="{{.Index}}">{{.Index}}</td><td class="name" data-v="{{.Name}}">{{.Name}}</td><td data-v="{{.Dice.Sort}}">{{.Dice.Text}}</td>{{range .ClassDice}}<td data-v="{{.Sort}}">{{.Text}}</td>{{end}}<td data-v="{{.AUC.Sort}}">{{.AUC.Text}}</td>{{range .ClassAUC}}<td data-v="{{.Sort}}">{{.Text}}</td>{{end}}</tr>
{{end}}</tbody>
</table>

<h2>Slices of lowest Dice</h2>
{{if .Worst}}<p>Per class, the {{.WorstK}} slice(s) whose Dice of the class is lowest among those whose ground truth holds it. Each picture: the slice,
the prediction, the ground truth.</p>
<p class="key">key:<span style="background:#0000ff"></span>REA<span style="background:#00ff00"></span>SRF<span style="background:#ff0000"></span>PED</p>
{{range .Worst}}<h3>{{.Name}}</h3>
{{if .Slices}}{{range .Slices}}<figure class="worst"><img src="{{.Picture}}" alt="cube {{.CubeIndex}}, slice {{.Slice}}">
<figcaption>cube {{.CubeIndex}} ({{.Cube}}), slice {{.Slice}}: Dice <b>{{.Figure}}</b>, {{.Truth}} pixel(s) in the ground truth, {{.Pred}} predicted</figcaption></figure>
{{end}}{{else}}<p class="note">No slice's ground truth holds {{.Name}}.</p>
{{end}}{{end}}{{else}}<p class="note">Not collected for this evaluation.</p>
{{end}}
<script>
(() => {
  const table = document.getElementById("cubes");
  const heads = table.tHead.rows[0].cells;
  for (let i = 0; i < heads.length; i++) {
    heads[i].addEventListener("click", () => {
      const th = heads[i], up = !th.classList.contains("sorted-up");
      for (const h of heads) h.classList.remove("sorted-up", "sorted-down");
      th.classList.add(up ? "sorted-up" : "sorted-down");
      const number = th.dataset.type === "number";
      const rows = Array.from(table.tBodies[0].rows);
      const key = r => r.cells[i].dataset.v;
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === "" || y === "") return (x === "") - (y === "");
        const d = number ? Number(x) - Number(y) : x.localeCompare(y);
        return up ? d : -d;
      });
      for (const r of rows) table.tBodies[0].appendChild(r);
    });
  }
})();
</script>
</body>
</html>
`))
