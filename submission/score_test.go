package submission

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/metrics"
	"github.com/edema/edema/oct"
)

// writeNPY writes value (nested slices give the shape) with npyio.
func writeNPY(t *testing.T, path string, value any) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, npyio.Write(&buf, value))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// volume3 shapes flat labels as nested slices of slices×height×width.
func volume3[T any](flat []T, slices, height, width int) [][][]T {
	v := make([][][]T, slices)
	for s := range v {
		v[s] = make([][]T, height)
		for h := range v[s] {
			off := (s*height + h) * width
			v[s][h] = flat[off : off+width]
		}
	}
	return v
}

func rows3[T any](flat []T) [][3]T {
	r := make([][3]T, len(flat)/3)
	for i := range r {
		copy(r[i][:], flat[3*i:])
	}
	return r
}

// Two cubes of two 1×3 slices, the example scored by hand in package
// metrics' tests.
var handMade = []struct {
	name        string
	truth, pred []uint8
	targets     []int64
	detections  []float32
}{{
	name:       "P0001_cube_z",
	truth:      []uint8{1, 1, 0, 2, 0, 0},
	pred:       []uint8{1, 0, 0, 2, 2, 3},
	targets:    []int64{1, 0, 0, 0, 1, 0},
	detections: []float32{0.9, 0.2, 0.1, 0.3, 0.8, 0.4},
}, {
	name:       "P0002_cube_z",
	truth:      []uint8{3, 3, 0, 1, 0, 0},
	pred:       []uint8{3, 0, 0, 0, 0, 0},
	targets:    []int64{0, 0, 1, 1, 0, 0},
	detections: []float32{0.6, 0.1, 0.7, 0.4, 0.1, 0.2},
}}

// writeHandMade writes the hand-made reference (int64 detections) and a
// submission folder of it, and returns their paths.
func writeHandMade(t *testing.T) (ref, sub string) {
	dir := t.TempDir()
	ref, sub = filepath.Join(dir, "groundtruth"), filepath.Join(dir, "submit")
	require.NoError(t, os.Mkdir(ref, 0o755))
	require.NoError(t, os.Mkdir(sub, 0o755))
	for _, c := range handMade {
		writeNPY(t, filepath.Join(ref, c.name+"_volumes.npy"), volume3(c.truth, 2, 1, 3))
		writeNPY(t, filepath.Join(ref, c.name+"_detections.npy"), rows3(c.targets))
		require.NoError(t, WriteCube(sub, Cube{Name: c.name, Slices: 2, Height: 1, Width: 3, Labels: c.pred, Detections: c.detections}))
	}
	return ref, sub
}

func TestScoreHandMade(t *testing.T) {
	ref, sub := writeHandMade(t)
	_, err := Zip(sub, []string{handMade[0].name, handMade[1].name})
	require.NoError(t, err)

	for _, submitted := range []string{sub, filepath.Join(sub, ZipName)} {
		r, err := Score(submitted, ref, nil)
		require.NoError(t, err)
		require.Len(t, r.Cubes, 2)
		assert.Equal(t, handMade[0].name, r.Cubes[0].Name)
		// REA's AUC is 0.5 in the first cube and undefined in the second,
		// 0.75 over the four slices pooled: the score uses the pooled one.
		assertFigures(t, []float64{0.75, 1, 1}, r.Detection[:], "detection")
		assertFigures(t, []float64{0.5, 1, 1}, r.CubeAUC[:], "AUC per cube")
		assertFigures(t, []float64{1.0 / 3, 2.0 / 3, 2.0 / 3}, r.Segmentation[:], "segmentation")
		assert.InDelta(t, 2.75/3, r.AvgDetection, 1e-12)
		assert.InDelta(t, 5.0/9, r.AvgSegmentation, 1e-12)
		assert.InDelta(t, 13.25/18, r.Score, 1e-12)
		assert.Empty(t, r.Undefined)
	}
}

// TestScoreOneTask: a submission of detections alone (a detector's) is
// scored on detection, its segmentation absent, and one of volumes alone
// on segmentation; with neither, there is nothing to score.
func TestScoreOneTask(t *testing.T) {
	for _, tc := range []struct {
		remove func(string) string
		absent oct.Tasks
	}{{VolumesFile, oct.Segmentation}, {DetectionsFile, oct.Detection}} {
		ref, sub := writeHandMade(t)
		for _, c := range handMade {
			require.NoError(t, os.Remove(filepath.Join(sub, tc.remove(c.name))))
		}
		r, err := Score(sub, ref, nil)
		require.NoError(t, err)
		nan := math.NaN()
		if tc.absent == oct.Segmentation {
			assertFigures(t, []float64{0.75, 1, 1}, r.Detection[:], "detection")
			assertFigures(t, []float64{nan, nan, nan}, r.Segmentation[:], "segmentation")
		} else {
			assertFigures(t, []float64{nan, nan, nan}, r.Detection[:], "detection")
			assertFigures(t, []float64{1.0 / 3, 2.0 / 3, 2.0 / 3}, r.Segmentation[:], "segmentation")
		}
		assert.True(t, math.IsNaN(r.Score))
		assert.Equal(t, []string{tc.absent.String() + " is absent: the network does not do it, and there is no score"}, r.Undefined)
	}
	ref, sub := writeHandMade(t)
	for _, c := range handMade {
		require.NoError(t, os.Remove(filepath.Join(sub, VolumesFile(c.name))))
		require.NoError(t, os.Remove(filepath.Join(sub, DetectionsFile(c.name))))
	}
	_, err := Score(sub, ref, nil)
	assert.ErrorContains(t, err, "holds no file of any reference cube")
}

// The organisers' scorer descends into a submission holding one folder,
// and matches reference names that contain _labelMark with submitted names
// with or without it.
func TestScoreFindsFilesAsTheOrganisersScorer(t *testing.T) {
	ref, sub := writeHandMade(t)
	var progress []int
	want, err := Score(sub, ref, func(what string, done, total int) {
		assert.Equal(t, "cubes", what)
		progress = append(progress, done, total)
	})
	require.NoError(t, err)
	assert.Equal(t, []int{1, len(want.Cubes), 2, len(want.Cubes)}, progress[:4], "a report after each cube")
	assert.Len(t, progress, 2*len(want.Cubes))

	tests := []struct {
		name   string
		modify func(t *testing.T, ref, sub string) string
	}{{
		name: "zip holding one folder",
		modify: func(t *testing.T, ref, sub string) string {
			path := filepath.Join(t.TempDir(), "nested.zip")
			f, err := os.Create(path)
			require.NoError(t, err)
			z := zip.NewWriter(f)
			entries, err := os.ReadDir(sub)
			require.NoError(t, err)
			for _, e := range entries {
				w, err := z.Create("submit/" + e.Name())
				require.NoError(t, err)
				data, err := os.ReadFile(filepath.Join(sub, e.Name()))
				require.NoError(t, err)
				_, err = w.Write(data)
				require.NoError(t, err)
			}
			require.NoError(t, z.Close())
			require.NoError(t, f.Close())
			return path
		},
	}, {
		name: "folder holding one folder",
		modify: func(t *testing.T, ref, sub string) string {
			outer := t.TempDir()
			require.NoError(t, os.Rename(sub, filepath.Join(outer, "submit")))
			return outer
		},
	}, {
		name: "reference names with _labelMark, submitted without",
		modify: func(t *testing.T, ref, sub string) string {
			renameCubeFiles(t, ref, "", "_labelMark")
			renameCubeFiles(t, sub, "_labelMark", "")
			return sub
		},
	}, {
		name: "reference and submitted names with _labelMark",
		modify: func(t *testing.T, ref, sub string) string {
			renameCubeFiles(t, ref, "", "_labelMark")
			return sub
		},
	}, {
		name: "reference and submitted names without _labelMark",
		modify: func(t *testing.T, ref, sub string) string {
			renameCubeFiles(t, sub, "_labelMark", "")
			return sub
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, sub := writeHandMade(t)
			r, err := Score(tt.modify(t, ref, sub), ref, nil)
			require.NoError(t, err)
			assertFigures(t, want.Detection[:], r.Detection[:], "detection")
			assertFigures(t, want.Segmentation[:], r.Segmentation[:], "segmentation")
			assert.InDelta(t, want.Score, r.Score, 1e-12)
		})
	}
}

// renameCubeFiles renames the hand-made cubes' files in dir from
// <CUBE><from>_volumes.npy (and _detections.npy) to <CUBE><to>_….
func renameCubeFiles(t *testing.T, dir, from, to string) {
	t.Helper()
	for _, c := range handMade {
		for _, suffix := range []string{"_volumes.npy", "_detections.npy"} {
			require.NoError(t, os.Rename(filepath.Join(dir, c.name+from+suffix), filepath.Join(dir, c.name+to+suffix)))
		}
	}
}

// Where the organisers' scorer would crash, the figure is undefined, the
// result says why, and the averages take the defined figures.
func TestScoreUndefinedFigures(t *testing.T) {
	dir := t.TempDir()
	ref, sub := filepath.Join(dir, "groundtruth"), filepath.Join(dir, "submit")
	require.NoError(t, os.Mkdir(ref, 0o755))
	require.NoError(t, os.Mkdir(sub, 0o755))
	// No PED anywhere; REA in every slice; SRF in one of the four.
	cubes := []struct {
		name       string
		truth      []uint8
		targets    []int64
		detections []float32
	}{
		{"A", []uint8{1, 2, 0, 1, 0, 0}, []int64{1, 1, 0, 1, 0, 0}, []float32{0.9, 0.8, 0.1, 0.6, 0.2, 0.3}},
		{"B", []uint8{1, 1, 0, 1, 0, 0}, []int64{1, 0, 0, 1, 0, 0}, []float32{0.9, 0.1, 0.1, 0.6, 0.2, 0.3}},
	}
	for _, c := range cubes {
		writeNPY(t, filepath.Join(ref, c.name+"_volumes.npy"), volume3(c.truth, 2, 1, 3))
		writeNPY(t, filepath.Join(ref, c.name+"_detections.npy"), rows3(c.targets))
		require.NoError(t, WriteCube(sub, Cube{Name: c.name, Slices: 2, Height: 1, Width: 3, Labels: c.truth, Detections: c.detections}))
	}
	r, err := Score(sub, ref, nil)
	require.NoError(t, err)
	assertFigures(t, []float64{math.NaN(), 1, math.NaN()}, r.Detection[:], "detection")
	assertFigures(t, []float64{1, 1, math.NaN()}, r.Segmentation[:], "segmentation")
	assert.InDelta(t, 1, r.AvgDetection, 1e-12)
	assert.InDelta(t, 1, r.Score, 1e-12)
	assert.Equal(t, []string{
		"detection AUC of REA is undefined: all 4 slices of the reference cubes contain REA",
		"detection AUC of PED is undefined: no slice of any reference cube contains PED",
		"segmentation Dice of PED is undefined: no reference cube contains PED",
	}, r.Undefined)

	var buf bytes.Buffer
	require.NoError(t, r.WriteTable(&buf))
	assert.Contains(t, buf.String(), "note: detection AUC of PED is undefined: no slice of any reference cube contains PED\n")
}

func TestWriteTable(t *testing.T) {
	r := Result{
		Detection:       metrics.PerLesion{0.5, 1, math.NaN()},
		CubeAUC:         metrics.PerLesion{0.25, 1, math.NaN()},
		Segmentation:    metrics.PerLesion{1.0 / 3, 2.0 / 3, 0.25},
		AvgDetection:    0.75,
		AvgSegmentation: 0.4166666,
		Score:           0.5833333,
		Cubes:           []metrics.CubeScores{{Name: "P0001", Dice: metrics.PerLesion{1, math.NaN(), 0}, AUC: metrics.PerLesion{0.5, 0.25, 1}}},
	}
	var buf bytes.Buffer
	require.NoError(t, r.WriteTable(&buf))
	assert.Equal(t, strings.Join([]string{
		"class     detection AUC   segmentation Dice   (AUC per cube, not scored)",
		"REA       0.5000          0.3333              0.2500",
		"SRF       1.0000          0.6667              1.0000",
		"PED       n/a             0.2500              n/a",
		"average   0.7500          0.4167              0.6250",
		"score     0.5833",
		"",
	}, "\n"), trimLines(buf.String()))

	buf.Reset()
	require.NoError(t, r.WriteCubeTable(&buf))
	assert.Equal(t, strings.Join([]string{
		"cube    AUC REA   AUC SRF   AUC PED   Dice REA   Dice SRF   Dice PED",
		"P0001   0.5000    0.2500    1.0000    1.0000     n/a        0.0000",
		"",
	}, "\n"), trimLines(buf.String()))
}

func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// assertFigures compares figures, a nil or NaN want matching NaN only.
func assertFigures(t *testing.T, want, got []float64, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		if math.IsNaN(want[i]) {
			assert.True(t, math.IsNaN(got[i]), "%s %d: want NaN, got %v", what, i, got[i])
			continue
		}
		assert.InDelta(t, want[i], got[i], 1e-12, "%s %d", what, i)
	}
}

// numpyOfficialScore writes a reference and a submission in the many forms
// NumPy can save them and computes their official score with NumPy and
// scikit-learn, independently of the Go code, as the organisers' scorer
// does: the detections of all cubes concatenated, one roc_curve + auc per
// class. Each cube's probabilities are calibrated differently, so that the
// pooled AUC and the mean of the per-cube AUCs differ.
const numpyOfficialScore = `
import json, os, sys, zipfile
import numpy as np
from sklearn.metrics import auc as area, roc_auc_score, roc_curve

ref, sub, zipped = sys.argv[1:4]
os.makedirs(ref)
os.makedirs(sub)
rng = np.random.default_rng(2018)
S, H, W = 12, 16, 8
cubes = ["P%04d_MacularCube512x128_1-1-2014_OD_sn%d_cube_z" % (i + 1, 1000 + i) for i in range(4)]

def lesions(cube_index):
    truth = np.zeros((S, H, W), dtype=np.uint8)
    for s in range(S):
        for c in (1, 2, 3):
            present = rng.random() < 0.5
            if cube_index == 1 and c == 3:
                present = False          # class 3 absent from this cube
            if cube_index == 2 and c == 1:
                present = True           # class 1 in every slice: no AUC
            if present:
                h0, w0 = rng.integers(0, H - 4), rng.integers(0, W - 3)
                truth[s, h0:h0 + 4, w0:w0 + 3] = c
    return truth

expected_cubes = {}
all_targets, all_probs = [], []
for i, cube in enumerate(cubes):
    truth = lesions(i)
    targets = np.stack([(truth == c).any(axis=(1, 2)) for c in (1, 2, 3)], axis=1)
    pred = truth.copy()
    noise = rng.random(pred.shape) < 0.15
    pred[noise] = rng.integers(0, 4, size=noise.sum())
    probs = np.round((0.5 * targets + 0.6 * rng.random(targets.shape)) * [0.3, 0.7, 1.0, 0.5][i] + [0.6, 0.0, 0.1, 0.3][i], 1)

    # Reference: several dtypes, byte orders and memory orders.
    vol_ref = [truth, truth.astype(np.int64), np.asfortranarray(truth.astype(np.int32)), truth.astype(">i8")][i]
    det_ref = [targets.astype(np.uint8), targets.astype(np.int64), np.asfortranarray(targets.astype(np.float64)), targets][i]
    np.save(os.path.join(ref, cube + "_volumes.npy"), vol_ref)
    np.save(os.path.join(ref, cube + "_detections.npy"), det_ref)

    # Submission: with and without _labelMark, float32 and float64.
    mark = "" if i == 1 else "_labelMark"
    vol_sub = np.asfortranarray(pred) if i == 3 else pred
    det_sub = probs.astype(np.float32)
    if i == 2:
        # float64 probabilities whose ties float32 could not break.
        det_sub = probs + 1e-12 * rng.integers(0, 2, size=probs.shape)
    np.save(os.path.join(sub, cube + mark + "_volumes.npy"), vol_sub)
    np.save(os.path.join(sub, cube + mark + "_detections.npy"), det_sub)

    dice, auc = [], []
    for c in (1, 2, 3):
        g, p = truth == c, pred == c
        dice.append(2 * (g & p).sum() / (g.sum() + p.sum()) if g.any() else float("nan"))
        t = targets[:, c - 1]
        auc.append(roc_auc_score(t, det_sub[:, c - 1]) if 0 < t.sum() < S else float("nan"))
    expected_cubes[cube] = {"dice": dice, "auc": auc}
    all_targets.append(targets)
    all_probs.append(np.asarray(det_sub, dtype=np.float64))

with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir(sub)):
        z.write(os.path.join(sub, name), arcname=name)

dice = np.array([expected_cubes[c]["dice"] for c in cubes])
auc = np.array([expected_cubes[c]["auc"] for c in cubes])
cube_auc = np.nanmean(auc, axis=0)
pooled_targets, pooled_probs = np.concatenate(all_targets), np.concatenate(all_probs)
detection = []
for c in range(3):
    fpr, tpr, _ = roc_curve(pooled_targets[:, c], pooled_probs[:, c], pos_label=1)
    detection.append(area(fpr, tpr))
detection = np.array(detection)
assert np.abs(detection - cube_auc).max() > 0.01, (detection, cube_auc)
segmentation = np.nanmean(dice, axis=0)
avg_detection, avg_segmentation = detection.mean(), segmentation.mean()

def clean(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return [clean(x) for x in v]
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    v = float(v)
    return None if np.isnan(v) else v

json.dump(clean({
    "cubes": expected_cubes,
    "detection": detection, "cube_auc": cube_auc, "segmentation": segmentation,
    "avg_detection": avg_detection, "avg_segmentation": avg_segmentation,
    "score": (avg_detection + avg_segmentation) / 2,
}), sys.stdout)
`

type officialScore struct {
	Cubes map[string]struct {
		Dice []*float64 `json:"dice"`
		AUC  []*float64 `json:"auc"`
	} `json:"cubes"`
	Detection       []float64 `json:"detection"`
	CubeAUC         []float64 `json:"cube_auc"`
	Segmentation    []float64 `json:"segmentation"`
	AvgDetection    float64   `json:"avg_detection"`
	AvgSegmentation float64   `json:"avg_segmentation"`
	Score           float64   `json:"score"`
}

func orNaN(values []*float64) []float64 {
	out := make([]float64, len(values))
	for i, v := range values {
		out[i] = math.NaN()
		if v != nil {
			out[i] = *v
		}
	}
	return out
}

func TestScoreMatchesNumPy(t *testing.T) {
	dir := t.TempDir()
	ref, sub, zipped := filepath.Join(dir, "groundtruth"), filepath.Join(dir, "submit"), filepath.Join(dir, "submit.zip")
	var want officialScore
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, dir, numpyOfficialScore, ref, sub, zipped)), &want))
	require.Len(t, want.Cubes, 4)

	for _, submitted := range []string{sub, zipped} {
		t.Run(filepath.Base(submitted), func(t *testing.T) {
			r, err := Score(submitted, ref, nil)
			require.NoError(t, err)
			require.Len(t, r.Cubes, len(want.Cubes))
			for _, cube := range r.Cubes {
				w, ok := want.Cubes[cube.Name]
				require.True(t, ok, cube.Name)
				assertFigures(t, orNaN(w.Dice), cube.Dice[:], cube.Name+" Dice")
				assertFigures(t, orNaN(w.AUC), cube.AUC[:], cube.Name+" AUC")
			}
			assertFigures(t, want.Detection, r.Detection[:], "detection")
			assertFigures(t, want.CubeAUC, r.CubeAUC[:], "AUC per cube")
			assertFigures(t, want.Segmentation, r.Segmentation[:], "segmentation")
			assert.InDelta(t, want.AvgDetection, r.AvgDetection, 1e-12)
			assert.InDelta(t, want.AvgSegmentation, r.AvgSegmentation, 1e-12)
			assert.InDelta(t, want.Score, r.Score, 1e-12)
		})
	}
	// The example must exercise undefined figures.
	assert.Nil(t, want.Cubes["P0002_MacularCube512x128_1-1-2014_OD_sn1001_cube_z"].Dice[2])
	assert.Nil(t, want.Cubes["P0003_MacularCube512x128_1-1-2014_OD_sn1002_cube_z"].AUC[0])
}

func TestScoreMalformed(t *testing.T) {
	first, second := handMade[0].name, handMade[1].name
	tests := []struct {
		name   string
		modify func(t *testing.T, ref, sub string)
		want   []string
	}{{
		name: "missing cube",
		modify: func(t *testing.T, ref, sub string) {
			require.NoError(t, os.Remove(filepath.Join(sub, VolumesFile(second))))
		},
		want: []string{"lacks " + second + "_volumes.npy (or " + second + "_labelMark_volumes.npy)"},
	}, {
		name: "missing detections",
		modify: func(t *testing.T, ref, sub string) {
			require.NoError(t, os.Remove(filepath.Join(sub, DetectionsFile(first))))
		},
		want: []string{"lacks " + first + "_detections.npy (or " + first + "_labelMark_detections.npy)"},
	}, {
		name: "volume shape",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(sub, VolumesFile(first)), volume3(make([]uint8, 8), 2, 1, 4))
		},
		want: []string{first + "_labelMark_volumes.npy: shape (2, 1, 4), want (2, 1, 3)"},
	}, {
		name: "volume dtype",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(sub, VolumesFile(first)), volume3(make([]int64, 6), 2, 1, 3))
		},
		want: []string{first + "_labelMark_volumes.npy: dtype int64, want uint8"},
	}, {
		name: "volume label",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(sub, VolumesFile(first)), volume3([]uint8{0, 0, 5, 0, 0, 0}, 2, 1, 3))
		},
		want: []string{first + "_labelMark_volumes.npy: element 2 is 5, not a label 0..3"},
	}, {
		name: "detections shape",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(sub, DetectionsFile(second)), [][4]float32{{0, 0, 0, 0}, {1, 1, 1, 1}})
		},
		want: []string{second + "_labelMark_detections.npy: shape (2, 4), want (2, 3)"},
	}, {
		name: "detections dtype",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(sub, DetectionsFile(second)), [][3]int32{{0, 0, 0}, {1, 1, 1}})
		},
		want: []string{second + "_labelMark_detections.npy: dtype int32, want float32 or float64"},
	}, {
		name: "detections NaN",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(sub, DetectionsFile(second)), [][3]float64{{0, 0, 0}, {1, math.NaN(), 1}})
		},
		want: []string{second + "_labelMark_detections.npy: element 4 is NaN"},
	}, {
		name: "not a .npy file",
		modify: func(t *testing.T, ref, sub string) {
			require.NoError(t, os.WriteFile(filepath.Join(sub, VolumesFile(second)), []byte("P0002 labels"), 0o644))
		},
		want: []string{second + "_labelMark_volumes.npy: not a valid .npy file"},
	}, {
		name: "truncated",
		modify: func(t *testing.T, ref, sub string) {
			path := filepath.Join(sub, VolumesFile(second))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, data[:len(data)-2], 0o644))
		},
		want: []string{second + "_labelMark_volumes.npy: 4 bytes of data are too few for uint8 data of shape (2, 1, 3)"},
	}, {
		name: "corrupt header",
		modify: func(t *testing.T, ref, sub string) {
			path := filepath.Join(sub, DetectionsFile(second))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			// Cut the header's end of line: npyio finds no newline in it.
			data = bytes.ReplaceAll(data, []byte("\n"), []byte(" "))
			require.NoError(t, os.WriteFile(path, data, 0o644))
		},
		want: []string{second + "_labelMark_detections.npy: not a valid .npy file"},
	}, {
		name: "reference detections missing",
		modify: func(t *testing.T, ref, sub string) {
			require.NoError(t, os.Remove(filepath.Join(ref, first+"_detections.npy")))
		},
		want: []string{first + "_detections.npy"},
	}, {
		name: "reference detections not 0 or 1",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(ref, first+"_detections.npy"), [][3]int64{{0, 2, 0}, {1, 1, 1}})
		},
		want: []string{first + "_detections.npy: element 1 is 2, want 0 or 1"},
	}, {
		name: "reference volume float",
		modify: func(t *testing.T, ref, sub string) {
			writeNPY(t, filepath.Join(ref, first+"_volumes.npy"), volume3(make([]float32, 6), 2, 1, 3))
		},
		want: []string{first + "_volumes.npy: dtype float32, want integer labels"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, sub := writeHandMade(t)
			tt.modify(t, ref, sub)
			_, err := Score(sub, ref, nil)
			require.Error(t, err)
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestScoreBadPaths(t *testing.T) {
	ref, sub := writeHandMade(t)
	_, err := Score(filepath.Join(sub, "missing.zip"), ref, nil)
	assert.ErrorContains(t, err, "missing.zip")

	notZip := filepath.Join(t.TempDir(), "submission.zip")
	require.NoError(t, os.WriteFile(notZip, []byte("not a zip"), 0o644))
	_, err = Score(notZip, ref, nil)
	assert.ErrorContains(t, err, "neither a folder nor a readable .zip file")

	_, err = Score(sub, t.TempDir(), nil)
	assert.ErrorContains(t, err, "holds no *_volumes.npy file")
}

// TestScoreCorruptZipEntry flips a byte of a stored (uncompressed) entry:
// the entry's checksum no longer matches.
func TestScoreCorruptZipEntry(t *testing.T) {
	ref, sub := writeHandMade(t)
	zipped := filepath.Join(t.TempDir(), "submission.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, c := range handMade {
		for _, name := range []string{VolumesFile(c.name), DetectionsFile(c.name)} {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
			require.NoError(t, err)
			data, err := os.ReadFile(filepath.Join(sub, name))
			require.NoError(t, err)
			_, err = w.Write(data)
			require.NoError(t, err)
		}
	}
	require.NoError(t, zw.Close())
	data := buf.Bytes()

	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	var target *zip.File
	for _, f := range zr.File {
		if f.Name == VolumesFile(handMade[1].name) {
			target = f
		}
	}
	require.NotNil(t, target)
	offset, err := target.DataOffset()
	require.NoError(t, err)
	// The last byte of the entry is a label: 0 becomes 1, still valid.
	data[offset+int64(target.UncompressedSize64)-1] ^= 1
	require.NoError(t, os.WriteFile(zipped, data, 0o644))

	_, err = Score(zipped, ref, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), VolumesFile(handMade[1].name))
	assert.ErrorIs(t, err, zip.ErrChecksum)

	// The same archive uncorrupted scores.
	data[offset+int64(target.UncompressedSize64)-1] ^= 1
	require.NoError(t, os.WriteFile(zipped, data, 0o644))
	_, err = Score(zipped, ref, nil)
	assert.NoError(t, err)
}
