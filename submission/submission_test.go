package submission

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
)

// testCube returns a cube of the given shape with labels and probabilities
// that differ from voxel to voxel and from cube to cube.
func testCube(name string, slices, height, width int, seed int) Cube {
	c := Cube{Name: name, Slices: slices, Height: height, Width: width,
		Labels:     make([]uint8, slices*height*width),
		Detections: make([]float32, slices*3),
	}
	for i := range c.Labels {
		c.Labels[i] = uint8((i*7 + seed) % 4)
	}
	for i := range c.Detections {
		c.Detections[i] = float32((i*5+seed)%11) / 10
	}
	return c
}

const numpyReadBack = `
import io, json, sys, zipfile
import numpy as np

out = {}
with zipfile.ZipFile(sys.argv[1]) as z:
    out["names"] = z.namelist()
    for name in z.namelist():
        a = np.load(io.BytesIO(z.read(name)))
        out[name] = {"dtype": str(a.dtype), "shape": list(a.shape), "values": a.ravel().tolist()}
json.dump(out, sys.stdout)
`

type numpyArray struct {
	Dtype  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

func TestWriteReadByNumPy(t *testing.T) {
	dir := t.TempDir()
	cubes := []Cube{
		testCube("P0001_MacularCube512x128_cube_z", 3, 4, 5, 0),
		testCube("P0002_MacularCube512x128_cube_z", 2, 6, 3, 1),
	}
	var names []string
	for _, c := range cubes {
		require.NoError(t, WriteCube(dir, c))
		names = append(names, c.Name)
	}
	zipPath, err := Zip(dir, names)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "submission.zip"), zipPath)

	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, "", numpyReadBack, zipPath)), &got))
	var zipped []string
	require.NoError(t, json.Unmarshal(got["names"], &zipped))
	assert.Equal(t, []string{
		"P0001_MacularCube512x128_cube_z_labelMark_volumes.npy",
		"P0001_MacularCube512x128_cube_z_labelMark_detections.npy",
		"P0002_MacularCube512x128_cube_z_labelMark_volumes.npy",
		"P0002_MacularCube512x128_cube_z_labelMark_detections.npy",
	}, zipped)

	for _, c := range cubes {
		var vol, det numpyArray
		require.NoError(t, json.Unmarshal(got[VolumesFile(c.Name)], &vol))
		require.NoError(t, json.Unmarshal(got[DetectionsFile(c.Name)], &det))
		assert.Equal(t, "uint8", vol.Dtype)
		assert.Equal(t, []int{c.Slices, c.Height, c.Width}, vol.Shape)
		require.Len(t, vol.Values, len(c.Labels))
		for i, l := range c.Labels {
			require.Equal(t, float64(l), vol.Values[i], "voxel %d", i)
		}
		assert.Equal(t, "float32", det.Dtype)
		assert.Equal(t, []int{c.Slices, 3}, det.Shape)
		require.Len(t, det.Values, len(c.Detections))
		for i, d := range c.Detections {
			require.Equal(t, float64(d), det.Values[i], "detection %d", i)
		}
	}
}

func TestWriteCubeBadInput(t *testing.T) {
	good := testCube("P0001", 2, 3, 4, 0)
	tests := []struct {
		name   string
		modify func(c *Cube)
		want   string
	}{
		{"empty name", func(c *Cube) { c.Name = "" }, `invalid cube name ""`},
		{"path in name", func(c *Cube) { c.Name = "a/b" }, `invalid cube name "a/b"`},
		{"shape", func(c *Cube) { c.Height = 0 }, "invalid shape 2×0×4"},
		{"label count", func(c *Cube) { c.Labels = c.Labels[:5] }, "5 labels for a 2×3×4 volume"},
		{"detection count", func(c *Cube) { c.Detections = c.Detections[:4] }, "4 detection probabilities for 2 slices"},
		{"label value", func(c *Cube) { c.Labels = slices.Clone(c.Labels); c.Labels[7] = 4 }, "voxel 7 has label 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := good
			tt.modify(&c)
			assert.ErrorContains(t, WriteCube(dir, c), tt.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing is written")
		})
	}
}

func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	c := testCube("P0001", 2, 3, 4, 0)
	require.NoError(t, WriteCube(dir, c))
	before, err := os.ReadFile(filepath.Join(dir, VolumesFile("P0001")))
	require.NoError(t, err)

	// A failed zip leaves neither an archive nor a temporary file behind.
	_, err = Zip(dir, []string{"P0001", "P0002"})
	assert.ErrorContains(t, err, "P0002_labelMark_volumes.npy")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{VolumesFile("P0001"), DetectionsFile("P0001")}, names)

	_, err = Zip(dir, []string{"P0001", "P0001"})
	assert.ErrorContains(t, err, "cube P0001 listed twice")
	_, err = Zip(dir, nil)
	assert.ErrorContains(t, err, "no cube to zip")

	// Writing into a missing folder fails without touching anything else.
	assert.Error(t, WriteCube(filepath.Join(dir, "missing"), c))
	after, err := os.ReadFile(filepath.Join(dir, VolumesFile("P0001")))
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.False(t, strings.Contains(strings.Join(names, " "), ".tmp"))
}
