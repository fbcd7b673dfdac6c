package pth

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzLoad feeds arbitrary bytes to the reader, which must return (an
// error or a checkpoint) without panicking, hanging or allocating without
// bound; a checkpoint it returns must survive writing and reading back.
// The seeds are small files of each format; testdata/fuzz/FuzzLoad adds
// files written by PyTorch 1.13.
func FuzzLoad(f *testing.F) {
	for _, data := range smallFiles(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decode(data)
		if err != nil {
			return
		}
		if c.Format == FormatPickle {
			c.Format = FormatZip // a format Save writes
		}
		var buf bytes.Buffer
		if err := Encode(&buf, c); err != nil {
			return // values PyTorch's safe loader could not read back either
		}
		back, err := decode(buf.Bytes())
		if err != nil {
			t.Fatalf("reading back a written checkpoint: %v", err)
		}
		if back.Format != c.Format || back.Prefix != c.Prefix || back.Key != c.Key {
			t.Fatalf("read back format %s, prefix %q, key %q; wrote %s, %q, %q", back.Format, back.Prefix, back.Key, c.Format, c.Prefix, c.Key)
		}
		if !slices.Equal(back.Entries.Keys(), c.Entries.Keys()) {
			t.Fatalf("read back entries %v, wrote %v", back.Entries.Keys(), c.Entries.Keys())
		}
		if back.StateDict.Len() != c.StateDict.Len() {
			t.Fatalf("wrote %d tensors, read back %d", c.StateDict.Len(), back.StateDict.Len())
		}
		for _, k := range c.StateDict.Keys() {
			want, _ := c.StateDict.Get(k)
			got, ok := back.StateDict.Get(k)
			if !ok || !got.Equal(want) {
				t.Fatalf("tensor %q changed on writing and reading back", k)
			}
		}
	})
}

// TestFilesOfPyTorch113 reads the seed files PyTorch 1.13 wrote, so that
// both torch.save formats are checked even where PyTorch is not installed.
func TestFilesOfPyTorch113(t *testing.T) {
	seed := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzLoad", name))
		require.NoError(t, err)
		quoted := strings.TrimSuffix(strings.TrimPrefix(string(b), "go test fuzz v1\n[]byte("), ")\n")
		data, err := strconv.Unquote(quoted)
		require.NoError(t, err)
		return []byte(data)
	}
	// torch.save({"epoch": 3, "state_dict": DataParallel(Sequential(Conv2d(1, 2, 1),
	// BatchNorm2d(2))).state_dict(), "dice_epoch": 0.5, "best_dice": np.float64(0.625)})
	for name, format := range map[string]Format{"torch113_legacy": FormatLegacy, "torch113_zip": FormatZip} {
		c, err := decode(seed(name))
		require.NoError(t, err, name)
		assert.Equal(t, format, c.Format)
		assert.Equal(t, DataParallelPrefix, c.Prefix)
		assert.Equal(t, "state_dict", c.Key)
		assert.Equal(t, []any{"epoch", "state_dict", "dice_epoch", "best_dice"}, c.Entries.Keys())
		for k, want := range map[string]any{"epoch": int64(3), "dice_epoch": 0.5, "best_dice": 0.625} {
			got, _ := c.Entries.Get(k)
			assert.Equal(t, want, got, "%s: %s", name, k)
		}
		assert.Equal(t, []string{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
			"1.running_var", "1.num_batches_tracked"}, c.StateDict.Keys())
		v, _ := c.StateDict.Get("1.running_var")
		ones, err := v.Float32s()
		require.NoError(t, err)
		assert.Equal(t, []float32{1, 1}, ones)
	}
	// pickle.dump(OrderedDict(v=arange(6.).reshape(2, 3)[:, 1:], s=tensor(5)), protocol=4)
	c, err := decode(seed("torch113_plain_pickle"))
	require.NoError(t, err)
	assert.Equal(t, FormatPickle, c.Format)
	assert.Nil(t, c.Entries)
	v, _ := c.StateDict.Get("v")
	assert.Equal(t, []int64{2, 2}, v.Shape)
	got, err := v.Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 4, 5}, got)
	s, _ := c.StateDict.Get("s")
	n, err := s.Int64s()
	require.NoError(t, err)
	assert.Equal(t, []int64{5}, n)
}
