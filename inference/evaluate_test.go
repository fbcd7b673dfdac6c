package inference

import (
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/metrics"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/oct/synth"
	"github.com/edema/edema/picture"
	"github.com/edema/edema/submission"
	"github.com/edema/edema/torch"
)

// tinyData writes a synthetic data set of two small validation cubes and
// returns its folder, the validation list and the normaliser of info.json.
func tinyData(t *testing.T) (string, []oct.CubeEntry, *oct.Normalizer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	_, err := synth.Generate(dir, synth.Options{Train: 1, Val: 2, Slices: 5, Width: 32, Height: 64, Seed: 4, Workers: 2})
	require.NoError(t, err)
	lists := filepath.Join(dir, synth.ListDir)
	cubes, err := oct.ReadValList(lists)
	require.NoError(t, err)
	info, err := oct.ReadInfo(filepath.Join(lists, oct.InfoFile))
	require.NoError(t, err)
	norm, err := oct.NewNormalizer(info)
	require.NoError(t, err)
	return dir, cubes, norm
}

// unetPredictor is a randomly initialised UNet: its predictions are
// arbitrary but mix several classes, which is what scoring tests need.
func unetPredictor(t *testing.T, opts Options) *Predictor {
	t.Helper()
	torch.ManualSeed(11)
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	p, err := New([]Member{{m, 1}}, opts)
	require.NoError(t, err)
	return p
}

func TestEvaluateAgreesWithTheSubmissionScore(t *testing.T) {
	dataDir, cubes, norm := tinyData(t)
	p := unetPredictor(t, Options{BatchSize: 2})
	out := t.TempDir()
	var progress []CubeDone
	ev, err := Evaluate(context.Background(), p, dataDir, cubes, norm, EvalOptions{
		Workers: 2, VisDir: filepath.Join(out, "vis"),
		Progress: func(c CubeDone) { progress = append(progress, c) },
	})
	require.NoError(t, err)
	require.Len(t, progress, 2)
	assert.Equal(t, cubes[1].Name(), progress[1].Name)
	assert.Equal(t, 2, progress[1].Total)
	require.NotNil(t, progress[0].Scores)
	assert.Equal(t, ev.Cubes()[0].Name, progress[0].Scores.Name)
	assertSameFigures(t, ev.Cubes()[0].Dice, progress[0].Scores.Dice)

	// Each cube's figures are those of its prediction against its labels.
	for i, e := range cubes {
		cube, err := oct.LoadCube(dataDir, e, 2)
		require.NoError(t, err)
		pred, err := p.PredictCube(context.Background(), cube, norm)
		require.NoError(t, err)
		dice, err := metrics.Dice(pred.Labels, cube.Labels)
		require.NoError(t, err)
		assertSameFigures(t, dice, ev.Cubes()[i].Dice)
	}

	// One picture per slice: grey, prediction and truth side by side.
	for i := range cubes {
		files, err := os.ReadDir(filepath.Join(out, "vis", []string{"0000", "0001"}[i]))
		require.NoError(t, err)
		require.Len(t, files, 5)
		assert.Equal(t, "000.png", files[0].Name())
	}
	cube, err := oct.LoadCube(dataDir, cubes[1], 2)
	require.NoError(t, err)
	pred, err := p.PredictCube(context.Background(), cube, norm)
	require.NoError(t, err)
	fig := SliceFigure(cube, pred, 3)
	assert.Equal(t, fmt.Sprintf("cube %s, slice 3 (4.bmp)", cube.Name), fig.Title)
	assert.Equal(t, pred.Detections[3*oct.NumLesions:4*oct.NumLesions], fig.Detections)
	area := cube.H * cube.W
	assert.Equal(t, cube.Labels[3*area:4*area], fig.Truth)
	want, err := fig.Draw()
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(out, "vis", "0001", "003.png"))
	require.NoError(t, err)
	defer f.Close()
	written, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, want.Bounds(), written.Bounds(), "the figure of the slice")
	assert.GreaterOrEqual(t, written.Bounds().Dy(), picture.MinSliceHeight)

	// The same predictions written as a submission and scored officially
	// against the validation ground truth give the same figures.
	sub := filepath.Join(out, "test")
	zipPath, err := WriteSubmission(context.Background(), p, dataDir, cubes, norm, sub, SubmitOptions{Workers: 2, Volumes: true, Detections: true})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(sub, submission.ZipName), zipPath)
	r, err := submission.Score(zipPath, filepath.Join(dataDir, filepath.FromSlash(oct.Validation.GroundTruthDir())), nil)
	require.NoError(t, err)
	official := submission.Official(ev)
	assertSameFigures(t, r.Segmentation, official.Segmentation)
	assertSameFigures(t, r.Detection, official.Detection)
	assert.InDelta(t, r.Score, official.Score, 1e-12)
	assert.False(t, math.IsNaN(official.Score))

	require.NoError(t, WriteReport(out, "UNet", ev, nil))
	log, err := os.ReadFile(filepath.Join(out, LogName))
	require.NoError(t, err)
	lines := strings.Split(string(log), "\n")
	assert.Equal(t, "Epoch\tDice_val\tDice_1\tDice_2\tDice_3\tAUC\tAUC_1\tAUC_2\tAUC_3\t", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "000\t"), lines[1])
	assert.Len(t, strings.Split(lines[1], "\t"), 10)
	table, err := os.ReadFile(filepath.Join(out, CubesName))
	require.NoError(t, err)
	assert.Contains(t, string(table), "0001\t"+cubes[1].Name()+"\t")
	for _, name := range []string{ScoreName, ROCName, ReportName} {
		assert.FileExists(t, filepath.Join(out, name))
	}
}

// assertSameFigures compares per-class figures, NaN included.
func assertSameFigures(t *testing.T, want, got metrics.PerLesion) {
	t.Helper()
	for c := range want {
		if math.IsNaN(want[c]) {
			assert.True(t, math.IsNaN(got[c]), "class %d: want NaN, got %g", c+1, got[c])
			continue
		}
		assert.InDelta(t, want[c], got[c], 1e-12, "class %d", c+1)
	}
}

func TestWriteSubmissionParts(t *testing.T) {
	dataDir, cubes, norm := tinyData(t)
	p := unetPredictor(t, Options{})
	for _, tc := range []struct {
		volumes, detections bool
		present, absent     func(string) string
	}{
		{true, false, submission.VolumesFile, submission.DetectionsFile},
		{false, true, submission.DetectionsFile, submission.VolumesFile},
	} {
		dir := t.TempDir()
		zipPath, err := WriteSubmission(context.Background(), p, dataDir, cubes, norm, dir, SubmitOptions{Volumes: tc.volumes, Detections: tc.detections})
		require.NoError(t, err)
		assert.Empty(t, zipPath, "no submission.zip without both files")
		files, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		want := []string{tc.present(cubes[0].Name()), tc.present(cubes[1].Name())}
		assert.ElementsMatch(t, want, names, "nothing else, no temporary folder")
	}
	_, err := WriteSubmission(context.Background(), p, dataDir, cubes, norm, t.TempDir(), SubmitOptions{})
	assert.ErrorContains(t, err, "nothing to write")
	_, err = WriteSubmission(context.Background(), p, dataDir, []oct.CubeEntry{cubes[0], cubes[0]}, norm, t.TempDir(), SubmitOptions{Volumes: true, Detections: true})
	assert.ErrorContains(t, err, "is listed twice")
}

func TestEvaluateErrors(t *testing.T) {
	dataDir, cubes, norm := tinyData(t)
	p := unetPredictor(t, Options{})
	_, err := Evaluate(context.Background(), p, dataDir, []oct.CubeEntry{{Images: cubes[0].Images}}, norm, EvalOptions{})
	assert.ErrorContains(t, err, "has no label folder")
	_, err = Evaluate(context.Background(), p, dataDir, nil, norm, EvalOptions{})
	assert.ErrorContains(t, err, "no cube to evaluate")
	_, err = Evaluate(context.Background(), p, t.TempDir(), cubes, norm, EvalOptions{})
	assert.Error(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Evaluate(ctx, p, dataDir, cubes, norm, EvalOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}
