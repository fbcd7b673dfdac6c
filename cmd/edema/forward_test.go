package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/models"
	"github.com/edema/edema/torch"
)

// forwardReference writes, for each network, a checkpoint saved by
// PyTorch (each network in another of the formats the original's code or
// a user may produce), a random input and the eval-mode outputs of the
// PyTorch reference model on it.
const forwardReference = `
import sys
import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
import reference_models as rm

out = sys.argv[2]
formats = {"unet": "original", "unet_nested": "legacy", "unet_nested_dilated": "bare"}
for i, (name, fmt) in enumerate(formats.items()):
    torch.manual_seed(100 + i)
    net = rm.NETWORKS[name]()
    # Running statistics far from 0 and 1, so that eval mode matters.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked += 7
    sd = net.state_dict()
    path = f"{out}/{name}.pth.tar"
    if fmt == "original":
        # The original's checkpoint dict, keys of its DataParallel model.
        sd = {"module." + k: v for k, v in sd.items()}
        torch.save({"epoch": 3, "state_dict": sd, "best_dice": 0.5, "dice_epoch": 0.4}, path)
    elif fmt == "legacy":
        torch.save(sd, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(sd, path)
    x = torch.randn(3, 3, 32, 48)
    np.save(f"{out}/{name}_x.npy", x.numpy())
    net.eval()
    with torch.no_grad():
        seg, det = net(x)
    np.save(f"{out}/{name}_seg_ref.npy", seg.numpy())
    np.save(f"{out}/{name}_cls_ref.npy", det.numpy())
    # The same network as a TorchScript module, traced on another size.
    torch.jit.trace(net, torch.randn(1, 3, 16, 16)).save(f"{out}/{name}.pt")
`

// forwardCompare loads the files edema forward wrote with NumPy and prints
// per network their dtypes, shapes and largest differences from PyTorch.
const forwardCompare = `
import sys
import numpy as np

out = sys.argv[1]
for name in sys.argv[2:]:
    ref = name.removesuffix("_torchscript")
    s = np.load(f"{out}/{name}_seg.npy")
    c = np.load(f"{out}/{name}_cls.npy")
    ds = np.abs(s.astype(np.float64) - np.load(f"{out}/{ref}_seg_ref.npy")).max()
    dc = np.abs(c.astype(np.float64) - np.load(f"{out}/{ref}_cls_ref.npy")).max()
    print(name, s.dtype, "x".join(map(str, s.shape)), c.dtype, "x".join(map(str, c.shape)), repr(float(ds)), repr(float(dc)))
`

func TestForwardMatchesPyTorch(t *testing.T) {
	pytorchtest.Python(t)
	dir := t.TempDir()
	testdata, err := filepath.Abs(filepath.Join("..", "..", "models", "testdata"))
	require.NoError(t, err)
	pytorchtest.Run(t, t.TempDir(), forwardReference, testdata, dir)

	segmenters := []string{models.NameUNet, models.NameUNetNested, models.NameUNetNestedDilated}
	for _, name := range segmenters {
		p := func(suffix string) string { return filepath.Join(dir, name+suffix) }
		out, err := runCommand(t, forwardCommand(), "--model", name, "--checkpoint", p(".pth.tar"),
			"--input", p("_x.npy"), "--seg-out", p("_seg.npy"), "--cls-out", p("_cls.npy"), "--batch-size", "2")
		require.NoError(t, err, name)
		assert.Contains(t, out, name+" on 3×3×32×48")

		// The traced network, run by libtorch's TorchScript interpreter.
		out, err = runCommand(t, forwardCommand(), "--torchscript", p(".pt"),
			"--input", p("_x.npy"), "--seg-out", p("_torchscript_seg.npy"), "--cls-out", p("_torchscript_cls.npy"), "--batch-size", "2")
		require.NoError(t, err, name)
		assert.Contains(t, out, name+".pt on (3, 3, 32, 48): wrote "+p("_torchscript_seg.npy")+" ((3, 4, 32, 48)) and "+p("_torchscript_cls.npy")+" ((3, 3))")
	}

	names := slices.Clone(segmenters)
	for _, name := range segmenters {
		names = append(names, name+"_torchscript")
	}
	got := pytorchtest.Run(t, t.TempDir(), forwardCompare, append([]string{dir}, names...)...)
	t.Log(got)
	sc := bufio.NewScanner(strings.NewReader(got))
	seen := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		require.Len(t, f, 7, sc.Text())
		assert.Equal(t, []string{"float32", "3x4x32x48", "float32", "3x3"}, f[1:5], f[0])
		for _, v := range f[5:] {
			d, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			assert.Less(t, d, 1e-4, "%s: largest difference from PyTorch", f[0])
		}
		seen++
	}
	assert.Equal(t, len(names), seen)
}

// writeNPY writes v (as npyio.Write takes it) to dir/name.
func writeNPY(t *testing.T, dir, name string, v any) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, npyio.Write(f, v))
	require.NoError(t, f.Close())
	return path
}

// images returns n×c×h×w float32 zeros as nested slices.
func images(n, c, h, w int) [][][][]float32 {
	x := make([][][][]float32, n)
	for i := range x {
		x[i] = make([][][]float32, c)
		for j := range x[i] {
			x[i][j] = make([][]float32, h)
			for k := range x[i][j] {
				x[i][j][k] = make([]float32, w)
			}
		}
	}
	return x
}

func TestForwardErrors(t *testing.T) {
	dir := t.TempDir()
	torch.ManualSeed(1)
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer m.Free()
	ckpt := filepath.Join(dir, "unet.pth.tar")
	require.NoError(t, models.SaveCheckpoint(ckpt, m, nil, nil, models.SaveOptions{}))

	good := writeNPY(t, dir, "good.npy", images(1, 3, 16, 16))
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	truncated := filepath.Join(dir, "truncated.npy")
	require.NoError(t, os.WriteFile(truncated, data[:len(data)-5], 0o644))
	notNPY := filepath.Join(dir, "x.npy")
	require.NoError(t, os.WriteFile(notNPY, []byte("hello, world"), 0o644))
	corrupt := filepath.Join(dir, "corrupt.npy")
	require.NoError(t, os.WriteFile(corrupt, bytes.ReplaceAll(data, []byte("\n"), []byte(" ")), 0o644))
	float64s := make([][]float64, 2)
	for i := range float64s {
		float64s[i] = make([]float64, 3)
	}

	tests := []struct {
		input, ckpt, model string
		want               string
	}{
		{writeNPY(t, dir, "f64.npy", float64s), ckpt, "unet", "holds float64 ('<f8'), want little-endian float32 ('<f4')"},
		{writeNPY(t, dir, "u8.npy", []uint8{1, 2}), ckpt, "unet", "holds uint8 ('|u1')"},
		{writeNPY(t, dir, "two.npy", images(1, 3, 16, 16)[0]), ckpt, "unet", "has shape (3, 16, 16), want N×3×H×W"},
		{writeNPY(t, dir, "gray.npy", images(2, 1, 16, 16)), ckpt, "unet", "has shape (2, 1, 16, 16), want N×3×H×W"},
		{writeNPY(t, dir, "odd.npy", images(1, 3, 20, 16)), ckpt, "unet", "has shape (1, 3, 20, 16): H and W must be positive multiples of 16"},
		{truncated, ckpt, "unet", "holds 3067 bytes of data, its shape (1, 3, 16, 16) needs 3072"},
		{notNPY, ckpt, "unet", notNPY + ": not a NumPy .npy file"},
		{corrupt, ckpt, "unet", corrupt + ": not a NumPy .npy file: corrupt header"},
		{filepath.Join(dir, "missing.npy"), ckpt, "unet", "no such file"},
		{good, filepath.Join(dir, "missing.pth"), "unet", "checkpoint " + filepath.Join(dir, "missing.pth") + " does not exist"},
		{good, ckpt, "unet_nested", ckpt + " holds the weights of unet, not of unet_nested"},
		{good, ckpt, "vgg", `unknown network "vgg"`},
	}
	for _, tc := range tests {
		seg, cls := filepath.Join(dir, "seg.npy"), filepath.Join(dir, "cls.npy")
		_, err := runCommand(t, forwardCommand(), "--model", tc.model, "--checkpoint", tc.ckpt, "--input", tc.input, "--seg-out", seg, "--cls-out", cls)
		require.Error(t, err, tc.want)
		assert.Contains(t, err.Error(), "forward: ")
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "\n")
		assert.NoFileExists(t, seg)
		assert.NoFileExists(t, cls)
	}

	_, err = runCommand(t, forwardCommand(), "--model", "unet", "--checkpoint", ckpt, "--input", good, "--seg-out", filepath.Join(dir, "s.npy"), "--cls-out", filepath.Join(dir, "c.npy"), "--batch-size", "0")
	assert.ErrorContains(t, err, "forward: --batch-size must be at least 1, got 0")
	_, err = runCommand(t, forwardCommand(), "--model", "unet", "--checkpoint", ckpt, "--input", good, "--seg-out", filepath.Join(dir, "s.npy"))
	assert.ErrorContains(t, err, "forward: --cls-out required without --torchscript (see --help)")
	_, err = runCommand(t, forwardCommand(), "--input", good, "--seg-out", filepath.Join(dir, "s.npy"))
	assert.ErrorContains(t, err, "forward: --model, --checkpoint, --cls-out required without --torchscript (see --help)")
	assert.Equal(t, exitUsage, exitCode(err))
	same := filepath.Join(dir, "out.npy")
	_, err = runCommand(t, forwardCommand(), "--model", "unet", "--checkpoint", ckpt, "--input", good, "--seg-out", same, "--cls-out", dir+"/./out.npy")
	assert.ErrorContains(t, err, "forward: --seg-out and --cls-out are the same file "+same)
	_, err = runCommand(t, forwardCommand(), "--model", "unet", "--checkpoint", ckpt, "--input", good, "--seg-out", good, "--cls-out", same)
	assert.ErrorContains(t, err, "forward: an output is the --input file "+good)
	assert.NoFileExists(t, same)
}

// torchScriptModules writes small TorchScript modules for the errors of
// forward --torchscript, and one that is not TorchScript.
const torchScriptModules = `
import sys
from typing import Dict
import torch

class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(5, 2)
    def forward(self, x):
        return self.fc(x)

class Pair(torch.nn.Module):
    def forward(self, x):
        return x * 2, x.sum(1)

class Named(torch.nn.Module):
    def forward(self, x) -> Dict[str, torch.Tensor]:
        return {"x": x}

class Scalar(torch.nn.Module):
    def forward(self, x):
        return x.sum()

class Flat(torch.nn.Module):
    def forward(self, x):
        return x.reshape(-1)

out = sys.argv[1]
torch.manual_seed(3)
for name, m in [("linear", Linear()), ("pair", Pair()), ("named", Named()), ("scalar", Scalar()), ("flat", Flat())]:
    torch.jit.script(m).save(f"{out}/{name}.pt")
lin = torch.jit.load(f"{out}/linear.pt")
x = torch.arange(15, dtype=torch.float32).reshape(3, 5) / 7
with torch.no_grad():
    print(" ".join(repr(v) for v in lin(x).reshape(-1).tolist()))
torch.save(Linear().state_dict(), f"{out}/checkpoint.pth")
`

func TestForwardTorchScript(t *testing.T) {
	dir := t.TempDir()
	ref := strings.Fields(pytorchtest.Run(t, t.TempDir(), torchScriptModules, dir))
	module := func(name string) string { return filepath.Join(dir, name+".pt") }
	x := make([][]float32, 3)
	for i := range x {
		x[i] = make([]float32, 5)
		for j := range x[i] {
			x[i][j] = float32(5*i+j) / 7
		}
	}
	input := writeNPY(t, dir, "x.npy", x)
	seg, cls := filepath.Join(dir, "seg.npy"), filepath.Join(dir, "cls.npy")

	// Any shape: a linear layer on N×5, batch by batch.
	out, err := runCommand(t, forwardCommand(), "--torchscript", module("linear"), "--input", input, "--seg-out", seg, "--batch-size", "2")
	require.NoError(t, err)
	assert.Contains(t, out, "linear.pt on (3, 5): wrote "+seg+" ((3, 2))")
	f, err := os.Open(seg)
	require.NoError(t, err)
	defer f.Close()
	var got []float32
	require.NoError(t, npyio.Read(f, &got))
	require.Len(t, got, len(ref))
	for i, r := range ref {
		want, err := strconv.ParseFloat(r, 64)
		require.NoError(t, err)
		assert.InDelta(t, want, got[i], 1e-6)
	}

	// Under bfloat16 autocast the linear layer runs in bfloat16 (about
	// three significant digits) and its output is written as float32.
	_, err = runCommand(t, forwardCommand(), "--torchscript", module("linear"), "--input", input, "--seg-out", seg, "--amp", "bf16")
	require.NoError(t, err)
	mixed := readNPYFloat32s(t, seg)
	require.Len(t, mixed, len(got))
	assert.InDeltaSlice(t, got, mixed, 0.02)
	assert.NotEqual(t, got, mixed, "the layer ran in bfloat16")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"with --model", []string{"--torchscript", module("linear"), "--model", "unet"}, "forward: --model does not apply to --torchscript"},
		{"channels last", []string{"--torchscript", module("linear"), "--channels-last"}, "forward: --channels-last does not apply to --torchscript"},
		{"fp16 on the CPU", []string{"--torchscript", module("linear"), "--amp", "fp16"}, "forward: --amp: precision fp16 runs on CUDA only"},
		{"not TorchScript", []string{"--torchscript", filepath.Join(dir, "checkpoint.pth")}, "not a TorchScript file: a PyTorch archive of torch.save"},
		{"missing", []string{"--torchscript", module("missing")}, "no such file or directory"},
		{"two outputs, one file", []string{"--torchscript", module("pair")}, "returns two tensors: --cls-out must say where the second goes"},
		{"one output, two files", []string{"--torchscript", module("linear"), "--cls-out", cls}, "returns one tensor: --cls-out has nothing to hold"},
		{"a dict", []string{"--torchscript", module("named")}, "forward returned a dict, want a tensor or a tuple of one or two"},
		{"a scalar", []string{"--torchscript", module("scalar")}, "forward's output 1 is a scalar, want a batch"},
		{"not a batch", []string{"--torchscript", module("flat"), "--batch-size", "2"}, "output 1 of a batch of 2 has shape (10,), not a batch of 2"},
		{"wrong input", []string{"--torchscript", module("pair"), "--cls-out", cls, "--input", writeNPY(t, dir, "x1.npy", []float32{1})}, "jit: forward:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--input", input, "--seg-out", seg}, tc.args...)
			if slices.Contains(tc.args, "--input") {
				args = append([]string{"--seg-out", seg}, tc.args...)
			}
			require.NoError(t, os.RemoveAll(seg))
			_, err := runCommand(t, forwardCommand(), args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n")
			assert.NoFileExists(t, seg)
			assert.NoFileExists(t, cls)
		})
	}
}

// readInputNPY never panics, whatever the file holds.
func FuzzReadInputNPY(f *testing.F) {
	var good bytes.Buffer
	require.NoError(f, npyio.Write(&good, images(1, 3, 16, 16)))
	f.Add(good.Bytes())
	f.Add(bytes.ReplaceAll(good.Bytes(), []byte("\n"), []byte(" ")))
	f.Add(good.Bytes()[:20])
	f.Add([]byte("\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 3, 1024, 512), }"))
	path := filepath.Join(f.TempDir(), "x.npy")
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(path, data, 0o644))
		readInputNPY(path, true)
		readInputNPY(path, false)
	})
}

func readNPYFloat32s(t *testing.T, path string) []float32 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []float32
	require.NoError(t, npyio.Read(f, &out))
	return out
}
