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

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sd := sampleStateDict(t)
	epoch, best, diceEpoch := int64(30), 0.75, 0.7
	extra := NewDict()
	extra.Set("arch", "unet")
	c := &Checkpoint{StateDict: sd, Epoch: &epoch, BestDice: &best, DiceEpoch: &diceEpoch, Extra: extra}
	for _, opts := range []SaveOptions{{}, {Format: FormatLegacy}, {PlainKeys: true}, {Format: FormatLegacy, PlainKeys: true}} {
		path := filepath.Join(dir, "ckpt.pth")
		require.NoError(t, Save(path, c, opts))
		back, err := Load(path)
		require.NoError(t, err)
		assert.Equal(t, opts.Format, back.Format)
		assert.Equal(t, !opts.PlainKeys, back.Prefix == DataParallelPrefix)
		assert.Equal(t, sd.Keys(), back.StateDict.Keys())
		assert.Equal(t, epoch, *back.Epoch)
		assert.Equal(t, best, *back.BestDice)
		assert.Equal(t, diceEpoch, *back.DiceEpoch)
		assert.Equal(t, []any{"arch"}, back.Extra.Keys())

		v, _, err := ReadValue(path)
		require.NoError(t, err)
		d := v.(*Dict)
		assert.Equal(t, []any{"epoch", "state_dict", "dice_epoch", "best_dice", "arch"}, d.Keys())
	}

	bare := &Checkpoint{StateDict: sd, Bare: true}
	path := filepath.Join(dir, "bare.pth")
	require.NoError(t, Save(path, bare, SaveOptions{}))
	back, err := Load(path)
	require.NoError(t, err)
	assert.True(t, back.Bare)
	assert.Nil(t, back.Epoch)
}

func TestSaveRefusesWhatItCannotWrite(t *testing.T) {
	sd := sampleStateDict(t)
	epoch := int64(1)
	bad := &Tensor{DType: Float32, Shape: []int64{3}, Data: []byte{1}}
	badSD := NewStateDict()
	badSD.Set("x", bad)
	cases := map[string]struct {
		c    *Checkpoint
		opts SaveOptions
		want string
	}{
		"no state dict":         {&Checkpoint{}, SaveOptions{}, "checkpoint has no state dict"},
		"bare with metadata":    {&Checkpoint{StateDict: sd, Bare: true, Epoch: &epoch}, SaveOptions{}, "a bare state dict cannot carry epoch, dice, optimizer or other entries"},
		"prefix twice":          {&Checkpoint{StateDict: sd.WithPrefix(DataParallelPrefix)}, SaveOptions{}, `state dict keys already start with "module."`},
		"short tensor data":     {&Checkpoint{StateDict: badSD}, SaveOptions{}, "float32 tensor of shape [3] needs 12 bytes of data, has 1"},
		"short tensor data st":  {&Checkpoint{StateDict: badSD}, SaveOptions{Format: FormatSafetensors}, `tensor "module.x": float32 tensor of shape [3] needs 12 bytes of data, has 1`},
		"device in optimizer":   {&Checkpoint{StateDict: sd, Optimizer: Device("cuda:0")}, SaveOptions{}, "torch.device values cannot be written: PyTorch's weights_only loader does not accept them"},
		"bytes in optimizer":    {&Checkpoint{StateDict: sd, Optimizer: []byte("x")}, SaveOptions{}, "bytes values cannot be written"},
		"Go type":               {&Checkpoint{StateDict: sd, Optimizer: struct{}{}}, SaveOptions{}, "cannot write a value of Go type struct {}"},
		"invalid utf-8":         {&Checkpoint{StateDict: sd, Optimizer: "\xff"}, SaveOptions{}, `string "\xff" is not valid UTF-8`},
		"format pickle":         {&Checkpoint{StateDict: sd}, SaveOptions{Format: FormatPickle}, "cannot write format pickle"},
		"self-containing value": {&Checkpoint{StateDict: sd, Optimizer: selfContaining()}, SaveOptions{}, "value nests deeper than 1000 levels (does it contain itself?)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			assert.ErrorContains(t, Encode(io.Discard, c.c, c.opts), c.want)
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
		assert.Error(t, Save(path, &Checkpoint{StateDict: bad}, SaveOptions{}))
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
		assert.Error(t, Save(path, &Checkpoint{StateDict: sampleStateDict(t)}, SaveOptions{}))
		requireOnlyOld(t)
	})
	t.Run("success replaces", func(t *testing.T) {
		require.NoError(t, Save(path, &Checkpoint{StateDict: sampleStateDict(t), Bare: true}, SaveOptions{}))
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
		c, err := FromValue(d)
		require.NoError(t, err, key)
		assert.Equal(t, sd.Keys(), c.StateDict.Keys())
		assert.Equal(t, DataParallelPrefix, c.Prefix)
	}
	// Metrics saved as 0-d tensors or ints still read as numbers; entries
	// of other types stay in Extra untouched.
	dice, err := FromFloat32(nil, []float32{0.5})
	require.NoError(t, err)
	d := NewDict()
	d.Set("state_dict", sd)
	d.Set("best_dice", dice)
	d.Set("dice_epoch", int64(1))
	d.Set("epoch", "seven")
	c, err := FromValue(d)
	require.NoError(t, err)
	assert.Equal(t, 0.5, *c.BestDice)
	assert.Equal(t, 1.0, *c.DiceEpoch)
	assert.Nil(t, c.Epoch)
	epoch, _ := c.Extra.Get("epoch")
	assert.Equal(t, "seven", epoch)

	d = NewDict()
	d.Set("state_dict", []any{})
	_, err = FromValue(d)
	assert.ErrorContains(t, err, `entry "state_dict" is a list`)
	d = NewDict()
	d.Set("weights", sd)
	_, err = FromValue(d)
	assert.ErrorContains(t, err, "keys [weights]")
}
