package oct

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixtureCube describes a cube written by writeCube: scan(k) and label(k)
// give slice k (counted from 0) of the B-scans and of the label BMPs.
type fixtureCube struct {
	set    Set
	name   string
	slices int
	w, h   int
	scan   func(k, x, y int) uint8
	label  func(k, x, y int) uint8 // grey levels; nil: no label_images
}

// writeCube writes a cube's original_images (and label_images) under
// dataDir, numbered from 1 as the challenge numbers them.
func writeCube(t *testing.T, dataDir string, c fixtureCube) {
	t.Helper()
	orig := inData(dataDir, c.set.OriginalDir(c.name))
	require.NoError(t, os.MkdirAll(orig, 0o755))
	var labels string
	if c.label != nil {
		labels = inData(dataDir, c.set.LabelDir(c.name))
		require.NoError(t, os.MkdirAll(labels, 0o755))
	}
	for k := range c.slices {
		require.NoError(t, WriteSlice(filepath.Join(orig, SliceFile(k+1)), greyImage(c.w, c.h, func(x, y int) uint8 { return c.scan(k, x, y) })))
		if c.label != nil {
			require.NoError(t, WriteSlice(filepath.Join(labels, SliceFile(k+1)), greyImage(c.w, c.h, func(x, y int) uint8 { return c.label(k, x, y) })))
		}
	}
}

func greyImage(w, h int, f func(x, y int) uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.Pix[y*w+x] = f(x, y)
		}
	}
	return g
}

// patternScan gives every slice of every cube distinct, left-right
// asymmetric content.
func patternScan(cube int) func(k, x, y int) uint8 {
	return func(k, x, y int) uint8 { return uint8(cube*61 + k*17 + x*5 + y*3 + x*y) }
}

// patternLabel puts lesions of varying classes in the left part of some
// slices, so that flips and detection targets are visible.
func patternLabel(cube int) func(k, x, y int) uint8 {
	levels := []uint8{0, LabelREA, LabelSRF, LabelPED, 0}
	return func(k, x, y int) uint8 {
		if x < 4+(k+cube)%3 && y > 2 && y < 10 {
			return levels[(k+cube)%len(levels)]
		}
		if x == 12 && y == 12 && (k+cube)%4 == 0 {
			return LabelPED
		}
		return 0
	}
}

// writePatternSet writes n cubes of s slices of w×h with the patterns above.
func writePatternSet(t *testing.T, dataDir string, set Set, n, s, w, h int, labelled bool) []string {
	t.Helper()
	var names []string
	for i := range n {
		c := fixtureCube{set: set, name: "P000" + string(rune('A'+i)) + "_MacularCube_cube_z", slices: s, w: w, h: h, scan: patternScan(i)}
		if labelled {
			c.label = patternLabel(i)
		}
		writeCube(t, dataDir, c)
		names = append(names, c.name)
	}
	return names
}
