package picture

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/metrics"

	"github.com/edema/edema/oct"
)

func TestSlice(t *testing.T) {
	const h, w = 2, 3
	grey := []uint8{100, 0, 255, 50, 50, 50}
	pred := []uint8{1, 0, 2, 3, 0, 0}
	truth := []uint8{0, 0, 0, 0, 1, 2}

	img, err := Slice(grey, pred, truth, h, w)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 3*w, h), img.Bounds())
	rgb := func(x, y int) color.RGBA { return img.RGBAAt(x, y) }

	// Left panel: the grey slice.
	assert.Equal(t, color.RGBA{100, 100, 100, 255}, rgb(0, 0))
	assert.Equal(t, color.RGBA{255, 255, 255, 255}, rgb(2, 0))
	// Middle panel: the prediction, half blended over the grey level:
	// (100·127 + 255·128 + 127) / 255 = 178, 100·127 / 255 rounds to 50.
	assert.Equal(t, color.RGBA{50, 50, 178, 255}, rgb(w+0, 0), "REA is blue")
	assert.Equal(t, color.RGBA{0, 0, 0, 255}, rgb(w+1, 0), "background stays grey")
	assert.Equal(t, color.RGBA{127, 255, 127, 255}, rgb(w+2, 0), "SRF is green")
	assert.Equal(t, color.RGBA{153, 25, 25, 255}, rgb(w+0, 1), "PED is red")
	// Right panel: the ground truth.
	assert.Equal(t, color.RGBA{100, 100, 100, 255}, rgb(2*w+0, 0))
	assert.Equal(t, color.RGBA{25, 25, 153, 255}, rgb(2*w+1, 1))
	assert.Equal(t, color.RGBA{25, 153, 25, 255}, rgb(2*w+2, 1))

	// Without ground truth (the test set), two panels.
	img, err = Slice(grey, pred, nil, h, w)
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, 2*w, h), img.Bounds())
	assert.Equal(t, color.RGBA{153, 25, 25, 255}, img.RGBAAt(w, 1))
}

func TestSliceBadInput(t *testing.T) {
	grey := make([]uint8, 6)
	tests := []struct {
		name              string
		grey, pred, truth []uint8
		h, w              int
		want              string
	}{
		{"size", grey, grey, nil, 0, 6, "invalid slice size 0×6"},
		{"grey", grey[:5], grey, nil, 2, 3, "grey slice has 5 pixels, want 2×3"},
		{"prediction", grey, grey[:4], nil, 2, 3, "prediction has 4 pixels"},
		{"truth", grey, grey, grey[:1], 2, 3, "ground truth has 1 pixels"},
		{"label", grey, []uint8{0, 0, 0, 0, 0, 4}, nil, 2, 3, "prediction pixel 5 has label 4"},
		{"truth label", grey, grey, []uint8{255, 0, 0, 0, 0, 0}, 2, 3, "ground truth pixel 0 has label 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Slice(tt.grey, tt.pred, tt.truth, tt.h, tt.w)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img
}

// countColor counts the pixels of img equal to c.
func countColor(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == c {
				n++
			}
		}
	}
	return n
}

func TestWritePNG(t *testing.T) {
	img, err := Slice([]uint8{10, 20}, []uint8{0, 3}, []uint8{1, 0}, 1, 2)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "slice.png")
	require.NoError(t, WritePNG(path, img))
	back := readPNG(t, path)
	assert.Equal(t, img.Bounds(), back.Bounds())
	for x := range 6 {
		assert.Equal(t, img.RGBAAt(x, 0), color.RGBAModel.Convert(back.At(x, 0)))
	}

	assert.Error(t, WritePNG(filepath.Join(t.TempDir(), "missing", "slice.png"), img))
}

func TestWriteROC(t *testing.T) {
	scores := []float64{0.1, 0.4, 0.35, 0.8, 0.6, 0.2, 0.9, 0.5}
	positive := []bool{false, false, true, true, true, false, true, false}
	rea, err := metrics.ROC(scores, positive)
	require.NoError(t, err)
	srf, err := metrics.ROC(scores, []bool{true, false, false, true, false, true, false, true})
	require.NoError(t, err)
	var ped metrics.ROCCurve // undefined: listed as n/a

	path := filepath.Join(t.TempDir(), "roc.png")
	require.NoError(t, WriteROC(path, "validation detection ROC", [3]metrics.ROCCurve{rea, srf, ped}))
	img := readPNG(t, path)
	assert.Equal(t, image.Rect(0, 0, 576, 576), img.Bounds(), "6 inches at 96 dpi")
	assert.Greater(t, countColor(img, oct.LesionColors[0]), 200, "REA curve drawn in blue")
	assert.Greater(t, countColor(img, oct.LesionColors[1]), 200, "SRF curve drawn in green")
	// PED has only its legend entry.
	assert.Less(t, countColor(img, oct.LesionColors[2]), 100)
}

func TestWriteTrainingCurves(t *testing.T) {
	var log []Epoch
	for e := 1; e <= 20; e++ {
		x := float64(e)
		row := Epoch{Epoch: e, Values: map[string]float64{
			"train loss": 2 * math.Exp(-x/5),
			"val loss":   2.2*math.Exp(-x/6) + 0.05,
			"train Dice": 1 - math.Exp(-x/4),
			"val Dice":   0.9 - 0.8*math.Exp(-x/5),
			"AUC":        0.99 - 0.4*math.Exp(-x/3),
		}}
		if e == 7 {
			row.Values["AUC"] = math.NaN() // a gap in the curve
		}
		log = append(log, row)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "curves.png")
	require.NoError(t, WriteTrainingCurves(path, "unet_nested", log, 12))
	img := readPNG(t, path)
	assert.Equal(t, image.Rect(0, 0, 768, 768), img.Bounds(), "two panels of 8×4 inches")
	// Each figure its own colour: the five colours of the palette are there.
	for i := range 5 {
		assert.Greater(t, countColor(img, curveColours[i].(color.RGBA)), 30, "curve %d in its colour", i)
	}
	assert.Greater(t, countColor(img, color.RGBA{90, 90, 90, 255}), 50, "the best epoch's dashed line")

	// With the learning rate: a third panel, logarithmic.
	for i := range log {
		log[i].Values["learning rate"] = 0.001 * math.Pow(0.1, float64(log[i].Epoch/8))
	}
	require.NoError(t, WriteTrainingCurves(path, "unet_nested", log, -1))
	assert.Equal(t, image.Rect(0, 0, 768, 1152), readPNG(t, path).Bounds(), "three panels")

	// One epoch: a constant learning rate still has a logarithmic axis.
	require.NoError(t, WriteTrainingCurves(path, "", log[:1], 1))

	// Scores only: one panel.
	onlyScores := []Epoch{{Epoch: 1, Values: map[string]float64{"val Dice": 0.5}}, {Epoch: 2, Values: map[string]float64{"val Dice": 0.6}}}
	require.NoError(t, WriteTrainingCurves(path, "", onlyScores, 2))
	assert.Equal(t, image.Rect(0, 0, 768, 384), readPNG(t, path).Bounds())

	assert.ErrorContains(t, WriteTrainingCurves(path, "", nil, -1), "empty log")
	assert.ErrorContains(t, WriteTrainingCurves(path, "", []Epoch{{Epoch: 1}}, -1), "holds no figure")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left")
}
