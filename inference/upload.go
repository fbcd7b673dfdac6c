package inference

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/picture"
)

// What a program or a service gets from its users is not a data folder but
// an image, a zip or an array: these read it into an oct.Cube, which
// Deployment.Segment predicts, and turn the prediction back into images.

// MaxScanBytes bounds the uncompressed size of one B-scan in a zip: a
// 24-bit BMP of oct.MaxImagePixels, and its header.
const MaxScanBytes = 3*oct.MaxImagePixels + 1<<10

// DecodeCube reads one cube from the bytes a user sent: a slice image (a
// PNG stack, or a PNG or BMP B-scan that stands for its own neighbours;
// see oct.DecodeSliceImage), a .zip of the B-scans 1.bmp … S.bmp (see
// oct.DecodeScanZip), or a .npy of S×H×W B-scans or S×3×H×W stacks (see
// oct.DecodeCubeNPY). name names the cube in messages.
func DecodeCube(name string, data []byte) (*oct.Cube, error) {
	var stacks []*oct.Stack
	var err error
	switch kind := oct.Sniff(data); kind {
	case oct.PNGKind, oct.BMPKind:
		var s *oct.Stack
		if s, err = oct.DecodeSliceImage(data); err == nil {
			stacks = []*oct.Stack{s}
		}
	case oct.ZipKind:
		var scans []*image.Gray
		if scans, err = oct.DecodeScanZip(data, MaxScanBytes); err == nil {
			stacks, err = oct.StackScans(scans)
		}
	case oct.NPYKind:
		stacks, err = oct.DecodeCubeNPY(data)
	default:
		if len(data) == 0 {
			return nil, fmt.Errorf("%s: empty", name)
		}
		return nil, fmt.Errorf("%s: neither a PNG or BMP slice, a .zip of B-scans nor a .npy cube", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return NewCube(name, stacks)
}

// ReadCube reads a cube from path: a file DecodeCube reads, or a folder of
// the B-scans 1.bmp … S.bmp (a cube of original_images).
func ReadCube(path string) (*oct.Cube, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return DecodeCube(path, data)
	}
	scans, err := oct.ReadScans(path, 0)
	if err != nil {
		return nil, err
	}
	stacks, err := oct.StackScans(scans)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewCube(filepath.Base(path), stacks)
}

// CubeOfImage makes a cube of one slice from an image: a colour image is
// a stack (red the next slice, green the slice, blue the previous one), a
// grey one a B-scan that stands for its own neighbours.
func CubeOfImage(name string, img image.Image) (*oct.Cube, error) {
	return NewCube(name, []*oct.Stack{oct.StackOfImage(img)})
}

// NewCube makes an unlabelled cube of stacks, which must share one size
// whose sides are multiples of models.DivisibleBy, as the networks need.
func NewCube(name string, stacks []*oct.Stack) (*oct.Cube, error) {
	if len(stacks) == 0 {
		return nil, fmt.Errorf("%s: no slice", name)
	}
	w, h := stacks[0].W, stacks[0].H
	if w%models.DivisibleBy != 0 || h%models.DivisibleBy != 0 || w < 1 || h < 1 {
		return nil, fmt.Errorf("%s: slices of %d×%d pixels (width×height): both sides must be multiples of %d", name, w, h, models.DivisibleBy)
	}
	for i, s := range stacks {
		if s.W != w || s.H != h {
			return nil, fmt.Errorf("%s: slice %d is %d×%d pixels, slice 1 %d×%d", name, i+1, s.W, s.H, w, h)
		}
	}
	c := &oct.Cube{Name: name, W: w, H: h, Stacks: stacks, Paths: make([]string, len(stacks))}
	for i := range c.Paths {
		c.Paths[i] = fmt.Sprintf("%s[%d]", name, i)
	}
	return c, nil
}

// Segment predicts every slice of c with the deployment's normalisation.
func (d *Deployment) Segment(ctx context.Context, c *oct.Cube) (*models.Prediction, error) {
	return d.PredictCube(ctx, c, d.Normalizer)
}

// SliceLabels returns the classes of slice i of p as a paletted image
// (pixel value = class, coloured as picture.LabelPalette).
func SliceLabels(p *models.Prediction, i int) (*image.Paletted, error) {
	if i < 0 || i >= p.Slices {
		return nil, fmt.Errorf("slice %d of a prediction of %d", i, p.Slices)
	}
	area := p.H * p.W
	return picture.Labels(p.Labels[i*area:(i+1)*area], p.H, p.W)
}

// SliceOverlay returns slice i of c with its predicted lesions painted
// over it.
func SliceOverlay(c *oct.Cube, p *models.Prediction, i int) (*image.RGBA, error) {
	if i < 0 || i >= p.Slices || i >= c.Slices() {
		return nil, fmt.Errorf("slice %d of a cube of %d and a prediction of %d", i, c.Slices(), p.Slices)
	}
	if c.H != p.H || c.W != p.W {
		return nil, fmt.Errorf("cube of %d×%d slices, prediction of %d×%d", c.W, c.H, p.W, p.H)
	}
	area := p.H * p.W
	return picture.Overlay(c.Stacks[i].Channel(1), p.Labels[i*area:(i+1)*area], p.H, p.W)
}

// ClassAreas counts the pixels of each class 0..3 in slice i of p.
func ClassAreas(p *models.Prediction, i int) [oct.NumClasses]int {
	var n [oct.NumClasses]int
	area := p.H * p.W
	for _, l := range p.Labels[i*area : (i+1)*area] {
		n[l]++
	}
	return n
}
