package pth

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/edema/edema/internal/atomicfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleStateDict(t *testing.T) *StateDict {
	t.Helper()
	w, err := FromFloat32([]int64{2}, []float32{1, 2})
	require.NoError(t, err)
	sd := NewStateDict()
	sd.Set("conv.weight", w)
	sd.Set("conv.bias", w.Clone())
	return sd
}

// originalStyle returns a checkpoint laid out as the original training
// scripts save theirs, with an extra entry: {'epoch', 'state_dict',
// 'dice_epoch', 'best_dice', 'arch'}, keys with "module.".
func originalStyle(sd *StateDict) *Checkpoint {
	d := NewDict()
	d.Set("epoch", int64(30))
	d.Set("state_dict", nil)
	d.Set("dice_epoch", 0.7)
	d.Set("best_dice", 0.75)
	d.Set("arch", "unet")
	return &Checkpoint{StateDict: sd, Prefix: DataParallelPrefix, Entries: d, Key: "state_dict"}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sd := sampleStateDict(t)
	for _, format := range []Format{FormatZip, FormatLegacy} {
		for _, prefix := range []string{DataParallelPrefix, ""} {
			c := originalStyle(sd)
			c.Format, c.Prefix = format, prefix
			path := filepath.Join(dir, "ckpt.pth")
			require.NoError(t, Save(path, c))
			back, err := Load(path)
			require.NoError(t, err)
			assert.Equal(t, format, back.Format)
			assert.Equal(t, prefix, back.Prefix, "the prefix is taken off and recorded")
			assert.Equal(t, sd.Keys(), back.StateDict.Keys())
			assert.Equal(t, "state_dict", back.Key)
			assert.Equal(t, []any{"epoch", "state_dict", "dice_epoch", "best_dice", "arch"}, back.Entries.Keys(), "entries in file order")
			for k, want := range map[string]any{"epoch": int64(30), "dice_epoch": 0.7, "best_dice": 0.75, "arch": "unet"} {
				got, _ := back.Entries.Get(k)
				assert.Equal(t, want, got, k)
			}

			v, _, err := ReadValue(path)
			require.NoError(t, err)
			d := v.(*Dict)
			assert.Equal(t, []any{"epoch", "state_dict", "dice_epoch", "best_dice", "arch"}, d.Keys())
			inFile, _ := d.Get("state_dict")
			fileSD, ok := AsStateDict(inFile)
			require.True(t, ok)
			assert.Equal(t, sd.WithPrefix(prefix).Keys(), fileSD.Keys(), "Save puts the prefix back")

			// Save writes what Load read.
			again := filepath.Join(dir, "again.pth")
			require.NoError(t, Save(again, back))
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			got, err := os.ReadFile(again)
			require.NoError(t, err)
			assert.Equal(t, want, got, "%s with prefix %q", format, prefix)
		}
	}

	bare := &Checkpoint{StateDict: sd}
	path := filepath.Join(dir, "bare.pth")
	require.NoError(t, Save(path, bare))
	back, err := Load(path)
	require.NoError(t, err)
	assert.Nil(t, back.Entries)
	assert.Empty(t, back.Key)
	assert.Empty(t, back.Prefix)
	v, _, err := ReadValue(path)
	require.NoError(t, err)
	assert.True(t, v.(*Dict).Ordered, "a bare state dict is the OrderedDict state_dict() returns")
}

func TestSaveRefusesWhatItCannotWrite(t *testing.T) {
	sd := sampleStateDict(t)
	bad := &Tensor{DType: Float32, Shape: []int64{3}, Data: []byte{1}}
	badSD := NewStateDict()
	badSD.Set("x", bad)
	// with returns a checkpoint of sd whose dict holds value under "other".
	with := func(value any) *Checkpoint {
		d := NewDict()
		d.Set("state_dict", nil)
		d.Set("other", value)
		return &Checkpoint{StateDict: sd, Entries: d, Key: "state_dict"}
	}
	withFormat := func(c *Checkpoint, f Format) *Checkpoint { c.Format = f; return c }
	intKey := NewDict()
	intKey.Set(int64(3), "x")
	cases := map[string]struct {
		c    *Checkpoint
		want string
	}{
		"no state dict":          {&Checkpoint{}, "checkpoint has no state dict"},
		"prefix twice":           {&Checkpoint{StateDict: sd.WithPrefix(DataParallelPrefix), Prefix: DataParallelPrefix}, `state dict keys already start with "module."`},
		"short tensor data":      {&Checkpoint{StateDict: badSD, Prefix: DataParallelPrefix}, "float32 tensor of shape [3] needs 12 bytes of data, has 1"},
		"short tensor data st":   {&Checkpoint{StateDict: badSD, Prefix: DataParallelPrefix, Format: FormatSafetensors}, `tensor "module.x": float32 tensor of shape [3] needs 12 bytes of data, has 1`},
		"device in an entry":     {with(Device("cuda:0")), "torch.device values cannot be written: PyTorch's weights_only loader does not accept them"},
		"bytes in an entry":      {with([]byte("x")), "bytes values cannot be written"},
		"Go type":                {with(struct{}{}), "cannot write a value of Go type struct {}"},
		"invalid utf-8":          {with("\xff"), `string "\xff" is not valid UTF-8`},
		"format pickle":          {&Checkpoint{StateDict: sd, Format: FormatPickle}, "cannot write format pickle"},
		"self-containing value":  {with(selfContaining()), "value nests deeper than 1000 levels (does it contain itself?)"},
		"no entry at Key":        {&Checkpoint{StateDict: sd, Entries: intKey, Key: "model"}, `checkpoint Key "model" is not an entry of Entries`},
		"dict in safetensors":    {withFormat(with(NewDict()), FormatSafetensors), `safetensors metadata holds strings, not entry "other" (a dict)`},
		"list in safetensors":    {withFormat(with([]any{1.0}), FormatSafetensors), `not entry "other" (a list)`},
		"tensor in safetensors":  {withFormat(with(bad), FormatSafetensors), `not entry "other" (a tensor)`},
		"int key in safetensors": {&Checkpoint{StateDict: sd, Entries: intKey, Format: FormatSafetensors}, "safetensors metadata has string keys only, not the int key of entry 3"},
		"utf-8 in safetensors":   {withFormat(with("\xff"), FormatSafetensors), `safetensors metadata entry "other": "\xff" is not valid UTF-8`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			assert.ErrorContains(t, Encode(io.Discard, c.c), c.want)
		})
	}
}

func selfContaining() []any {
	l := []any{nil}
	l[0] = l
	return l
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model_best.pth.tar")
	old := []byte("the previous checkpoint")
	require.NoError(t, os.WriteFile(path, old, 0o644))
	requireOnlyOld := func(t *testing.T) {
		t.Helper()
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, old, got)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "a temporary file was left behind")
	}

	t.Run("encoding fails", func(t *testing.T) {
		bad := NewStateDict()
		bad.Set("x", &Tensor{DType: Float32, Shape: []int64{3}})
		assert.Error(t, Save(path, &Checkpoint{StateDict: bad}))
		requireOnlyOld(t)
	})
	t.Run("writing fails midway", func(t *testing.T) {
		failure := errors.New("disk full")
		err := atomicfile.Write(path, func(w io.Writer) error {
			// More than the write buffer, so part of it reaches the file.
			if _, err := w.Write(bytes.Repeat([]byte{7}, 3<<20)); err != nil {
				return err
			}
			return failure
		})
		assert.ErrorIs(t, err, failure)
		requireOnlyOld(t)
	})
	t.Run("read-only folder", func(t *testing.T) {
		require.NoError(t, os.Chmod(dir, 0o555))
		defer os.Chmod(dir, 0o755)
		if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
			f.Close()
			os.Remove(f.Name())
			t.Skip("permissions are not enforced for this user (root)")
		}
		assert.Error(t, Save(path, &Checkpoint{StateDict: sampleStateDict(t)}))
		requireOnlyOld(t)
	})
	t.Run("success replaces", func(t *testing.T) {
		require.NoError(t, Save(path, &Checkpoint{StateDict: sampleStateDict(t)}))
		c, err := Load(path)
		require.NoError(t, err)
		assert.Equal(t, 2, c.StateDict.Len())
		info, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
	})
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.pth")
	require.NoError(t, os.WriteFile(path, []byte("PK\x03\x04garbage"), 0o644))
	_, err := Load(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken.pth")
	_, err = Load(filepath.Join(t.TempDir(), "missing.pth"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestFromValueFindsTheStateDict(t *testing.T) {
	sd := sampleStateDict(t)
	for _, key := range []string{"state_dict", "model", "net"} {
		d := NewDict()
		d.Set("epoch", int64(2))
		d.Set(key, sd.WithPrefix(DataParallelPrefix))
		d.Set("note", "x")
		c, err := FromValue(d)
		require.NoError(t, err, key)
		assert.Equal(t, sd.Keys(), c.StateDict.Keys())
		assert.Equal(t, DataParallelPrefix, c.Prefix)
		assert.Equal(t, key, c.Key)
		assert.Same(t, d, c.Entries, "the file's dict as it is")
		assert.Equal(t, []any{"epoch", key, "note"}, c.Entries.Keys())
	}
	// The original's entry wins over the others'.
	d := NewDict()
	d.Set("net", sd)
	d.Set("state_dict", sd)
	c, err := FromValue(d)
	require.NoError(t, err)
	assert.Equal(t, "state_dict", c.Key)
	// A dict of tensors alone is a bare state dict.
	c, err = FromValue(sd.WithPrefix(DataParallelPrefix))
	require.NoError(t, err)
	assert.Nil(t, c.Entries)
	assert.Equal(t, DataParallelPrefix, c.Prefix)

	d = NewDict()
	d.Set("state_dict", []any{})
	_, err = FromValue(d)
	assert.ErrorContains(t, err, `entry "state_dict" is a list`)
	d = NewDict()
	d.Set("weights", sd)
	_, err = FromValue(d)
	assert.ErrorContains(t, err, "keys [weights]")
}
