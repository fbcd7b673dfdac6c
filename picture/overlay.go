// Package picture draws the pictures of an evaluation: OCT slices with the
// predicted and true lesions painted over them, titled and captioned, ROC curves of the lesion
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

// paintPanel draws the grey slice of height×width pixels into img with its
// top left corner at at, each pixel as a scale×scale square, with labels
// (nil for none) painted over it: half transparent, or in full colour when
// opaque.
func paintPanel(img *image.RGBA, at image.Point, grey, labels []uint8, height, width, scale int, opaque bool) {
	for y := range height * scale {
		row := img.Pix[(at.Y+y)*img.Stride+at.X*4:]
		src := y / scale * width
		for x := range width * scale {
			g := grey[src+x/scale]
			c := color.RGBA{g, g, g, 255}
			if labels != nil {
				if l := labels[src+x/scale]; l > 0 {
					c = oct.LesionColors[l-1]
					if !opaque {
						c = paint(g, c)
					}
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
	paintPanel(img, image.Point{}, grey, labels, height, width, 1, false)
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
