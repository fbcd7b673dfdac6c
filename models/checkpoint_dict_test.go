package models

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch/pth"
)

// The original's checkpoint dict, read and written without a network.

func sampleStateDict(t *testing.T) *pth.StateDict {
	t.Helper()
	w, err := pth.FromFloat32([]int64{2}, []float32{1, 2})
	require.NoError(t, err)
	sd := pth.NewStateDict()
	sd.Set("conv.weight", w)
	sd.Set("conv.bias", w.Clone())
	return sd
}

func TestCheckpointSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sd := sampleStateDict(t)
	epoch, best, diceEpoch := int64(30), 0.75, 0.7
	extra := pth.NewDict()
	extra.Set("arch", "unet")
	c := &Checkpoint{StateDict: sd, Epoch: &epoch, BestDice: &best, DiceEpoch: &diceEpoch, Extra: extra}
	for _, opts := range []SaveOptions{{}, {Format: pth.FormatLegacy}, {PlainKeys: true}, {Format: pth.FormatLegacy, PlainKeys: true}} {
		path := filepath.Join(dir, "ckpt.pth")
		require.NoError(t, c.Save(path, opts))
		back, err := ReadCheckpoint(path)
		require.NoError(t, err)
		assert.Equal(t, opts.Format, back.Format)
		assert.Equal(t, !opts.PlainKeys, back.Prefix == pth.DataParallelPrefix)
		assert.Equal(t, sd.Keys(), back.StateDict.Keys())
		assert.Equal(t, epoch, *back.Epoch)
		assert.Equal(t, best, *back.BestDice)
		assert.Equal(t, diceEpoch, *back.DiceEpoch)
		assert.Equal(t, []any{"arch"}, back.Extra.Keys())
		assert.False(t, back.Bare)

		v, _, err := pth.ReadValue(path)
		require.NoError(t, err)
		d := v.(*pth.Dict)
		assert.Equal(t, []any{"epoch", "state_dict", "dice_epoch", "best_dice", "arch"}, d.Keys())
	}

	bare := &Checkpoint{StateDict: sd, Bare: true}
	path := filepath.Join(dir, "bare.pth")
	require.NoError(t, bare.Save(path, SaveOptions{}))
	back, err := ReadCheckpoint(path)
	require.NoError(t, err)
	assert.True(t, back.Bare)
	assert.Nil(t, back.Epoch)
	assert.Equal(t, pth.DataParallelPrefix, back.Prefix)
}

func TestCheckpointSaveRefusesWhatItCannotWrite(t *testing.T) {
	sd := sampleStateDict(t)
	epoch := int64(1)
	bad := &pth.Tensor{DType: pth.Float32, Shape: []int64{3}, Data: []byte{1}}
	badSD := pth.NewStateDict()
	badSD.Set("x", bad)
	collides := pth.NewDict()
	collides.Set("epoch", "again")
	cases := map[string]struct {
		c    *Checkpoint
		opts SaveOptions
		want string
	}{
		"no state dict":         {&Checkpoint{}, SaveOptions{}, "checkpoint has no state dict"},
		"bare with metadata":    {&Checkpoint{StateDict: sd, Bare: true, Epoch: &epoch}, SaveOptions{}, "a bare state dict cannot carry epoch, dice, optimizer or other entries"},
		"prefix twice":          {&Checkpoint{StateDict: sd.WithPrefix(pth.DataParallelPrefix)}, SaveOptions{}, `state dict keys already start with "module."`},
		"short tensor data":     {&Checkpoint{StateDict: badSD}, SaveOptions{}, "float32 tensor of shape [3] needs 12 bytes of data, has 1"},
		"short tensor data st":  {&Checkpoint{StateDict: badSD}, SaveOptions{Format: pth.FormatSafetensors}, `tensor "module.x": float32 tensor of shape [3] needs 12 bytes of data, has 1`},
		"device in optimizer":   {&Checkpoint{StateDict: sd, Optimizer: pth.Device("cuda:0")}, SaveOptions{}, "torch.device values cannot be written: PyTorch's weights_only loader does not accept them"},
		"bytes in optimizer":    {&Checkpoint{StateDict: sd, Optimizer: []byte("x")}, SaveOptions{}, "bytes values cannot be written"},
		"Go type":               {&Checkpoint{StateDict: sd, Optimizer: struct{}{}}, SaveOptions{}, "cannot write a value of Go type struct {}"},
		"invalid utf-8":         {&Checkpoint{StateDict: sd, Optimizer: "\xff"}, SaveOptions{}, `string "\xff" is not valid UTF-8`},
		"format pickle":         {&Checkpoint{StateDict: sd}, SaveOptions{Format: pth.FormatPickle}, "cannot write format pickle"},
		"self-containing value": {&Checkpoint{StateDict: sd, Optimizer: selfContaining()}, SaveOptions{}, "value nests deeper than 1000 levels (does it contain itself?)"},
		"extra collides":        {&Checkpoint{StateDict: sd, Epoch: &epoch, Extra: collides}, SaveOptions{}, "extra checkpoint entry epoch collides with a standard one"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			assert.ErrorContains(t, c.c.Encode(io.Discard, c.opts), c.want)
		})
	}
}

func selfContaining() []any {
	l := []any{nil}
	l[0] = l
	return l
}

func TestCheckpointReadsTheOriginalsEntries(t *testing.T) {
	sd := sampleStateDict(t)
	for _, key := range []string{"state_dict", "model", "net"} {
		d := pth.NewDict()
		d.Set("epoch", int64(2))
		d.Set(key, sd.WithPrefix(pth.DataParallelPrefix))
		f, err := pth.FromValue(d)
		require.NoError(t, err, key)
		c, err := fromFile(f)
		require.NoError(t, err, key)
		assert.Equal(t, sd.Keys(), c.StateDict.Keys())
		assert.Equal(t, pth.DataParallelPrefix, c.Prefix)
		assert.Equal(t, int64(2), *c.Epoch)
		assert.Nil(t, c.Extra, "the state dict is no extra entry")
		assert.False(t, c.Bare)
	}
	// Metrics saved as 0-d tensors or ints still read as numbers; entries
	// of other types stay in Extra untouched.
	dice, err := pth.FromFloat32(nil, []float32{0.5})
	require.NoError(t, err)
	d := pth.NewDict()
	d.Set("state_dict", sd)
	d.Set("best_dice", dice)
	d.Set("dice_epoch", int64(1))
	d.Set("epoch", "seven")
	f, err := pth.FromValue(d)
	require.NoError(t, err)
	c, err := fromFile(f)
	require.NoError(t, err)
	assert.Equal(t, 0.5, *c.BestDice)
	assert.Equal(t, 1.0, *c.DiceEpoch)
	assert.Nil(t, c.Epoch)
	epoch, _ := c.Extra.Get("epoch")
	assert.Equal(t, "seven", epoch)
}

func TestCheckpointSafetensorsRoundTrip(t *testing.T) {
	w, err := pth.FromFloat32([]int64{2, 2}, []float32{1, 2, 3, 4})
	require.NoError(t, err)
	sd := pth.NewStateDict()
	sd.Set("a.weight", w)
	epoch, best, diceEpoch := int64(17), 0.7361234567891234, 0.1
	extra := pth.NewDict()
	extra.Set("arch", "unet")
	extra.Set("mean", []any{0.1, 0.2, 0.3})
	optimizer := pth.NewDict()
	optimizer.Set("state", pth.NewDict())
	c := &Checkpoint{StateDict: sd, Epoch: &epoch, BestDice: &best, DiceEpoch: &diceEpoch, Optimizer: optimizer, Extra: extra}
	assert.Equal(t, []string{"the optimizer state", `entry "mean"`}, c.SafetensorsLeavesOut())

	for _, plain := range []bool{false, true} {
		var buf bytes.Buffer
		require.NoError(t, c.Encode(&buf, SaveOptions{Format: pth.FormatSafetensors, PlainKeys: plain}))
		back, err := DecodeCheckpoint(buf.Bytes())
		require.NoError(t, err)
		assert.Equal(t, pth.FormatSafetensors, back.Format)
		assert.Equal(t, !plain, back.Prefix == pth.DataParallelPrefix)
		assert.Equal(t, epoch, *back.Epoch)
		assert.Equal(t, best, *back.BestDice)
		assert.Equal(t, diceEpoch, *back.DiceEpoch)
		assert.Nil(t, back.Optimizer, "safetensors has no room for the optimizer state")
		assert.Equal(t, []any{"arch"}, back.Extra.Keys(), "the entries that fit a metadata string")
		assert.False(t, back.Bare)
		assert.Equal(t, sd.Keys(), back.StateDict.Keys())

		// The metadata strings themselves.
		f, err := pth.Decode(buf.Bytes())
		require.NoError(t, err)
		meta := map[string]any{}
		for _, k := range f.Entries.Keys() {
			meta[k.(string)], _ = f.Entries.Get(k)
		}
		assert.Equal(t, map[string]any{"epoch": "17", "best_dice": "0.7361234567891234", "dice_epoch": "0.1", "arch": "unet"}, meta)
	}

	var buf bytes.Buffer
	require.NoError(t, (&Checkpoint{StateDict: sd, Bare: true}).Encode(&buf, SaveOptions{Format: pth.FormatSafetensors}))
	back, err := DecodeCheckpoint(buf.Bytes())
	require.NoError(t, err)
	assert.True(t, back.Bare)
	assert.Empty(t, (&Checkpoint{StateDict: sd}).SafetensorsLeavesOut())
}

// safetensorsFile returns a safetensors file of the JSON header given and
// two bytes of data.
func safetensorsFile(header string) []byte {
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(file, header...), 0, 0)
}

func TestCheckpointReadsSafetensorsMetadata(t *testing.T) {
	c, err := DecodeCheckpoint(safetensorsFile(`{"__metadata__":{"epoch":"3","note":"hi"},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`))
	require.NoError(t, err)
	assert.Equal(t, int64(3), *c.Epoch)
	note, _ := c.Extra.Get("note")
	assert.Equal(t, "hi", note)
	assert.False(t, c.Bare)

	c, err = DecodeCheckpoint(safetensorsFile(`{"__metadata__":{"format":"pt"},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`))
	require.NoError(t, err)
	assert.True(t, c.Bare)

	for header, want := range map[string]string{
		`{"__metadata__":{"epoch":"three"},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`:    `safetensors metadata epoch "three" is not an integer`,
		`{"__metadata__":{"best_dice":"high"},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`: `safetensors metadata best_dice "high" is not a number`,
		`{"__metadata__":{"dice_epoch":""},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`:    `safetensors metadata dice_epoch "" is not a number`,
	} {
		_, err := DecodeCheckpoint(safetensorsFile(header))
		assert.ErrorContains(t, err, want)
	}
}

// TestCheckpointsOfPyTorch113 reads the original-style checkpoints that
// PyTorch 1.13 wrote for package torch/pth's fuzz corpus, so that the
// original's entries are checked even where PyTorch is not installed.
func TestCheckpointsOfPyTorch113(t *testing.T) {
	// torch.save({"epoch": 3, "state_dict": DataParallel(Sequential(Conv2d(1, 2, 1),
	// BatchNorm2d(2))).state_dict(), "dice_epoch": 0.5, "best_dice": np.float64(0.625)})
	for name, format := range map[string]pth.Format{"torch113_legacy": pth.FormatLegacy, "torch113_zip": pth.FormatZip} {
		b, err := os.ReadFile(filepath.Join("..", "torch", "pth", "testdata", "fuzz", "FuzzLoad", name))
		require.NoError(t, err)
		quoted := strings.TrimSuffix(strings.TrimPrefix(string(b), "go test fuzz v1\n[]byte("), ")\n")
		data, err := strconv.Unquote(quoted)
		require.NoError(t, err)
		c, err := DecodeCheckpoint([]byte(data))
		require.NoError(t, err, name)
		assert.Equal(t, format, c.Format)
		assert.Equal(t, pth.DataParallelPrefix, c.Prefix)
		assert.Equal(t, int64(3), *c.Epoch)
		assert.Equal(t, 0.625, *c.BestDice)
		assert.Equal(t, 0.5, *c.DiceEpoch)
		assert.Nil(t, c.Extra)
		assert.Equal(t, 7, c.StateDict.Len())
	}
}

// TestReadsPyTorchCheckpointDicts reads checkpoint dicts that PyTorch
// wrote: the original's with numpy's best_dice and an optimizer's state,
// in both torch.save formats; another trainer's under "model"; a bare
// DataParallel state dict.
func TestReadsPyTorchCheckpointDicts(t *testing.T) {
	dir := t.TempDir()
	pytorchtest.Run(t, dir, `
import os, sys, numpy as np, torch, torch.nn as nn
out = sys.argv[1]
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
dp = nn.DataParallel(net)
opt = torch.optim.Adam(dp.parameters(), lr=1e-3)
dp(torch.randn(2, 3, 8, 8)).sum().backward()
opt.step()
ckpt = {"epoch": 12, "state_dict": dp.state_dict(), "dice_epoch": 0.71,
        "best_dice": np.float64(0.7361), "optimizer": opt.state_dict()}
torch.save(ckpt, os.path.join(out, "ckpt_zip.pth"))
torch.save(ckpt, os.path.join(out, "ckpt_legacy.pth"), _use_new_zipfile_serialization=False)
torch.save({"model": net.state_dict(), "epoch": 3, "note": "x"}, os.path.join(out, "model_key.pth"))
torch.save(dp.state_dict(), os.path.join(out, "bare_dp_legacy.pth"), _use_new_zipfile_serialization=False)
`, dir)
	for name, format := range map[string]pth.Format{"ckpt_zip.pth": pth.FormatZip, "ckpt_legacy.pth": pth.FormatLegacy} {
		t.Run(name, func(t *testing.T) {
			c, err := ReadCheckpoint(filepath.Join(dir, name))
			require.NoError(t, err)
			assert.Equal(t, format, c.Format)
			assert.Equal(t, pth.DataParallelPrefix, c.Prefix)
			assert.False(t, c.Bare)
			require.NotNil(t, c.Epoch)
			assert.Equal(t, int64(12), *c.Epoch)
			require.NotNil(t, c.BestDice)
			assert.Equal(t, 0.7361, *c.BestDice)
			require.NotNil(t, c.DiceEpoch)
			assert.Equal(t, 0.71, *c.DiceEpoch)
			assert.Nil(t, c.Extra)
			assert.Equal(t, 7, c.StateDict.Len())
			opt, ok := c.Optimizer.(*pth.Dict)
			require.True(t, ok, "optimizer is %T", c.Optimizer)
			assert.Equal(t, []any{"state", "param_groups"}, opt.Keys())
		})
	}
	c, err := ReadCheckpoint(filepath.Join(dir, "model_key.pth"))
	require.NoError(t, err)
	assert.Equal(t, "", c.Prefix)
	assert.Equal(t, int64(3), *c.Epoch)
	assert.Equal(t, []any{"note"}, c.Extra.Keys())
	assert.Equal(t, 7, c.StateDict.Len())

	c, err = ReadCheckpoint(filepath.Join(dir, "bare_dp_legacy.pth"))
	require.NoError(t, err)
	assert.True(t, c.Bare)
	assert.Equal(t, pth.DataParallelPrefix, c.Prefix)
	assert.Equal(t, pth.FormatLegacy, c.Format)
}
