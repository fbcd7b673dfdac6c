package oct

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// preparedData writes a small data folder of all three sets and prepares it.
func preparedData(t *testing.T) (data string, train, val, test []string) {
	t.Helper()
	data = t.TempDir()
	train = writePatternSet(t, data, Training, 3, 5, 16, 16, true)
	val = writePatternSet(t, data, Validation, 2, 4, 16, 16, true)
	test = writePatternSet(t, data, Test, 2, 3, 16, 16, false)
	_, err := Prep(data, 2, nil)
	require.NoError(t, err)
	return data, train, val, test
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(data), "\n"), "%s ends with a newline", path)
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestWriteListsFiles(t *testing.T) {
	data, train, val, test := preparedData(t)
	lists := filepath.Join(t.TempDir(), "data_path")
	stats, err := WriteLists(data, lists, 2, nil)
	require.NoError(t, err)
	assert.Equal(t, 15, stats.TrainSlices)
	assert.Equal(t, 2, stats.ValCubes)
	assert.Equal(t, 2, stats.TestCubes)

	var wantImages, wantLabels []string
	for _, c := range train {
		for i := range 5 {
			wantImages = append(wantImages, "Edema_trainingset/trans3channel_images/"+c+".img/00"+string(rune('0'+i))+".png")
			wantLabels = append(wantLabels, "Edema_trainingset/label_images/"+c+"_labelMark/"+string(rune('1'+i))+".bmp")
		}
	}
	assert.Equal(t, wantImages, readLines(t, filepath.Join(lists, "train_images.txt")))
	assert.Equal(t, wantLabels, readLines(t, filepath.Join(lists, "train_labels.txt")))
	assert.Equal(t, []string{
		"Edema_validationset/trans3channel_images/" + val[0] + ".img",
		"Edema_validationset/trans3channel_images/" + val[1] + ".img",
	}, readLines(t, filepath.Join(lists, "val_images.txt")))
	assert.Equal(t, []string{
		"Edema_validationset/label_images/" + val[0] + "_labelMark",
		"Edema_validationset/label_images/" + val[1] + "_labelMark",
	}, readLines(t, filepath.Join(lists, "val_labels.txt")))
	assert.Equal(t, []string{
		"Edema_testset/trans3channel_images/" + test[0] + ".img",
		"Edema_testset/trans3channel_images/" + test[1] + ".img",
	}, readLines(t, filepath.Join(lists, "test_images.txt")))

	// The readers give back what was written.
	samples, err := ReadTrainList(lists)
	require.NoError(t, err)
	require.Len(t, samples, 15)
	assert.Equal(t, Sample{Image: wantImages[7], Label: wantLabels[7]}, samples[7])
	cubes, err := ReadValList(lists)
	require.NoError(t, err)
	assert.Equal(t, val[1], cubes[1].Name())
	assert.Equal(t, "Edema_validationset/label_images/"+val[1]+"_labelMark", cubes[1].Labels)
	tests, err := ReadTestList(lists)
	require.NoError(t, err)
	assert.Equal(t, CubeEntry{Images: "Edema_testset/trans3channel_images/" + test[0] + ".img"}, tests[0])

	info, err := ReadInfo(filepath.Join(lists, "info.json"))
	require.NoError(t, err)
	assert.Equal(t, *stats.Info, info)
	testInfo, err := ReadInfo(filepath.Join(lists, "info_test.json"))
	require.NoError(t, err)
	assert.Equal(t, *stats.TestInfo, testInfo)
	assert.NotEqual(t, info, testInfo)
}

// pngStatsScript decodes the PNGs itself (Debian's python3 has no PIL: zlib
// and NumPy undo the PNG row filters) and computes the statistics the way the
// original compute_mean_std.py did, over every listed stack.
const pngStatsScript = `
import json, struct, sys, zlib
import numpy as np

def read_png(path):
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    pos, idat = 8, b''
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos+8])
        body = data[pos+8:pos+8+n]
        if kind == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
            assert depth == 8 and ctype == 2, (depth, ctype)
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    bpp, stride = 3, 3 * w
    out = np.zeros((h, stride), np.int64)
    prev = np.zeros(stride, np.int64)
    for y in range(h):
        f = raw[y*(stride+1)]
        line = np.frombuffer(raw[y*(stride+1)+1:(y+1)*(stride+1)], np.uint8).astype(np.int64)
        cur = np.zeros(stride, np.int64)
        for x in range(stride):
            a = cur[x-bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x-bpp] if x >= bpp else 0
            if f == 0: p = 0
            elif f == 1: p = a
            elif f == 2: p = b
            elif f == 3: p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2*c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 3).astype(np.uint8)

data_dir, list_file = sys.argv[1], sys.argv[2]
paths = [l.strip() for l in open(list_file) if l.strip()]
pixels = np.vstack([read_png(data_dir + '/' + p).reshape(-1, 3) for p in paths])
mean = np.mean(pixels, axis=0) / 255
std = np.std(pixels, axis=0) / 255
print(json.dumps({'mean': mean.tolist(), 'std': std.tolist()}))
`

func TestInfoMatchesNumPy(t *testing.T) {
	data, _, _, test := preparedData(t)
	lists := t.TempDir()
	stats, err := WriteLists(data, lists, 3, nil)
	require.NoError(t, err)

	// test_images.txt lists folders; list their stacks for the script.
	var testStacks []string
	for _, c := range test {
		names, err := NumberedFiles(inData(data, Test.StackDir(c)), ".png")
		require.NoError(t, err)
		for _, n := range names {
			testStacks = append(testStacks, Test.StackDir(c)+"/"+n)
		}
	}
	testList := filepath.Join(t.TempDir(), "test_stacks.txt")
	require.NoError(t, writeList(testList, testStacks))

	for _, tc := range []struct {
		list string
		got  *Info
	}{
		{filepath.Join(lists, "train_images.txt"), stats.Info},
		{testList, stats.TestInfo},
	} {
		out := pytorchtest.Run(t, "", pngStatsScript, data, tc.list)
		var want infoJSON
		require.NoError(t, json.Unmarshal([]byte(out), &want))
		for c := range 3 {
			assert.InDelta(t, want.Mean[c], tc.got.Mean[c], 1e-12, "mean[%d] of %s", c, tc.list)
			assert.InDelta(t, want.Std[c], tc.got.Std[c], 1e-12, "std[%d] of %s", c, tc.list)
		}
	}
}

func TestWriteListsOnlyPresentSets(t *testing.T) {
	data := t.TempDir()
	writePatternSet(t, data, Test, 1, 3, 16, 16, false)
	_, err := Prep(data, 1, nil)
	require.NoError(t, err)
	lists := t.TempDir()
	stats, err := WriteLists(data, lists, 1, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, stats.TrainSlices)
	assert.Nil(t, stats.Info)
	assert.Equal(t, 1, stats.TestCubes)
	entries, err := os.ReadDir(lists)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"info_test.json", "test_images.txt"}, names)
}

func TestWriteListsErrors(t *testing.T) {
	t.Run("no set", func(t *testing.T) {
		_, err := WriteLists(t.TempDir(), t.TempDir(), 1, nil)
		assert.ErrorContains(t, err, "holds none of")
	})
	t.Run("not prepared", func(t *testing.T) {
		data := t.TempDir()
		writePatternSet(t, data, Training, 1, 3, 16, 16, true)
		_, err := WriteLists(data, t.TempDir(), 1, nil)
		assert.ErrorContains(t, err, "run `edema prep` first")
	})
	t.Run("missing label", func(t *testing.T) {
		data, train, _, _ := preparedData(t)
		missing := inData(data, Training.LabelDir(train[1])+"/4.bmp")
		require.NoError(t, os.Remove(missing))
		_, err := WriteLists(data, t.TempDir(), 1, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), missing)
	})
	t.Run("corrupt stack", func(t *testing.T) {
		data, train, _, _ := preparedData(t)
		bad := inData(data, Training.StackDir(train[2])+"/001.png")
		writeFile(t, bad, []byte("nope"))
		lists := t.TempDir()
		_, err := WriteLists(data, lists, 2, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), bad)
		_, err = os.Stat(filepath.Join(lists, "info.json"))
		assert.ErrorIs(t, err, os.ErrNotExist, "no info.json after a failure")
	})
}

func TestInfoReadWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "info.json")
	in := Info{Mean: [3]float64{0.143694, 0.143672, 0.143650}, Std: [3]float64{0.097954, 0.097920, 0.097885}}
	require.NoError(t, WriteInfo(path, in))
	out, err := ReadInfo(path)
	require.NoError(t, err)
	assert.Equal(t, in, out)

	for name, body := range map[string]string{
		"two means": `{"mean":[0.1,0.2],"std":[1,1,1]}`,
		"zero std":  `{"mean":[0.1,0.2,0.3],"std":[1,0,1]}`,
		"not json":  `mean=0.1`,
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			writeFile(t, p, []byte(body))
			_, err := ReadInfo(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), p)
		})
	}
}
