// Package picture draws the pictures of an evaluation: OCT slices with the
// predicted and true lesions painted over them, ROC curves of the lesion
// detection, and training curves. Every picture is written as a PNG through
// a temporary file renamed into place.
package picture

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"

	"github.com/edema/edema/internal/atomicfile"

	"github.com/edema/edema/oct"
)

// paintAlpha is the opacity, out of 255, of lesion paint over the grey
// slice: about half, so that the tissue under a lesion stays visible.
const paintAlpha = 128

// Slice returns the picture of one slice of height×width pixels: side by
// side, the grey slice, the predicted labels painted over it and, when truth
// is not nil, the true labels painted over it. The picture is
// height×(3·width) pixels, or height×(2·width) without truth.
func Slice(grey, pred, truth []uint8, height, width int) (*image.RGBA, error) {
	if height <= 0 || width <= 0 {
		return nil, fmt.Errorf("invalid slice size %d×%d", height, width)
	}
	n := height * width
	if len(grey) != n {
		return nil, fmt.Errorf("grey slice has %d pixels, want %d×%d", len(grey), height, width)
	}
	panels := [][]uint8{nil, pred}
	names := []string{"", "prediction"}
	if truth != nil {
		panels = append(panels, truth)
		names = append(names, "ground truth")
	}
	for i, labels := range panels[1:] {
		if err := checkLabels(names[i+1], labels, height, width); err != nil {
			return nil, err
		}
	}

	img := image.NewRGBA(image.Rect(0, 0, len(panels)*width, height))
	for p, labels := range panels {
		paintPanel(img, p*width, grey, labels, height, width)
	}
	return img, nil
}

// paintPanel draws the grey slice into img from column x0, with labels
// (nil for none) painted over it.
func paintPanel(img *image.RGBA, x0 int, grey, labels []uint8, height, width int) {
	for y := range height {
		row := img.Pix[y*img.Stride+x0*4:]
		for x := range width {
			g := grey[y*width+x]
			c := color.RGBA{g, g, g, 255}
			if labels != nil {
				if l := labels[y*width+x]; l > 0 {
					c = paint(g, oct.LesionColors[l-1])
				}
			}
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = c.R, c.G, c.B, 255
		}
	}
}

// checkLabels says what is wrong with a height×width label map, if
// anything: its size or a class beyond the lesions.
func checkLabels(what string, labels []uint8, height, width int) error {
	if len(labels) != height*width {
		return fmt.Errorf("%s has %d pixels, want %d×%d", what, len(labels), height, width)
	}
	for j, l := range labels {
		if l >= oct.NumClasses {
			return fmt.Errorf("%s pixel %d has label %d, want 0..%d", what, j, l, oct.NumClasses-1)
		}
	}
	return nil
}

// Overlay returns the grey slice with labels painted over it, one panel
// of height×width pixels.
func Overlay(grey, labels []uint8, height, width int) (*image.RGBA, error) {
	if height <= 0 || width <= 0 {
		return nil, fmt.Errorf("invalid slice size %d×%d", height, width)
	}
	if len(grey) != height*width {
		return nil, fmt.Errorf("grey slice has %d pixels, want %d×%d", len(grey), height, width)
	}
	if err := checkLabels("labels", labels, height, width); err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	paintPanel(img, 0, grey, labels, height, width)
	return img, nil
}

// LabelPalette colours a class map: background black, each lesion in its
// colour (oct.LesionColors), palette index = class.
var LabelPalette = func() color.Palette {
	p := color.Palette{color.RGBA{0, 0, 0, 255}}
	for _, c := range oct.LesionColors {
		p = append(p, c)
	}
	return p
}()

// Labels returns a height×width class map as a paletted image whose pixel
// values are the classes 0..3 and whose palette is LabelPalette: a PNG of
// it reads back as classes, and looks like the overlay's colours.
func Labels(labels []uint8, height, width int) (*image.Paletted, error) {
	if height <= 0 || width <= 0 {
		return nil, fmt.Errorf("invalid slice size %d×%d", height, width)
	}
	if err := checkLabels("labels", labels, height, width); err != nil {
		return nil, err
	}
	img := image.NewPaletted(image.Rect(0, 0, width, height), LabelPalette)
	copy(img.Pix, labels)
	return img, nil
}

// paint blends a lesion colour over a grey level with paintAlpha, rounding
// to the nearest level.
func paint(grey uint8, c color.RGBA) color.RGBA {
	blend := func(v uint8) uint8 {
		return uint8((int(grey)*(255-paintAlpha) + int(v)*paintAlpha + 127) / 255)
	}
	return color.RGBA{blend(c.R), blend(c.G), blend(c.B), 255}
}

// WritePNG writes img as a PNG file at path, through a temporary file of
// the same folder renamed into place.
func WritePNG(path string, img image.Image) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return png.Encode(w, img)
	})
}
