package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/outdir"
	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/oct/synth"
	"github.com/edema/edema/torch"
)

// evalFixture is a small synthetic data set and checkpoints of randomly
// initialised networks: their predictions are arbitrary but mix classes
// and give varied detection probabilities, which is what checking the
// arithmetic of the scores needs.
type evalFixture struct {
	data, lists string
	unet        string // checkpoint of a UNet
	nested      string // checkpoint of a UNet++
}

func newEvalFixture(t *testing.T) evalFixture {
	t.Helper()
	root := t.TempDir()
	f := evalFixture{data: filepath.Join(root, "data")}
	_, err := synth.Generate(f.data, synth.Options{Train: 1, Val: 3, Test: 1, Slices: 6, Width: 32, Height: 64, Seed: 21, Workers: 2})
	require.NoError(t, err)
	f.lists = filepath.Join(f.data, synth.ListDir)
	f.unet = saveRandom(t, filepath.Join(root, "unet.pth.tar"), models.NameUNet, 7)
	f.nested = saveRandom(t, filepath.Join(root, "nested.pth.tar"), models.NameUNetNested, 8)
	return f
}

func saveRandom(t *testing.T, path, name string, seed uint64) string {
	t.Helper()
	torch.ManualSeed(seed)
	m, err := models.New(name)
	require.NoError(t, err)
	defer m.Free()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, models.SaveCheckpoint(path, m, &models.CheckpointMeta{Epoch: 1}, nil, models.SaveOptions{}))
	return path
}

// scoreReference recomputes, with NumPy and scikit-learn only, the figures
// of a submission folder against the validation ground truth, cube by cube
// in list order: the Dice of each class (NaN when absent from the ground
// truth) and its mean, as the original's aic_fundus_lesion_segmentation and
// compute_segment_score; the AUC pooled over all slices, as its
// aic_fundus_lesion_classification and the organisers' scorer (roc_curve
// then auc) compute it; and the mean of the per-cube AUCs.
const scoreReference = `
import json, math, os, sys
import numpy as np
from sklearn.metrics import auc as area, roc_auc_score, roc_curve

sub, gt, names = sys.argv[1], sys.argv[2], sys.argv[3:]
cubes, all_det, all_ref = [], [], []
for name in names:
    vol = np.load(os.path.join(sub, name + "_labelMark_volumes.npy"))
    det = np.load(os.path.join(sub, name + "_labelMark_detections.npy"))
    ref_vol = np.load(os.path.join(gt, name + "_volumes.npy"))
    ref_det = np.load(os.path.join(gt, name + "_detections.npy"))
    assert vol.dtype == np.uint8 and vol.shape == ref_vol.shape, (vol.dtype, vol.shape)
    assert det.dtype == np.float32 and det.shape == (ref_vol.shape[0], 3), (det.dtype, det.shape)
    dice, auc = [], []
    for c in (1, 2, 3):
        g, p = ref_vol == c, vol == c
        dice.append(2 * (g & p).sum() / (g.sum() + p.sum()) if g.sum() else float("nan"))
        y = ref_det[:, c - 1]
        auc.append(roc_auc_score(y, det[:, c - 1]) if 0 < y.sum() < len(y) else float("nan"))
    cubes.append({"dice": dice, "auc": auc})
    all_det.append(det)
    all_ref.append(ref_det)
all_det, all_ref = np.concatenate(all_det), np.concatenate(all_ref)

def nanmean(v):
    v = [x for x in v if not math.isnan(x)]
    return sum(v) / len(v) if v else float("nan")

dice = [nanmean([c["dice"][k] for c in cubes]) for k in range(3)]
pooled = [area(*roc_curve(all_ref[:, k], all_det[:, k], pos_label=1)[:2]) for k in range(3)]
per_cube = [nanmean([c["auc"][k] for c in cubes]) for k in range(3)]
print(json.dumps({"cubes": cubes, "dice": dice, "mean_dice": nanmean(dice),
                  "pooled_auc": pooled, "mean_pooled_auc": sum(pooled) / 3,
                  "cube_auc": per_cube, "avg_detection": nanmean(pooled),
                  "score": (nanmean(pooled) + nanmean(dice)) / 2}).replace("NaN", "null"))
`

type referenceScores struct {
	Cubes []struct {
		Dice []*float64 `json:"dice"`
		AUC  []*float64 `json:"auc"`
	} `json:"cubes"`
	Dice          []float64 `json:"dice"`
	MeanDice      float64   `json:"mean_dice"`
	PooledAUC     []float64 `json:"pooled_auc"`
	MeanPooledAUC float64   `json:"mean_pooled_auc"`
	CubeAUC       []float64 `json:"cube_auc"`
	AvgDetection  float64   `json:"avg_detection"`
	Score         float64   `json:"score"`
}

// readTSV reads a tab-separated file into rows of fields.
func readTSV(t *testing.T, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var rows [][]string
	for line := range strings.Lines(string(data)) {
		rows = append(rows, strings.Split(strings.TrimRight(line, "\t\n"), "\t"))
	}
	return rows
}

func parseFigure(t *testing.T, s string) float64 {
	t.Helper()
	s = strings.TrimSpace(s)
	if s == "nan" || s == "n/a" {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, s)
	return v
}

func assertFigure(t *testing.T, want *float64, got float64, tol float64, what string) {
	t.Helper()
	if want == nil || math.IsNaN(*want) {
		assert.True(t, math.IsNaN(got), "%s: want nan, got %g", what, got)
		return
	}
	assert.InDelta(t, *want, got, tol, what)
}

// TestEvalAgreesWithTestOutput checks the figures edema eval prints and
// writes against those NumPy and scikit-learn compute from the volumes and
// detections that edema test writes for the same cubes.
func TestEvalAgreesWithTestOutput(t *testing.T) {
	pytorchtest.Python(t)
	f := newEvalFixture(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unet", []string{"--seg-name", "unet", "--seg-path", f.unet}},
		{"fusion, flip", []string{"--fusion", "--fusion-model", "unet_nested=" + f.nested + ":0.3", "--fusion-model", "unet=" + f.unet + ":0.7", "--tta", "flip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evalOut := t.TempDir()
			out, err := runCommand(t, evalCommand(), append([]string{"-d", f.data, "-l", f.lists, "--out", evalOut, "-j", "2", "--batch-size", "4"}, tc.args...)...)
			require.NoError(t, err)
			assert.Contains(t, out, "cube 3/3 ")
			assert.Contains(t, out, "official score")

			// The validation cubes as a test set, normalised as eval
			// normalises them.
			testLists := t.TempDir()
			copyFile(t, filepath.Join(f.lists, oct.ValImagesList), filepath.Join(testLists, oct.TestImagesList))
			copyFile(t, filepath.Join(f.lists, oct.InfoFile), filepath.Join(testLists, oct.TestInfoFile))
			testOut := t.TempDir()
			out, err = runCommand(t, testCommand(), append([]string{"-d", f.data, "-l", testLists, "--seg", "--det", "--out", testOut, "-j", "2"}, tc.args...)...)
			require.NoError(t, err)
			assert.Contains(t, out, "submission: "+filepath.Join(testOut, "submission.zip"))

			cubes, err := oct.ReadValList(f.lists)
			require.NoError(t, err)
			args := []string{testOut, filepath.Join(f.data, filepath.FromSlash(oct.Validation.GroundTruthDir()))}
			for _, c := range cubes {
				args = append(args, c.Name())
			}
			var ref referenceScores
			refJSON := pytorchtest.Run(t, "", scoreReference, args...)
			t.Log(refJSON)
			require.NoError(t, json.Unmarshal([]byte(refJSON), &ref))

			// dice_epoch.txt: the original's columns, six decimals.
			log := readTSV(t, filepath.Join(evalOut, inference.LogName))
			require.Len(t, log, 2)
			assert.Equal(t, []string{"Epoch", "Dice_val", "Dice_1", "Dice_2", "Dice_3", "AUC", "AUC_1", "AUC_2", "AUC_3"}, log[0])
			row := log[1]
			assert.Equal(t, "000", row[0])
			const tol = 6e-7
			assert.InDelta(t, ref.MeanDice, parseFigure(t, row[1]), tol, "Dice_val")
			assert.InDelta(t, ref.MeanPooledAUC, parseFigure(t, row[5]), tol, "AUC")
			for c := range 3 {
				assertFigure(t, &ref.Dice[c], parseFigure(t, row[2+c]), tol, "Dice_"+strconv.Itoa(c+1))
				assertFigure(t, &ref.PooledAUC[c], parseFigure(t, row[6+c]), tol, "AUC_"+strconv.Itoa(c+1))
			}

			// cubes.tsv: every cube's Dice and official AUC.
			table := readTSV(t, filepath.Join(evalOut, inference.CubesName))
			require.Len(t, table, 1+len(cubes))
			for i, c := range cubes {
				r := table[1+i]
				assert.Equal(t, c.Name(), r[1])
				for k := range 3 {
					assertFigure(t, ref.Cubes[i].Dice[k], parseFigure(t, r[3+k]), tol, c.Name()+" Dice")
					assertFigure(t, ref.Cubes[i].AUC[k], parseFigure(t, r[7+k]), tol, c.Name()+" AUC")
				}
			}

			// score.txt: the official figures (the pooled AUC), four
			// decimals, and the mean of the per-cube AUCs beside them.
			score := map[string][]string{}
			for _, line := range strings.Split(readFileString(t, filepath.Join(evalOut, inference.ScoreName)), "\n") {
				if f := strings.Fields(line); len(f) > 1 {
					score[f[0]] = f[1:]
				}
			}
			for c, name := range []string{"REA", "SRF", "PED"} {
				assertFigure(t, &ref.PooledAUC[c], parseFigure(t, score[name][0]), 5e-5, name+" official AUC")
				assertFigure(t, &ref.CubeAUC[c], parseFigure(t, score[name][2]), 5e-5, name+" AUC per cube")
			}
			assert.InDelta(t, ref.AvgDetection, parseFigure(t, score["average"][0]), 5e-5)
			assert.InDelta(t, ref.MeanDice, parseFigure(t, score["average"][1]), 5e-5)
			assert.InDelta(t, ref.Score, parseFigure(t, score["score"][0]), 5e-5)
		})
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, data, 0o644))
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

// TestDefaultFusion runs --fusion alone, which reads the checkpoints that
// edema train writes by default, in the working folder.
func TestDefaultFusion(t *testing.T) {
	f := newEvalFixture(t)
	t.Chdir(t.TempDir())
	_, err := runCommand(t, evalCommand(), "-d", f.data, "-l", f.lists, "--fusion")
	require.Error(t, err)
	assert.Equal(t, "eval: --fusion: the default fusion needs result/unet_nested/checkpoint/model_best.pth.tar, which is missing "+
		"(train it with `edema train --name unet_nested`, or name the networks with --fusion-model NAME=PATH:WEIGHT)", err.Error())

	copyFile(t, f.nested, mkdirFor(t, filepath.Join("result", "unet_nested", "checkpoint", "model_best.pth.tar")))
	copyFile(t, f.unet, mkdirFor(t, filepath.Join("result", "unet", "checkpoint", "model_best.pth.tar")))
	out, err := runCommand(t, evalCommand(), "-d", f.data, "-l", f.lists, "--fusion", "--vis", "--opaque", "-j", "2")
	require.NoError(t, err)
	assert.Contains(t, out, "evaluating unet_nested 0.5 + unet 0.5 on 3 validation cubes")
	for _, name := range []string{inference.LogName, inference.CubesName, inference.ScoreName, inference.ROCName, "vis/0002/005.png"} {
		assert.FileExists(t, filepath.Join("result", "eval", "fusion", name))
	}
	// --opaque: lesions in the lesion colours themselves, which half
	// transparent paint never gives, in the panels (the middle rows of
	// the pictures, between the titles and the colour key).
	vis := filepath.Join("result", "eval", "fusion", "vis", "0002")
	pictures, err := os.ReadDir(vis)
	require.NoError(t, err)
	opaque := 0
	for _, p := range pictures {
		img := readPNGFile(t, filepath.Join(vis, p.Name()))
		b := img.Bounds()
		for y := b.Dy() / 10; y < b.Dy()*85/100; y++ {
			for x := range b.Dx() {
				if slices.Contains(oct.LesionColors[:], color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)) {
					opaque++
				}
			}
		}
	}
	assert.Greater(t, opaque, 100, "lesions painted opaque")

	out, err = runCommand(t, testCommand(), "-d", f.data, "-l", f.lists, "--fusion", "--tta", "flip", "--det")
	require.NoError(t, err)
	assert.NotContains(t, out, "submission:")
	files, err := os.ReadDir(filepath.Join("result", "test", "fusion_flip"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.True(t, strings.HasSuffix(files[0].Name(), "_labelMark_detections.npy"), files[0].Name())
}

func readPNGFile(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img
}

func mkdirFor(t *testing.T, path string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	return path
}

func TestEvalAndTestErrors(t *testing.T) {
	f := newEvalFixture(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pth.tar")
	base := []string{"-d", f.data, "-l", f.lists, "--out", filepath.Join(dir, "out")}
	tests := []struct {
		args []string
		want string
	}{
		{nil, "choose a network with --seg-name and --seg-path, or --fusion"},
		{[]string{"--seg-name", "unet"}, "--seg-name needs --seg-path"},
		{[]string{"--seg-path", f.unet}, "--seg-path needs --seg-name (one of unet, unet_nested, unet_nested_dilated, resnet18)"},
		{[]string{"--seg-name", "unet", "--seg-path", missing}, "checkpoint " + missing + " does not exist"},
		{[]string{"--seg-name", "unet_nested", "--seg-path", f.unet}, f.unet + " holds the weights of unet, not of unet_nested"},
		{[]string{"--seg-name", "resnet", "--seg-path", f.unet}, `unknown network "resnet"`},
		{[]string{"--fusion", "--seg-name", "unet", "--seg-path", f.unet}, "--fusion excludes --seg-name and --seg-path"},
		{[]string{"--fusion-model", "unet=" + f.unet + ":1"}, "--fusion-model needs --fusion"},
		{[]string{"--fusion", "--fusion-model", "unet:" + f.unet}, `--fusion-model: fusion model "unet:` + f.unet + `": want NAME=PATH:WEIGHT`},
		{[]string{"--fusion", "--fusion-model", "unet=" + f.unet + ":x"}, `weight "x" is not a number`},
		{[]string{"--fusion", "--fusion-model", "unet=" + f.unet + ":0.5", "--fusion-model", "unet_nested=" + f.nested + ":0.4"}, "fusion weights unet:0.5, unet_nested:0.4 sum to 0.9, not 1"},
		{[]string{"--fusion", "--fusion-model", "unet=" + f.unet + ":0.5", "--fusion-model", "unet_nested=" + missing + ":0.5"}, "checkpoint " + missing + " does not exist"},
		{[]string{"--seg-name", "unet", "--seg-path", f.unet, "--tta", "rotate"}, `--tta: unknown test-time augmentation "rotate" (want none or flip)`},
		{[]string{"--seg-name", "unet", "--seg-path", f.unet, "--device", "tpu"}, "--device"},
		{[]string{"--seg-name", "unet", "--seg-path", f.unet, "--batch-size", "0"}, "--batch-size must be at least 1, got 0"},
		{[]string{"--seg-name", "unet", "--seg-path", f.unet, "--in-flight", "0"}, "--in-flight must be at least 1, got 0"},
		{[]string{"--seg-name", "unet", "--seg-path", f.unet, "--amp", "fp16"}, "--amp: precision fp16 runs on CUDA only, not on the cpu; use bf16 there"},
		{[]string{"--seg-name", "unet", "--seg-path", f.unet, "--amp", "fp8"}, `--amp: precision "fp8": want bf16, fp16 or fp32`},
	}
	for _, cmd := range []struct {
		name string
		new  func() *cli.Command
	}{{"eval", evalCommand}, {"test", testCommand}} {
		for _, tc := range tests {
			_, err := runCommand(t, cmd.new(), append(append([]string{}, base...), tc.args...)...)
			require.Error(t, err, "%s %v", cmd.name, tc.args)
			assert.True(t, strings.HasPrefix(err.Error(), cmd.name+": "), err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n")
		}
	}
	assert.NoDirExists(t, filepath.Join(dir, "out"), "nothing is written on an error")

	// A missing data folder is found before --out is made.
	for _, cmd := range []func() *cli.Command{evalCommand, testCommand} {
		_, err := runCommand(t, cmd(), "-d", filepath.Join(dir, "nodata"), "-l", f.lists, "--out", filepath.Join(dir, "out"), "--seg-name", "unet", "--seg-path", f.unet)
		assert.ErrorContains(t, err, "--data-dir: stat "+filepath.Join(dir, "nodata"))
	}
	assert.NoDirExists(t, filepath.Join(dir, "out"))

	// A folder that another run holds is refused at once.
	held, err := outdir.Acquire(filepath.Join(dir, "held"))
	require.NoError(t, err)
	for _, cmd := range []func() *cli.Command{evalCommand, testCommand} {
		_, err := runCommand(t, cmd(), "-d", f.data, "-l", f.lists, "--out", filepath.Join(dir, "held"), "--seg-name", "unet", "--seg-path", f.unet)
		assert.ErrorContains(t, err, "--out: output folder "+filepath.Join(dir, "held")+" is in use by another run (process ")
	}
	held.Release()

	_, err = runCommand(t, evalCommand(), "-d", f.data, "-l", dir, "--seg-name", "unet", "--seg-path", f.unet)
	assert.ErrorContains(t, err, "eval: open "+filepath.Join(dir, oct.ValImagesList))
	_, err = runCommand(t, testCommand(), "-d", dir, "-l", f.lists, "--seg-name", "unet", "--seg-path", f.unet, "--out", filepath.Join(dir, "t"))
	assert.ErrorContains(t, err, "test: ")
}

// runCommandSplit runs one command with stdout and stderr apart.
func runCommandSplit(t *testing.T, cmd *cli.Command, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{Name: "edema", Commands: []*cli.Command{cmd}, Writer: &out, ErrWriter: &errOut, ExitErrHandler: func(*cli.Context, error) {}}
	err = app.Run(append([]string{"edema", cmd.Name}, args...))
	return out.String(), errOut.String(), err
}

// TestEvalJSON: with --json, stdout holds the official figures as JSON and
// nothing else; the progress goes to stderr.
// TestEvalInMixedPrecisionChannelsLast evaluates one network in float32
// and in bfloat16 mixed precision with channels-last weights: the same
// cubes, Dice within bfloat16's rounding of the float32 figures.
func TestEvalInMixedPrecisionChannelsLast(t *testing.T) {
	f := newEvalFixture(t)
	dice := func(extra ...string) map[string]*float64 {
		args := append([]string{"-d", f.data, "-l", f.lists, "--out", t.TempDir(), "-j", "2", "--seg-name", "unet", "--seg-path", f.unet, "--json"}, extra...)
		out, status, err := runCommandSplit(t, evalCommand(), args...)
		require.NoError(t, err, status)
		var got struct {
			Segmentation map[string]*float64 `json:"segmentation_dice"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &got), "stdout:\n%s", out)
		return got.Segmentation
	}
	want, got := dice(), dice("--amp", "bf16", "--channels-last")
	require.NotEmpty(t, want)
	for class, w := range want {
		require.NotNil(t, got[class], class)
		if w == nil {
			continue
		}
		assert.InDelta(t, *w, *got[class], 0.02, class)
	}
}

func TestEvalJSON(t *testing.T) {
	f := newEvalFixture(t)
	out, status, err := runCommandSplit(t, evalCommand(), "-d", f.data, "-l", f.lists, "--out", t.TempDir(), "-j", "2",
		"--seg-name", "unet", "--seg-path", f.unet, "--json")
	require.NoError(t, err, status)
	var got struct {
		Score        *float64            `json:"score"`
		Segmentation map[string]*float64 `json:"segmentation_dice"`
		Cubes        []struct{ Name string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), "stdout:\n%s", out)
	require.NotNil(t, got.Score)
	assert.Len(t, got.Cubes, 3)
	assert.Contains(t, got.Segmentation, "SRF")
	assert.Contains(t, status, "evaluating unet on 3 validation cubes")
	assert.Contains(t, status, "cube 3/3 ")
	assert.Contains(t, status, "wrote ")
}
