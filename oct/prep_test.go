package oct

import (
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPrepStacksNeighboursInOriginalOrder makes a cube whose slice k (file
// k.bmp) is the constant 10·k and checks every channel of every pixel of
// every stack, edges included: stack i is (R, G, B) = slices (i+1, i, i-1)
// counted from 0, with the first and last slices standing in for their
// missing neighbours. Twelve slices make a string sort of the file names
// (1, 10, 11, 12, 2, …) differ from the numerical one.
func TestPrepStacksNeighboursInOriginalOrder(t *testing.T) {
	const s, w, h = 12, 16, 4
	data := t.TempDir()
	writeCube(t, data, fixtureCube{set: Training, name: "PX_cube_z", slices: s, w: w, h: h,
		scan: func(k, _, _ int) uint8 { return uint8(10 * (k + 1)) }})

	stats, err := Prep(data, 3, nil)
	require.NoError(t, err)
	assert.Equal(t, []PrepStats{{Set: Training, Cubes: 1, Slices: s}}, stats)

	dir := inData(data, Training.StackDir("PX_cube_z"))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, s, "exactly one PNG per slice, no temporary files")

	value := func(j int) uint8 { return uint8(10 * (j + 1)) } // slice j, from 0
	for i := range s {
		f, err := os.Open(filepath.Join(dir, StackFile(i)))
		require.NoError(t, err)
		img, err := png.Decode(f)
		f.Close()
		require.NoError(t, err)
		want := color.NRGBA{R: value(min(i+1, s-1)), G: value(i), B: value(max(i-1, 0)), A: 255}
		require.Equal(t, w, img.Bounds().Dx())
		require.Equal(t, h, img.Bounds().Dy())
		for y := range h {
			for x := range w {
				got := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				require.Equal(t, want, got, "stack %d pixel (%d,%d)", i, x, y)
			}
		}
	}
	// Edges spelled out.
	first, err := ReadStack(filepath.Join(dir, "000.png"), w, h)
	require.NoError(t, err)
	assert.Equal(t, []uint8{20, 10, 10}, []uint8{first.Pix[0], first.Pix[w*h], first.Pix[2*w*h]})
	last, err := ReadStack(filepath.Join(dir, "011.png"), w, h)
	require.NoError(t, err)
	assert.Equal(t, []uint8{120, 120, 110}, []uint8{last.Pix[0], last.Pix[w*h], last.Pix[2*w*h]})
}

func TestPrepKeepsPixelsAndDoesEverySet(t *testing.T) {
	data := t.TempDir()
	writePatternSet(t, data, Training, 2, 3, 16, 16, true)
	writePatternSet(t, data, Test, 1, 4, 16, 32, false)
	var progress []string
	stats, err := Prep(data, 0, func(what string, done, total int) {
		progress = append(progress, fmt.Sprintf("%s %d/%d", what, done, total))
	})
	require.NoError(t, err)
	assert.Equal(t, []PrepStats{{Training, 2, 6}, {Test, 1, 4}}, stats)
	assert.Equal(t, []string{"cubes 1/3", "cubes 2/3", "cubes 3/3"}, progress)

	// The middle channel of a stack is the slice itself.
	cubes, err := PreparedCubes(data, Test)
	require.NoError(t, err)
	require.Len(t, cubes, 1)
	for k := range 4 {
		s, err := ReadStack(inData(data, Test.StackDir(cubes[0])+"/"+StackFile(k)), 16, 32)
		require.NoError(t, err)
		orig, err := ReadSlice(inData(data, Test.OriginalDir(cubes[0])+"/"+SliceFile(k+1)))
		require.NoError(t, err)
		assert.Equal(t, orig.Pix, s.Grey().Pix)
	}
}

func TestPrepSingleSliceCube(t *testing.T) {
	data := t.TempDir()
	writeCube(t, data, fixtureCube{set: Test, name: "P1_cube_z", slices: 1, w: 16, h: 16,
		scan: func(_, x, _ int) uint8 { return uint8(x) }})
	_, err := Prep(data, 1, nil)
	require.NoError(t, err)
	s, err := ReadStack(inData(data, Test.StackDir("P1_cube_z")+"/000.png"), 16, 16)
	require.NoError(t, err)
	assert.Equal(t, s.Channel(1), s.Channel(0))
	assert.Equal(t, s.Channel(1), s.Channel(2))
}

// A second prep of a cube that has lost slices at its end leaves no stack
// of the first behind.
func TestPrepRemovesStaleStacks(t *testing.T) {
	data := t.TempDir()
	writePatternSet(t, data, Test, 1, 6, 16, 16, false)
	_, err := Prep(data, 2, nil)
	require.NoError(t, err)
	orig := inData(data, Test.OriginalDir("P000A_MacularCube_cube_z"))
	for _, k := range []int{5, 6} {
		require.NoError(t, os.Remove(filepath.Join(orig, SliceFile(k))))
	}
	_, err = Prep(data, 2, nil)
	require.NoError(t, err)
	names, err := NumberedFiles(inData(data, Test.StackDir("P000A_MacularCube_cube_z")), ".png")
	require.NoError(t, err)
	assert.Equal(t, []string{"000.png", "001.png", "002.png", "003.png"}, names)
}

func TestPrepErrors(t *testing.T) {
	t.Run("no set", func(t *testing.T) {
		data := t.TempDir()
		_, err := Prep(data, 1, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), data)
		assert.Contains(t, err.Error(), "original_images")
	})
	t.Run("slice of another size", func(t *testing.T) {
		data := t.TempDir()
		writePatternSet(t, data, Validation, 1, 3, 16, 16, true)
		bad := inData(data, Validation.OriginalDir("P000A_MacularCube_cube_z")+"/3.bmp")
		require.NoError(t, WriteSlice(bad, greyImage(32, 16, func(x, y int) uint8 { return 0 })))
		_, err := Prep(data, 1, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), bad)
		assert.Contains(t, err.Error(), "want 16×16")
	})
	t.Run("corrupt slice", func(t *testing.T) {
		data := t.TempDir()
		writePatternSet(t, data, Test, 1, 3, 16, 16, false)
		bad := inData(data, Test.OriginalDir("P000A_MacularCube_cube_z")+"/2.bmp")
		writeFile(t, bad, []byte("BM broken"))
		_, err := Prep(data, 2, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), bad)
	})
	t.Run("missing slice", func(t *testing.T) {
		data := t.TempDir()
		writePatternSet(t, data, Test, 1, 6, 16, 16, false)
		dir := inData(data, Test.OriginalDir("P000A_MacularCube_cube_z"))
		require.NoError(t, os.Remove(filepath.Join(dir, "5.bmp")))
		_, err := Prep(data, 2, nil)
		require.EqualError(t, err, dir+": slice 5.bmp is missing (the files run from 1 to 6 with 5 of them)")
	})
	t.Run("empty cube", func(t *testing.T) {
		data := t.TempDir()
		dir := inData(data, Training.OriginalDir("P1_cube_z"))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		_, err := Prep(data, 2, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), dir)
	})
}
