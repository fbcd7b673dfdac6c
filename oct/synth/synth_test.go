package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/oct"
)

// tiny renders in a fraction of a second.
func tiny() Options {
	return Options{Train: 2, Val: 1, Test: 1, Slices: 6, Width: 32, Height: 64, Seed: 3, Workers: 2}
}

func generate(t *testing.T, o Options) (string, *Report) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "synthetic")
	r, err := Generate(dir, o)
	require.NoError(t, err)
	return dir, r
}

// tree reads every file under dir, by path relative to dir.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	require.NoError(t, err)
	return files
}

func TestGenerateIsDeterministic(t *testing.T) {
	o := tiny()
	dirA, _ := generate(t, o)
	o.Workers = 1
	dirB, _ := generate(t, o)
	a, b := tree(t, dirA), tree(t, dirB)
	require.Equal(t, len(a), len(b))
	for name, data := range a {
		require.True(t, bytes.Equal(data, b[name]), "%s differs between two runs with the same seed", name)
	}

	o.Seed = 4
	dirC, _ := generate(t, o)
	c := tree(t, dirC)
	differ := 0
	for name, data := range c {
		if strings.HasSuffix(name, ".bmp") && !bytes.Equal(data, a[name]) {
			differ++
		}
	}
	// Names differ too, so most paths of c are not in a at all.
	assert.Positive(t, differ)
	assert.NotEqual(t, cubeNames(t, dirA, oct.Training), cubeNames(t, dirC, oct.Training))
}

func cubeNames(t *testing.T, dir string, s oct.Set) []string {
	t.Helper()
	cubes, err := oct.Cubes(dir, s)
	require.NoError(t, err)
	return cubes
}

func TestGenerateLayout(t *testing.T) {
	o := tiny()
	dir, r := generate(t, o)
	require.Len(t, r.Cubes, 4)
	files := tree(t, dir)

	want := map[string]bool{}
	for _, c := range r.Cubes {
		assert.Regexp(t, `^P(\d{4}|C\d{3})_MacularCube32x6_\d+-\d+-\d{4}_\d+-\d+-\d+_O[DS]_sn\d+_cube_z$`, c.Name)
		for k := range o.Slices {
			want[c.Set.OriginalDir(c.Name)+"/"+oct.SliceFile(k+1)] = true
			want[c.Set.StackDir(c.Name)+"/"+oct.StackFile(k)] = true
			if c.Set != oct.Test {
				want[c.Set.LabelDir(c.Name)+"/"+oct.SliceFile(k+1)] = true
			}
		}
		switch c.Set {
		case oct.Validation:
			want["Edema_validationset/groundtruth/"+c.Name+"_volumes.npy"] = true
			want["Edema_validationset/groundtruth/"+c.Name+"_detections.npy"] = true
		case oct.Test:
			want["test_groundtruth/"+c.Name+"_volumes.npy"] = true
			want["test_groundtruth/"+c.Name+"_detections.npy"] = true
		}
	}
	for _, l := range []string{"train_images.txt", "train_labels.txt", "val_images.txt", "val_labels.txt", "test_images.txt", "info.json", "info_test.json"} {
		want["data_path/"+l] = true
	}
	got := map[string]bool{}
	for name := range files {
		got[name] = true
	}
	assert.Equal(t, want, got, "exactly the real layout, no stray files")

	// The data reads back with the data package.
	samples, err := oct.ReadTrainList(filepath.Join(dir, ListDir))
	require.NoError(t, err)
	assert.Len(t, samples, 2*o.Slices)
	info, err := oct.ReadInfo(filepath.Join(dir, ListDir, oct.InfoFile))
	require.NoError(t, err)
	assert.Equal(t, *r.Lists.Info, info)
	for c := range 3 {
		assert.Greater(t, info.Mean[c], 0.02)
		assert.Less(t, info.Mean[c], 0.5)
	}
}

// TestLabelsAndReferences checks label grey levels, and that reference
// volumes and detections agree with the label images and with each other.
func TestLabelsAndReferences(t *testing.T) {
	o := tiny()
	o.Test = 0
	o.Val = 2
	dir, r := generate(t, o)
	for _, c := range r.Cubes {
		for k := range o.Slices {
			g, err := oct.ReadSlice(filepath.Join(dir, c.Set.LabelDir(c.Name), oct.SliceFile(k+1)))
			require.NoError(t, err)
			for _, v := range g.Pix {
				require.Contains(t, []uint8{0, 128, 191, 255}, v)
			}
		}
		if c.Set != oct.Validation {
			continue
		}
		vol, det := readReference(t, filepath.Join(dir, "Edema_validationset", "groundtruth"), c.Name, o)
		area := o.Width * o.Height
		for k := range o.Slices {
			m, err := oct.ReadLabel(filepath.Join(dir, c.Set.LabelDir(c.Name), oct.SliceFile(k+1)), o.Width, o.Height)
			require.NoError(t, err)
			require.Equal(t, m.Class, vol[k*area:(k+1)*area], "volume of slice %d", k)
			p := m.Targets()
			for l := range 3 {
				require.Equal(t, p[l], float32(det[3*k+l]), "detection %d of slice %d", l, k)
			}
		}
	}
}

func readReference(t *testing.T, dir, cube string, o Options) (volume, detections []uint8) {
	t.Helper()
	read := func(name string, shape []int) []uint8 {
		f, err := os.Open(filepath.Join(dir, cube+name))
		require.NoError(t, err)
		defer f.Close()
		r, err := npyio.NewReader(f)
		require.NoError(t, err)
		assert.Contains(t, []string{"'|u1'", "'<u1'"}, r.Header.Descr.Type)
		assert.Equal(t, shape, r.Header.Descr.Shape)
		var data []uint8
		require.NoError(t, r.Read(&data))
		return data
	}
	return read("_volumes.npy", []int{o.Slices, o.Height, o.Width}), read("_detections.npy", []int{o.Slices, 3})
}

// TestReferencesReadByNumPy loads the reference files with NumPy.
func TestReferencesReadByNumPy(t *testing.T) {
	o := tiny()
	dir, r := generate(t, o)
	const script = `
import json, sys
import numpy as np
out = []
for prefix in sys.argv[1:]:
    v = np.load(prefix + '_volumes.npy')
    d = np.load(prefix + '_detections.npy')
    present = np.stack([(v == c).any(axis=(1, 2)) for c in (1, 2, 3)], axis=1)
    out.append({'vdtype': str(v.dtype), 'vshape': list(v.shape), 'ddtype': str(d.dtype),
                'dshape': list(d.shape), 'max': int(v.max()), 'agree': bool((present == d).all()),
                'voxels': [int((v == c).sum()) for c in range(4)]})
print(json.dumps(out))
`
	var prefixes []string
	var cubes []CubeInfo
	for _, c := range r.Cubes {
		switch c.Set {
		case oct.Validation:
			prefixes = append(prefixes, filepath.Join(dir, "Edema_validationset", "groundtruth", c.Name))
		case oct.Test:
			prefixes = append(prefixes, filepath.Join(dir, TestGroundTruth, c.Name))
		default:
			continue
		}
		cubes = append(cubes, c)
	}
	out := pytorchtest.Run(t, "", script, prefixes...)
	var got []struct {
		VDtype string `json:"vdtype"`
		VShape []int  `json:"vshape"`
		DDtype string `json:"ddtype"`
		DShape []int  `json:"dshape"`
		Max    int    `json:"max"`
		Agree  bool   `json:"agree"`
		Voxels []int  `json:"voxels"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got, 2)
	for i, g := range got {
		assert.Equal(t, "uint8", g.VDtype)
		assert.Equal(t, []int{o.Slices, o.Height, o.Width}, g.VShape)
		assert.Equal(t, "uint8", g.DDtype)
		assert.Equal(t, []int{o.Slices, 3}, g.DShape)
		assert.LessOrEqual(t, g.Max, 3)
		assert.True(t, g.Agree, "detections are the per-slice presence of each class")
		// Each class present in the cube shows up in its reference.
		for l := range 3 {
			assert.Equal(t, cubes[i].SlicesWith[l] > 0, g.Voxels[l+1] > 0, "%s class %d", cubes[i].Name, l+1)
		}
	}
}

// TestLesionStatistics renders a training set at a quarter of the default
// size and checks that lesions are common but not everywhere, and of
// learnable size.
func TestLesionStatistics(t *testing.T) {
	o := Options{Train: 4, Val: 0, Test: 0, Slices: 16, Width: 64, Height: 128, Seed: 11, Workers: 2}
	dir, r := generate(t, o)
	var with [3]int
	empty := 0
	var tallest [4]int // tallest run of each class in one column
	var mean [4]float64
	var count [4]int
	for _, c := range r.Cubes {
		for k := range o.Slices {
			m, err := oct.ReadLabel(filepath.Join(dir, c.Set.LabelDir(c.Name), oct.SliceFile(k+1)), o.Width, o.Height)
			require.NoError(t, err)
			g, err := oct.ReadSlice(filepath.Join(dir, c.Set.OriginalDir(c.Name), oct.SliceFile(k+1)))
			require.NoError(t, err)
			p := m.Targets()
			if p == [3]float32{} {
				empty++
			}
			for l := range 3 {
				with[l] += int(p[l])
			}
			for x := range o.Width {
				run, prev := 0, uint8(0)
				for y := range o.Height {
					cl := m.Class[y*o.Width+x]
					if cl == prev {
						run++
					} else {
						run = 1
					}
					prev = cl
					tallest[cl] = max(tallest[cl], run)
					mean[cl] += float64(g.Pix[y*o.Width+x])
					count[cl]++
				}
			}
		}
	}
	n := o.Train * o.Slices
	t.Logf("of %d slices: REA %d, SRF %d, PED %d, none %d; tallest REA %d, SRF %d, PED %d px", n, with[0], with[1], with[2], empty, tallest[1], tallest[2], tallest[3])
	for l := range 3 {
		assert.Positive(t, with[l], "class %d occurs in the training set", l+1)
	}
	assert.Positive(t, empty, "some slices have no lesion")
	assert.Greater(t, with[0], n/8, "REA is common")
	// At 128 px high, REA reaches 5–13 px and SRF and PED 2.5–6 px.
	assert.GreaterOrEqual(t, tallest[1], 5)
	assert.GreaterOrEqual(t, tallest[2]+tallest[3], 4)
	// Fluid is darker than the tissue around it.
	for l := 1; l <= 3; l++ {
		if count[l] > 0 {
			assert.Less(t, mean[l]/float64(count[l]), 50.0, "mean grey level of class %d", l)
		}
	}
}

// TestPlanGivesEverySetEveryClass draws many plans without rendering them.
func TestPlanGivesEverySetEveryClass(t *testing.T) {
	for seed := range uint64(300) {
		o := Options{Train: 1 + int(seed%4), Val: int(seed % 3), Test: int(seed % 2), Seed: seed, Width: 32, Slices: 4}
		cubes := plan(o)
		require.Len(t, cubes, o.Train+o.Val+o.Test)
		names := map[string]bool{}
		has := map[oct.Set][3]bool{}
		for _, c := range cubes {
			require.False(t, names[c.name], "seed %d: %s twice", seed, c.name)
			names[c.name] = true
			h := has[c.set]
			for l := range 3 {
				h[l] = h[l] || c.has[l]
			}
			has[c.set] = h
		}
		for set, h := range has {
			require.Equal(t, [3]bool{true, true, true}, h, "seed %d, %s", seed, set)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	assert.NoError(t, DefaultOptions().Validate())
	real := DefaultOptions()
	real.Width, real.Height, real.Slices = 512, 1024, 128
	assert.NoError(t, real.Validate())
	tests := []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Width = 100 }, "--width 100: must be a multiple of 16"},
		{func(o *Options) { o.Width = 16 }, "--width 16"},
		{func(o *Options) { o.Height = 250 }, "--height 250: must be a multiple of 16"},
		{func(o *Options) { o.Height = 8192 }, "--height 8192"},
		{func(o *Options) { o.Slices = 1 }, "--slices 1: must be 2..999"},
		{func(o *Options) { o.Slices = 1000 }, "--slices 1000"},
		{func(o *Options) { o.Train = 0 }, "--train 0: need at least one training cube"},
		{func(o *Options) { o.Val = -1 }, "--val -1"},
		{func(o *Options) { o.Test = -2 }, "--test -2"},
		{func(o *Options) { o.Train = 1001 }, "1005 cubes"},
	}
	for _, tc := range tests {
		o := DefaultOptions()
		tc.change(&o)
		err := o.Validate()
		require.Error(t, err, tc.want)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestGenerateRefusesNonEmptyFolder(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644))
	_, err := Generate(dir, tiny())
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir+" is not empty")
	data, err := os.ReadFile(filepath.Join(dir, "keep.txt"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(data))

	bad := tiny()
	bad.Width = 40
	_, err = Generate(filepath.Join(t.TempDir(), "new"), bad)
	assert.ErrorContains(t, err, "--width 40")
}

func TestWriteReferenceChecksSizes(t *testing.T) {
	err := WriteReference(t.TempDir(), "P1", make([]uint8, 10), make([][3]uint8, 2), 2, 2, 2)
	assert.ErrorContains(t, err, fmt.Sprintf("reference of P1: %d voxels", 10))
}
