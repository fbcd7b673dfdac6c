package inference

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
)

func writeScan(t *testing.T, path string, w, h, seed int) *image.Gray {
	t.Helper()
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = uint8(i*3 + seed)
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, bmp.Encode(f, g))
	return g
}

func TestReadCube(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "P0001_MacularCube512x128.img")
	require.NoError(t, os.Mkdir(dir, 0o755))
	var scans []*image.Gray
	for k := 1; k <= 3; k++ {
		scans = append(scans, writeScan(t, filepath.Join(dir, oct.SliceFile(k)), 16, 32, k))
	}
	c, err := ReadCube(dir)
	require.NoError(t, err)
	assert.Equal(t, "P0001_MacularCube512x128.img", c.Name)
	want, err := oct.StackScans(scans)
	require.NoError(t, err)
	assert.Equal(t, want, c.Stacks, "a folder of B-scans is stacked as prep stacks it")
	assert.False(t, c.Labelled())

	one, err := ReadCube(filepath.Join(dir, "2.bmp"))
	require.NoError(t, err)
	assert.Equal(t, oct.StackSlices(scans[1], scans[1], scans[1]), one.Stacks[0])

	_, err = ReadCube(filepath.Join(dir, "9.bmp"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	odd := filepath.Join(t.TempDir(), "odd.bmp")
	writeScan(t, odd, 20, 32, 0)
	_, err = ReadCube(odd)
	assert.ErrorContains(t, err, "slices of 20×32 pixels (width×height): both sides must be multiples of 16")
}

func TestPicturesOfAPrediction(t *testing.T) {
	scan := image.NewGray(image.Rect(0, 0, 16, 16))
	c, err := CubeOfImage("x", scan)
	require.NoError(t, err)
	p := models.NewPrediction(1, 16, 16, false)
	p.Labels[0], p.Labels[1], p.Labels[2] = 1, 2, 3
	labels, err := SliceLabels(p, 0)
	require.NoError(t, err)
	assert.Equal(t, p.Labels, labels.Pix)
	overlay, err := SliceOverlay(c, p, 0)
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, 0, 128, 255}, overlay.Pix[:4], "REA painted blue at half opacity")
	assert.Equal(t, [4]int{253, 1, 1, 1}, ClassAreas(p, 0))
	_, err = SliceLabels(p, 1)
	assert.ErrorContains(t, err, "slice 1 of a prediction of 1")
	_, err = NewCube("none", nil)
	assert.ErrorContains(t, err, "none: no slice")
}
