package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/models"
	"github.com/edema/edema/torch/pth"
)

// runCheckpointCommand runs "edema convert" or "edema inspect" and returns
// its standard output and error output.
func runCheckpointCommand(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name:           "edema",
		Commands:       []*cli.Command{convertCommand(), inspectCommand()},
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append([]string{"edema"}, args...))
	return out.String(), errOut.String(), err
}

// unetStateDict returns a state dict with the keys, dtypes and shapes of
// the original UNet (testdata/keys-unet.txt), filled with a pattern, and the
// parameter count the key list states.
func unetStateDict(t *testing.T) (*pth.StateDict, int64) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "keys-unet.txt"))
	require.NoError(t, err)
	defer f.Close()
	sd := pth.NewStateDict()
	var params int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# state_dict") {
			// "# state_dict of unet: 98 entries, 2466151 trainable parameters"
			fields := strings.Fields(line)
			params, err = strconv.ParseInt(fields[len(fields)-3], 10, 64)
			require.NoError(t, err)
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		parts := strings.Split(line, "\t")
		require.Len(t, parts, 3, line)
		dtype, err := pth.ParseDType(parts[1])
		require.NoError(t, err)
		var shape []int64
		numel := int64(1)
		for _, d := range strings.FieldsFunc(parts[2], func(r rune) bool { return r == '[' || r == ']' || r == ',' || r == ' ' }) {
			n, err := strconv.ParseInt(d, 10, 64)
			require.NoError(t, err)
			shape = append(shape, n)
			numel *= n
		}
		data := make([]byte, numel*int64(dtype.ElemSize()))
		for i := range data {
			data[i] = byte(i*7 + sd.Len())
		}
		sd.Set(parts[0], &pth.Tensor{DType: dtype, Shape: shape, Data: data})
	}
	require.NoError(t, sc.Err())
	require.Positive(t, params)
	return sd, params
}

func TestInspectCommand(t *testing.T) {
	sd, params := unetStateDict(t)
	path := filepath.Join(t.TempDir(), "model_best.pth.tar")
	epoch, best, diceEpoch := int64(41), 0.7361, 0.7012
	opt := pth.NewDict()
	group := pth.NewDict()
	group.Set("lr", 0.001)
	opt.Set("state", pth.NewDict())
	opt.Set("param_groups", []any{group})
	extra := pth.NewDict()
	extra.Set("arch", "unet")
	require.NoError(t, (&models.Checkpoint{StateDict: sd, Epoch: &epoch, BestDice: &best, DiceEpoch: &diceEpoch,
		Optimizer: opt, Extra: extra}).Save(path, models.SaveOptions{Format: pth.FormatLegacy}))

	out, _, err := runCheckpointCommand(t, "inspect", path)
	require.NoError(t, err)
	for _, want := range []string{
		"format:        legacy (torch.save, PyTorch 0.4 to 1.5)\n",
		"contents:      checkpoint dict\n",
		"key prefix:    module. (DataParallel)\n",
		"network:       unet\n",
		"epoch:         41\n",
		"best_dice:     0.7361\n",
		"dice_epoch:    0.7012\n",
		"optimizer:     state of 0 parameters in 1 groups, lr 0.001\n",
		"other entries: arch\n",
		"tensors:    98\n",
		"parameters: " + strconv.FormatInt(params, 10) + " (not counting 30 BatchNorm buffers of 1994 elements)\n",
	} {
		assert.Contains(t, out, want)
	}
	// Every tensor, in order, without the prefix.
	var table []string
	for _, line := range strings.Split(out[strings.Index(out, "KEY "):], "\n")[1:] {
		if line != "" {
			table = append(table, strings.Fields(line)[0])
		}
	}
	assert.Equal(t, sd.Keys(), table)
	assert.Regexp(t, `\nconv1\.conv1\.0\.weight +float32 \[16, 3, 3, 3\]\n`, out)
	assert.Regexp(t, `\nconv1\.conv1\.1\.num_batches_tracked +int64 +\[\]\n`, out)

	_, _, err = runCheckpointCommand(t, "inspect")
	assert.ErrorContains(t, err, "inspect: expected one PATH")
	bad := filepath.Join(t.TempDir(), "bad.pth")
	require.NoError(t, os.WriteFile(bad, []byte("\x80\x02cos\nsystem\n."), 0o644))
	_, _, err = runCheckpointCommand(t, "inspect", bad)
	assert.ErrorContains(t, err, "refusing global os.system")
}

func TestConvertCommand(t *testing.T) {
	sd, _ := unetStateDict(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "checkpoint_latest.pth.tar")
	epoch := int64(3)
	opt := pth.NewDict()
	opt.Set("state", pth.NewDict())
	require.NoError(t, (&models.Checkpoint{StateDict: sd, Epoch: &epoch, Optimizer: opt}).Save(src, models.SaveOptions{Format: pth.FormatLegacy}))

	requireSameTensors := func(t *testing.T, path string) *models.Checkpoint {
		t.Helper()
		c, err := models.ReadCheckpoint(path)
		require.NoError(t, err)
		require.Equal(t, sd.Keys(), sortedLike(sd.Keys(), c.StateDict.Keys()))
		for _, k := range sd.Keys() {
			want, _ := sd.Get(k)
			got, _ := c.StateDict.Get(k)
			require.True(t, want.Equal(got), k)
		}
		return c
	}

	zipped := filepath.Join(dir, "out.pth")
	out, _, err := runCheckpointCommand(t, "convert", src, zipped)
	require.NoError(t, err)
	assert.Equal(t, "wrote "+zipped+": zip, 98 tensors, keys prefixed module.\n", out)
	c := requireSameTensors(t, zipped)
	assert.Equal(t, pth.FormatZip, c.Format)
	assert.Equal(t, pth.DataParallelPrefix, c.Prefix)
	assert.Equal(t, epoch, *c.Epoch)
	assert.NotNil(t, c.Optimizer)

	// Flags after the arguments, as the usage shows them, and before.
	legacy := filepath.Join(dir, "plain.pth")
	_, _, err = runCheckpointCommand(t, "convert", zipped, legacy, "--format", "legacy", "--prefix=none")
	require.NoError(t, err)
	c = requireSameTensors(t, legacy)
	assert.Equal(t, pth.FormatLegacy, c.Format)
	assert.Equal(t, "", c.Prefix)

	st := filepath.Join(dir, "model.safetensors")
	_, stderr, err := runCheckpointCommand(t, "convert", "--format", "safetensors", legacy, st)
	require.NoError(t, err)
	assert.Contains(t, stderr, "safetensors has no room for the optimizer state")
	c = requireSameTensors(t, st)
	assert.Equal(t, pth.FormatSafetensors, c.Format)
	assert.Equal(t, epoch, *c.Epoch)

	back := filepath.Join(dir, "back.pth")
	_, _, err = runCheckpointCommand(t, "convert", st, back)
	require.NoError(t, err)
	requireSameTensors(t, back)

	for _, args := range [][]string{
		{"convert", src},
		{"convert", src, back, "extra"},
		{"convert", src, back, "--format", "onnx"},
		{"convert", src, back, "--prefix", "model"},
		{"convert", src, back, "--bogus"},
		{"convert", filepath.Join(dir, "missing.pth"), back},
	} {
		_, _, err := runCheckpointCommand(t, args...)
		assert.Error(t, err, args)
	}
	// A failed conversion leaves no output behind.
	bad := filepath.Join(dir, "bad.pth")
	require.NoError(t, os.WriteFile(bad, []byte("PK\x03\x04broken"), 0o644))
	never := filepath.Join(dir, "never.pth")
	_, _, err = runCheckpointCommand(t, "convert", bad, never)
	assert.Error(t, err)
	assert.NoFileExists(t, never)
}

// sortedLike returns got in the order of want when both hold the same
// keys (safetensors files order tensors by type and name).
func sortedLike(want, got []string) []string {
	seen := map[string]bool{}
	for _, k := range got {
		seen[k] = true
	}
	var out []string
	for _, k := range want {
		if seen[k] {
			out = append(out, k)
			delete(seen, k)
		}
	}
	for k := range seen {
		out = append(out, k)
	}
	return out
}

// TestConvertOriginalCheckpointForPyTorch converts a checkpoint as the
// original torch 0.4 scripts saved it (legacy format, DataParallel keys,
// numpy dice) to the zip format, and loads the result in PyTorch the way
// the original evaluation script does.
func TestConvertOriginalCheckpointForPyTorch(t *testing.T) {
	dir := t.TempDir()
	pytorchtest.Run(t, dir, `
import sys, numpy as np, torch, torch.nn as nn
torch.manual_seed(1)
net = nn.DataParallel(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 1)))
net(torch.randn(2, 3, 8, 8))  # update the running statistics
torch.save({"epoch": 9, "state_dict": net.state_dict(), "dice_epoch": 0.6, "best_dice": np.float64(0.65)},
           sys.argv[1] + "/original.pth.tar", _use_new_zipfile_serialization=False)
`, dir)
	_, _, err := runCheckpointCommand(t, "convert", filepath.Join(dir, "original.pth.tar"), filepath.Join(dir, "converted.pth"))
	require.NoError(t, err)
	out := pytorchtest.Run(t, dir, `
import sys, torch, torch.nn as nn
d = sys.argv[1]
orig = torch.load(d + "/original.pth.tar", weights_only=False)  # NumPy scalars, as the original saved
conv = torch.load(d + "/converted.pth")
net = nn.DataParallel(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 1)))
net.load_state_dict(conv["state_dict"])  # strict, as the original scripts load
assert list(conv["state_dict"]) == list(orig["state_dict"])
for k, v in orig["state_dict"].items():
    assert torch.equal(v, conv["state_dict"][k]), k
assert conv["epoch"] == 9 and conv["best_dice"] == 0.65 and conv["dice_epoch"] == 0.6
print("ok")
`, dir)
	assert.Equal(t, "ok\n", out)
}

func TestInspectCommandJSON(t *testing.T) {
	sd, params := unetStateDict(t)
	path := filepath.Join(t.TempDir(), "model_best.pth.tar")
	epoch, best := int64(41), 0.7361
	c := &models.Checkpoint{StateDict: sd, Epoch: &epoch, BestDice: &best, Extra: pth.NewDict()}
	c.Extra.Set("arch", "unet")
	require.NoError(t, c.Save(path, models.SaveOptions{Format: pth.FormatLegacy}))

	out, _, err := runCheckpointCommand(t, "inspect", "--json", path)
	require.NoError(t, err)
	var got inspectionJSON
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, "legacy", got.Format)
	assert.Equal(t, pth.DataParallelPrefix, got.Prefix)
	assert.Equal(t, []string{"unet"}, got.Networks)
	assert.Equal(t, epoch, *got.Epoch)
	assert.Equal(t, best, *got.BestDice)
	assert.Nil(t, got.DiceEpoch)
	assert.Equal(t, []string{"arch"}, got.Other)
	assert.Equal(t, params, got.Parameters)
	require.Len(t, got.Tensors, sd.Len())
	assert.Equal(t, tensorJSON{"conv1.conv1.0.weight", "float32", []int64{16, 3, 3, 3}}, got.Tensors[0])
}
