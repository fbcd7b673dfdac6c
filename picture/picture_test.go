package picture

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/font"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/metrics"

	"github.com/edema/edema/oct"
)

// sliceLayout returns where a slice picture's panels start and how much
// they are scaled, from the picture's own face and constants.
func sliceLayout(t *testing.T, height int) (titleH, scale int) {
	face, err := sliceFace()
	require.NoError(t, err)
	scale = 1
	if height < MinSliceHeight {
		scale = (MinSliceHeight + height - 1) / height
	}
	return face.Metrics().Height.Ceil() + 2*slicePad, scale
}

func TestSliceFigure(t *testing.T) {
	const h, w = 2, 3
	fig := SliceFigure{
		Title:  "cube P1, slice 0 (1.bmp)",
		Height: h, Width: w,
		Grey:       []uint8{100, 0, 255, 50, 50, 50},
		Pred:       []uint8{1, 0, 2, 3, 0, 0},
		Truth:      []uint8{0, 0, 0, 0, 1, 2},
		Detections: []float32{0.9, 0.25, 0.0625},
	}
	img, err := fig.Draw()
	require.NoError(t, err)
	titleH, scale := sliceLayout(t, h)
	require.Equal(t, 256, scale, "2 pixels high scale up to 512")
	panelW := w * scale
	assert.Equal(t, 3*panelW+2*sliceGap, img.Bounds().Dx())
	// The centre of pixel (x, y) of panel p.
	rgb := func(p, x, y int) color.RGBA {
		return img.RGBAAt(p*(panelW+sliceGap)+x*scale+scale/2, titleH+y*scale+scale/2)
	}

	// Left panel: the grey slice.
	assert.Equal(t, color.RGBA{100, 100, 100, 255}, rgb(0, 0, 0))
	assert.Equal(t, color.RGBA{255, 255, 255, 255}, rgb(0, 2, 0))
	// Middle panel: the prediction, half blended over the grey level:
	// (100·127 + 255·128 + 127) / 255 = 178, 100·127 / 255 rounds to 50.
	assert.Equal(t, color.RGBA{50, 50, 178, 255}, rgb(1, 0, 0), "REA is blue")
	assert.Equal(t, color.RGBA{0, 0, 0, 255}, rgb(1, 1, 0), "background stays grey")
	assert.Equal(t, color.RGBA{127, 255, 127, 255}, rgb(1, 2, 0), "SRF is green")
	assert.Equal(t, color.RGBA{153, 25, 25, 255}, rgb(1, 0, 1), "PED is red")
	// Right panel: the ground truth.
	assert.Equal(t, color.RGBA{100, 100, 100, 255}, rgb(2, 0, 0))
	assert.Equal(t, color.RGBA{25, 25, 153, 255}, rgb(2, 1, 1))
	assert.Equal(t, color.RGBA{25, 153, 25, 255}, rgb(2, 2, 1))
	// Nearest neighbour: a scaled pixel is one colour to its edges.
	x0, y0 := panelW+sliceGap, titleH
	assert.Equal(t, rgb(1, 0, 0), img.RGBAAt(x0, y0))
	assert.Equal(t, rgb(1, 0, 0), img.RGBAAt(x0+scale-1, y0+scale-1))
	assert.Equal(t, rgb(1, 1, 0), img.RGBAAt(x0+scale, y0))

	// Each panel's title is written over it, and the key's swatches and
	// the captions under the panels.
	for p := range 3 {
		title := img.SubImage(image.Rect(p*(panelW+sliceGap), 0, p*(panelW+sliceGap)+panelW, titleH))
		assert.Greater(t, countDark(title), 40, "panel %d has a title", p)
	}
	caption := img.SubImage(image.Rect(0, titleH+h*scale, img.Bounds().Dx(), img.Bounds().Dy()))
	for c, lesion := range oct.LesionColors {
		assert.Greater(t, countColor(caption, lesion), 50, "swatch of %s", oct.LesionNames[c])
	}
	face, err := sliceFace()
	require.NoError(t, err)
	line := face.Metrics().Height.Ceil()
	below := caption.Bounds().Min.Y + slicePad + line
	for i := range 2 {
		text := img.SubImage(image.Rect(0, below+i*line, img.Bounds().Dx(), below+(i+1)*line))
		assert.Greater(t, countDark(text), 300, "caption line %d", i)
	}
	assert.Equal(t, img.Bounds().Dy(), below+2*line+slicePad, "two caption lines under the key")

	lines, err := fig.captions()
	require.NoError(t, err)
	assert.Equal(t, []string{
		// REA: predicted at pixel 0, true at pixel 4: Dice 0. SRF: true
		// at pixel 5, predicted at 2. PED: not in the truth.
		"Dice: REA 0.0000 · SRF 0.0000 · PED n/a",
		"detection: REA 0.900 (present) · SRF 0.250 (present) · PED 0.062 (absent)",
	}, lines)

	// Opaque, as the original painted: the lesion colours themselves.
	fig.Opaque = true
	img, err = fig.Draw()
	require.NoError(t, err)
	assert.Equal(t, oct.LesionColors[0], rgb(1, 0, 0))
	assert.Equal(t, oct.LesionColors[2], rgb(1, 0, 1))
	assert.Equal(t, color.RGBA{100, 100, 100, 255}, rgb(0, 0, 0), "the grey panel is not painted")

	// Without ground truth (the test set), two panels and no Dice.
	fig.Truth, fig.Opaque = nil, false
	img, err = fig.Draw()
	require.NoError(t, err)
	assert.Equal(t, max(2*panelW+sliceGap, img.Bounds().Dx()), img.Bounds().Dx())
	assert.Equal(t, color.RGBA{153, 25, 25, 255}, rgb(1, 0, 1))
	lines, err = fig.captions()
	require.NoError(t, err)
	assert.Equal(t, []string{"detection: REA 0.900 · SRF 0.250 · PED 0.062"}, lines)
}

func TestSliceFigureFullSize(t *testing.T) {
	// A slice of the real size keeps its pixels one to one; a long title
	// is cut to its panel.
	const h, w = 1024, 512
	fig := SliceFigure{Title: strings.Repeat("a long cube name ", 10), Height: h, Width: w,
		Grey: make([]uint8, h*w), Pred: make([]uint8, h*w)}
	fig.Pred[5*w+7] = 2
	img, err := fig.Draw()
	require.NoError(t, err)
	titleH, scale := sliceLayout(t, h)
	assert.Equal(t, 1, scale)
	assert.Equal(t, 2*w+sliceGap, img.Bounds().Dx())
	assert.Equal(t, color.RGBA{0, 128, 0, 255}, img.RGBAAt(w+sliceGap+7, titleH+5))
	assert.Equal(t, color.RGBA{0, 0, 0, 255}, img.RGBAAt(w+sliceGap+8, titleH+5))
	face, err := sliceFace()
	require.NoError(t, err)
	cut := fitText(face, fig.Title, w-2*slicePad)
	assert.True(t, strings.HasSuffix(cut, "…"))
	assert.LessOrEqual(t, font.MeasureString(face, cut).Ceil(), w-2*slicePad)
	assert.Equal(t, "short", fitText(face, "short", w))
}

func TestSliceFigureBadInput(t *testing.T) {
	grey := make([]uint8, 6)
	tests := []struct {
		name              string
		grey, pred, truth []uint8
		detections        []float32
		h, w              int
		want              string
	}{
		{"size", grey, grey, nil, nil, 0, 6, "invalid slice size 0×6"},
		{"grey", grey[:5], grey, nil, nil, 2, 3, "grey slice has 5 pixels, want 2×3"},
		{"prediction", grey, grey[:4], nil, nil, 2, 3, "prediction has 4 pixels"},
		{"truth", grey, grey, grey[:1], nil, 2, 3, "ground truth has 1 pixels"},
		{"label", grey, []uint8{0, 0, 0, 0, 0, 4}, nil, nil, 2, 3, "prediction pixel 5 has label 4"},
		{"truth label", grey, grey, []uint8{255, 0, 0, 0, 0, 0}, nil, 2, 3, "ground truth pixel 0 has label 255"},
		{"detections", grey, grey, nil, []float32{0.5}, 2, 3, "1 detection probabilities, want 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fig := SliceFigure{Grey: tt.grey, Pred: tt.pred, Truth: tt.truth, Detections: tt.detections, Height: tt.h, Width: tt.w}
			_, err := fig.Draw()
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

// countDark counts the pixels of img darker than mid-grey: text, which is
// anti-aliased, where img is white paper.
func countDark(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y < 128 {
				n++
			}
		}
	}
	return n
}

func TestWritePNG(t *testing.T) {
	img, err := Overlay([]uint8{10, 20}, []uint8{0, 3}, 1, 2)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "slice.png")
	require.NoError(t, WritePNG(path, img))
	back := readPNG(t, path)
	assert.Equal(t, img.Bounds(), back.Bounds())
	for x := range 2 {
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
