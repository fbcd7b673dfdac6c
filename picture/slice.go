package picture

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/edema/edema/metrics"
	"github.com/edema/edema/oct"
)

// MinSliceHeight is the height below which a slice picture scales its
// panels up, by a whole factor and nearest neighbour, so that a small
// slice's lesions stay visible pixel by pixel and the captions fit.
const MinSliceHeight = 512

// SliceFigure is what the picture of one slice shows: side by side the grey
// slice, the predicted lesions painted over it and, when Truth is set, the
// true ones; a title over each panel, and under them a colour key, the
// slice's Dice per lesion class and its detection probabilities.
type SliceFigure struct {
	// Title names the slice, over the first panel ("cube X, slice 3").
	Title         string
	Height, Width int
	Grey          []uint8 // Height×Width grey levels
	// Pred holds the predicted classes 0..3; nil for a network that does
	// not segment, and the picture then has no prediction panel and no
	// Dice.
	Pred []uint8
	// Truth holds the true classes; nil when they are unknown (the test
	// set), and the picture then has two panels and no Dice.
	Truth []uint8
	// Detections are the predicted probabilities that the slice shows each
	// lesion class; nil for none.
	Detections []float32
	// Opaque paints lesions in full colour, as the original's pictures
	// did, instead of half transparent over the tissue.
	Opaque bool
}

// Layout of a slice picture, in pixels.
const (
	slicePad = 6 // around text
	sliceGap = 4 // between panels
)

var (
	ink   = color.RGBA{0, 0, 0, 255}
	paper = color.RGBA{255, 255, 255, 255}
)

// sliceFace is the face of a slice picture's text: Go Regular at 14 px.
var sliceFace = sync.OnceValues(func() (font.Face, error) {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, err
	}
	return opentype.NewFace(f, &opentype.FaceOptions{Size: 14, DPI: 72, Hinting: font.HintingFull})
})

// Draw returns the picture. Its panels are Height×Width pixels, or a whole
// multiple of that up to MinSliceHeight high.
func (f *SliceFigure) Draw() (*image.RGBA, error) {
	if f.Height <= 0 || f.Width <= 0 {
		return nil, fmt.Errorf("invalid slice size %d×%d", f.Height, f.Width)
	}
	if len(f.Grey) != f.Height*f.Width {
		return nil, fmt.Errorf("grey slice has %d pixels, want %d×%d", len(f.Grey), f.Height, f.Width)
	}
	panels := [][]uint8{nil}
	titles := []string{f.Title}
	if f.Pred != nil {
		panels = append(panels, f.Pred)
		titles = append(titles, "prediction")
	}
	if f.Truth != nil {
		panels = append(panels, f.Truth)
		titles = append(titles, "ground truth")
	}
	for i, labels := range panels[1:] {
		if err := checkLabels(titles[i+1], labels, f.Height, f.Width); err != nil {
			return nil, err
		}
	}
	if f.Detections != nil && len(f.Detections) != oct.NumLesions {
		return nil, fmt.Errorf("%d detection probabilities, want %d", len(f.Detections), oct.NumLesions)
	}
	captions, err := f.captions()
	if err != nil {
		return nil, err
	}
	face, err := sliceFace()
	if err != nil {
		return nil, fmt.Errorf("text face: %w", err)
	}

	scale := 1
	if f.Height < MinSliceHeight {
		scale = (MinSliceHeight + f.Height - 1) / f.Height
	}
	panelW, panelH := f.Width*scale, f.Height*scale
	line := face.Metrics().Height.Ceil()
	titleH := line + 2*slicePad
	captionH := (1+len(captions))*line + 2*slicePad
	width := len(panels)*panelW + (len(panels)-1)*sliceGap
	for _, c := range captions {
		width = max(width, font.MeasureString(face, c).Ceil()+2*slicePad)
	}

	img := image.NewRGBA(image.Rect(0, 0, width, titleH+panelH+captionH))
	draw.Draw(img, img.Bounds(), image.NewUniform(paper), image.Point{}, draw.Src)
	text := &font.Drawer{Dst: img, Src: image.NewUniform(ink), Face: face}
	baseline := func(top int) fixed.Int26_6 { return fixed.I(top + slicePad + face.Metrics().Ascent.Ceil()) }
	for p, labels := range panels {
		x0 := p * (panelW + sliceGap)
		paintPanel(img, image.Pt(x0, titleH), f.Grey, labels, f.Height, f.Width, scale, f.Opaque)
		text.Dot = fixed.Point26_6{X: fixed.I(x0 + slicePad), Y: baseline(0)}
		text.DrawString(fitText(face, titles[p], panelW-2*slicePad))
	}

	// The colour key, then the captions, a line each.
	top := titleH + panelH
	x := slicePad
	swatch := face.Metrics().Ascent.Ceil()
	for c, name := range oct.LesionNames {
		y := top + slicePad + (line-swatch)/2
		draw.Draw(img, image.Rect(x, y, x+swatch, y+swatch), image.NewUniform(oct.LesionColors[c]), image.Point{}, draw.Src)
		text.Dot = fixed.Point26_6{X: fixed.I(x + swatch + slicePad/2), Y: baseline(top)}
		text.DrawString(name)
		x = text.Dot.X.Ceil() + 2*slicePad
	}
	for i, c := range captions {
		text.Dot = fixed.Point26_6{X: fixed.I(slicePad), Y: baseline(top + (i+1)*line)}
		text.DrawString(c)
	}
	return img, nil
}

// captions returns the lines under the panels: the slice's Dice per
// lesion class when the truth is known, and the detection probabilities,
// with the true presence of each class when known.
func (f *SliceFigure) captions() ([]string, error) {
	var lines []string
	var present []float32
	if f.Truth != nil && f.Pred != nil {
		dice, err := metrics.Dice(f.Pred, f.Truth)
		if err != nil {
			return nil, err
		}
		parts := make([]string, oct.NumLesions)
		for c, name := range oct.LesionNames {
			parts[c] = name + " " + formatFigure(dice[c])
		}
		lines = append(lines, "Dice: "+strings.Join(parts, " · "))
	}
	if f.Truth != nil {
		var err error
		if present, err = metrics.SliceTargets(f.Truth, 1); err != nil {
			return nil, err
		}
	}
	if f.Detections != nil {
		parts := make([]string, oct.NumLesions)
		for c, name := range oct.LesionNames {
			parts[c] = fmt.Sprintf("%s %.3f", name, f.Detections[c])
			if present != nil {
				parts[c] += map[bool]string{true: " (present)", false: " (absent)"}[present[c] == 1]
			}
		}
		lines = append(lines, "detection: "+strings.Join(parts, " · "))
	}
	return lines, nil
}

// formatFigure writes a Dice coefficient, "n/a" where it is undefined (the
// class is not in the slice's ground truth).
func formatFigure(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}

// fitText returns s, or its longest prefix followed by "…" that is at most
// width pixels wide in face.
func fitText(face font.Face, s string, width int) string {
	if font.MeasureString(face, s).Ceil() <= width {
		return s
	}
	runes := []rune(s)
	for n := len(runes) - 1; n > 0; n-- {
		if cut := string(runes[:n]) + "…"; font.MeasureString(face, cut).Ceil() <= width {
			return cut
		}
	}
	return ""
}
