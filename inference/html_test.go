package inference

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/browsertest"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/submission"
)

// TestWorstSlices: the collector keeps, per class, the K slices of lowest
// Dice among those whose ground truth holds the class, as a brute-force
// pass over every slice finds them (ties to the earlier cube and slice).
func TestWorstSlices(t *testing.T) {
	dataDir, cubes, norm := tinyData(t)
	p := unetPredictor(t, Options{BatchSize: 2})
	worst := &WorstSlices{K: 3}
	_, err := Evaluate(context.Background(), p, dataDir, cubes, norm, EvalOptions{Workers: 2, Worst: worst})
	require.NoError(t, err)
	var all [oct.NumLesions][]WorstSlice
	for i, e := range cubes {
		cube, err := oct.LoadCube(dataDir, e, 2)
		require.NoError(t, err)
		pred, err := p.PredictCube(context.Background(), cube, norm)
		require.NoError(t, err)
		area := cube.H * cube.W
		for s := range cube.Slices() {
			for c := range oct.NumLesions {
				var inter, pc, gc int
				for k := s * area; k < (s+1)*area; k++ {
					g, q := int(cube.Labels[k]) == c+1, int(pred.Labels[k]) == c+1
					if g {
						gc++
					}
					if q {
						pc++
					}
					if g && q {
						inter++
					}
				}
				if gc > 0 {
					all[c] = append(all[c], WorstSlice{Cube: cube.Name, CubeIndex: i, Slice: s, Dice: 2 * float64(inter) / float64(pc+gc), Truth: gc, Pred: pc})
				}
			}
		}
	}
	for c := range oct.NumLesions {
		slices.SortStableFunc(all[c], func(a, b WorstSlice) int {
			if a.Dice != b.Dice {
				if a.Dice < b.Dice {
					return -1
				}
				return 1
			}
			return 0 // stable: list order breaks ties
		})
		want := all[c][:min(3, len(all[c]))]
		got := worst.Classes[c]
		require.Len(t, got, len(want), oct.LesionNames[c])
		for i := range want {
			assert.Equal(t, [3]any{want[i].CubeIndex, want[i].Slice, want[i].Dice}, [3]any{got[i].CubeIndex, got[i].Slice, got[i].Dice})
			assert.Equal(t, want[i].Truth, got[i].Truth)
			assert.NotEmpty(t, got[i].PNG)
		}
	}
}

// TestReportInBrowser opens an evaluation's report.html in headless
// Chromium: no console error, the tables hold the evaluation's figures,
// the per-cube table sorts on a click, and every picture decodes. The
// page's screenshot goes to the test's artifact folder (go test
// -artifacts keeps it).
func TestReportInBrowser(t *testing.T) {
	dataDir, cubes, norm := tinyData(t)
	p := unetPredictor(t, Options{BatchSize: 2})
	worst := &WorstSlices{K: 2}
	ev, err := Evaluate(context.Background(), p, dataDir, cubes, norm, EvalOptions{Workers: 2, Worst: worst})
	require.NoError(t, err)
	out := t.TempDir()
	require.NoError(t, WriteReport(out, "UNet (random weights)", ev, worst))
	page, err := os.ReadFile(filepath.Join(out, ReportName))
	require.NoError(t, err)
	assert.NotContains(t, string(page), "http://", "the page must not fetch anything")
	assert.NotContains(t, string(page), "https://")

	ctx := browsertest.Open(t)
	// The first action starts the browser, which lives as long as the
	// context it ran with: the time limit goes on the later ones.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	var mu sync.Mutex
	var problems []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.Type == chromedp.ConsoleException {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s: %s", m.Type, m.Text))
				mu.Unlock()
			}
		}
	}()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+filepath.Join(out, ReportName))))
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	off := submission.Official(ev)
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err)
		return s
	}
	assert.Equal(t, fig(off.Score).Text, text("#score"))
	summary, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("#summary tbody tr")).map(r => Array.from(r.cells).map(c => c.textContent))`))
	require.NoError(t, err)
	require.Len(t, summary, oct.NumLesions+1)
	for c, name := range oct.LesionNames {
		assert.Equal(t, []string{name, fig(off.Detection[c]).Text, fig(off.Segmentation[c]).Text, fig(off.CubeAUC[c]).Text}, summary[c])
	}
	assert.Equal(t, []string{"average", fig(off.AvgDetection).Text, fig(off.AvgSegmentation).Text, fig(off.CubeAUC.Mean()).Text}, summary[3])

	rows := func() [][]string {
		r, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("#cubes tbody tr")).map(r => Array.from(r.cells).map(c => c.textContent))`))
		require.NoError(t, err)
		return r
	}
	before := rows()
	require.Len(t, before, len(cubes))
	for i, c := range ev.Cubes() {
		assert.Equal(t, []string{strconv.Itoa(i), c.Name, fig(c.Dice.Mean()).Text}, before[i][:3])
	}
	// Twice on "Dice": descending, then ascending; the rows follow.
	for _, order := range []string{"up", "down"} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#cubes thead th:nth-child(3)`))))
		after := rows()
		var dice []float64
		for _, r := range after {
			if v, err := strconv.ParseFloat(r[2], 64); err == nil {
				dice = append(dice, v)
			}
		}
		sorted := slices.IsSorted(dice)
		if order == "down" {
			slices.Reverse(dice)
			sorted = slices.IsSorted(dice)
		}
		assert.True(t, sorted, "sorted %s: %v", order, after)
	}

	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`Array.from(document.images).every(i => i.complete)`))
	require.NoError(t, err)
	images, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)`))
	require.NoError(t, err)
	collected := 0
	for c := range oct.NumLesions {
		collected += len(worst.Classes[c])
	}
	assert.Len(t, images, 1+collected, "the ROC and each slice of lowest Dice")
	assert.NotContains(t, images, false, "a picture that does not decode")
	var caption string
	if collected > 0 {
		caption = text("figure.worst figcaption")
		assert.True(t, strings.HasPrefix(caption, "cube "), caption)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(t.ArtifactDir(), "report.png"), shot, 0o644))
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, problems, "the console")
}
