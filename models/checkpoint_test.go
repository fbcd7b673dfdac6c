package models

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
	"github.com/edema/edema/torch/optim"
	"github.com/edema/edema/torch/pth"
)

// trainedUNet returns a seeded UNet after one Adam step on a tiny input,
// so that its weights, running statistics and optimizer state are all
// non-trivial.
func trainedUNet(t *testing.T) (*Model, *optim.Adam) {
	t.Helper()
	torch.ManualSeed(7)
	m, err := New(NameUNet)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	opt, err := optim.NewAdam(m.Parameters(), optim.AdamOptions{LR: 1e-3, Betas: [2]float64{0.9, 0.99}, Eps: 1e-8, WeightDecay: 1e-4})
	require.NoError(t, err)
	torch.Scoped(func(*torch.Scope) {
		seg, det, err := m.Forward(torch.Randn([]int64{2, 3, 32, 16}, torch.Float32CPU))
		require.NoError(t, err)
		seg.Mean().Add(det.Mean()).Backward()
	})
	require.NoError(t, opt.Step())
	return m, opt
}

func requireSameWeights(t *testing.T, want, got []nn.Named) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Name, got[i].Name)
		require.Equal(t, want[i].Tensor.DType(), got[i].Tensor.DType(), want[i].Name)
		require.Equal(t, want[i].Tensor.Shape(), got[i].Tensor.Shape(), want[i].Name)
		require.Equal(t, want[i].Tensor.Bytes(), got[i].Tensor.Bytes(), "values of %s", want[i].Name)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	m, opt := trainedUNet(t)
	optState, err := opt.StateDict()
	require.NoError(t, err)
	meta := &CheckpointMeta{Epoch: 3, BestDice: 0.625, DiceEpoch: 0.5}

	for _, format := range []pth.Format{pth.FormatZip, pth.FormatLegacy, pth.FormatSafetensors} {
		t.Run(format.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "checkpoint_latest.pth.tar")
			require.NoError(t, SaveCheckpoint(path, m, meta, optState, SaveOptions{Format: format}))

			got, c, err := Load(path, NameUNet, torch.CPU)
			require.NoError(t, err)
			defer got.Free()
			requireSameWeights(t, m.StateDict(), got.StateDict())
			assert.Equal(t, pth.DataParallelPrefix, c.Prefix, "keys are saved with module. by default")
			require.NotNil(t, c.Epoch)
			assert.Equal(t, int64(3), *c.Epoch)
			assert.Equal(t, 0.625, *c.BestDice)
			assert.Equal(t, 0.5, *c.DiceEpoch)
			if format == pth.FormatSafetensors {
				assert.Nil(t, c.Optimizer, "safetensors has no room for the optimizer state")
				return
			}

			// The optimizer state comes back and loads into a fresh Adam
			// of the loaded network, which then exports the same state.
			torch.Scoped(func(*torch.Scope) {
				imported, err := nn.OptimizerStateFromHost(c.Optimizer)
				require.NoError(t, err)
				fresh, err := optim.NewAdam(got.Parameters(), optim.DefaultAdamOptions())
				require.NoError(t, err)
				require.NoError(t, fresh.LoadStateDict(imported))
				again, err := fresh.StateDict()
				require.NoError(t, err)
				want, err := nn.OptimizerStateToHost(optState)
				require.NoError(t, err)
				gotTree, err := nn.OptimizerStateToHost(again)
				require.NoError(t, err)
				assert.Equal(t, want, gotTree)
			})
		})
	}
}

func TestSaveCheckpointPlainKeysAndBare(t *testing.T) {
	m, _ := trainedUNet(t)
	path := filepath.Join(t.TempDir(), "weights.pth")
	require.NoError(t, SaveCheckpoint(path, m, nil, nil, SaveOptions{PlainKeys: true}))
	c, err := ReadCheckpoint(path)
	require.NoError(t, err)
	assert.True(t, c.Bare)
	assert.Empty(t, c.Prefix)
	assert.Equal(t, len(m.StateDict()), c.StateDict.Len())
	assert.Equal(t, []string{NameUNet}, Identify(c.StateDict))
}

// specJSON lists a network's state dict for the Python side.
func specJSON(t *testing.T, m *Model) string {
	t.Helper()
	type entry struct {
		Key   string  `json:"key"`
		DType string  `json:"dtype"`
		Shape []int64 `json:"shape"`
	}
	var es []entry
	for _, n := range m.StateDict() {
		es = append(es, entry{n.Name, n.Tensor.DType().String(), n.Tensor.Shape()})
	}
	js, err := json.Marshal(es)
	require.NoError(t, err)
	return string(js)
}

// TestLoadsPyTorchCheckpoints loads checkpoints that PyTorch wrote in the
// original's way (legacy format, module. keys, the training dict) and in
// today's (zip, bare state dict), with random values, and compares every
// value with the raw bytes PyTorch wrote beside them.
func TestLoadsPyTorchCheckpoints(t *testing.T) {
	pytorchtest.Python(t)
	torch.ManualSeed(1)
	m, err := New(NameUNetNested)
	require.NoError(t, err)
	defer m.Free()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "spec.json"), []byte(specJSON(t, m)), 0o644))

	pytorchtest.Run(t, dir, `
import collections, json, torch
spec = json.load(open("spec.json"))
torch.manual_seed(3)
dtypes = {"float32": torch.float32, "int64": torch.int64}
sd = collections.OrderedDict()
with open("values.bin", "wb") as raw:
    for e in spec:
        if e["dtype"] == "int64":
            t = torch.randint(0, 1000, e["shape"], dtype=torch.int64)
        else:
            t = torch.randn(e["shape"], dtype=torch.float32)
        sd[e["key"]] = t
        raw.write(t.numpy().tobytes())
wrapped = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
torch.save({"epoch": 12, "state_dict": wrapped, "dice_epoch": 0.71, "best_dice": 0.74},
           "legacy.pth.tar", _use_new_zipfile_serialization=False)
torch.save(sd, "bare.pth")
`)
	want, err := os.ReadFile(filepath.Join(dir, "values.bin"))
	require.NoError(t, err)

	for _, file := range []string{"legacy.pth.tar", "bare.pth"} {
		t.Run(file, func(t *testing.T) {
			got, c, err := Load(filepath.Join(dir, file), NameUNetNested, torch.CPU)
			require.NoError(t, err)
			defer got.Free()
			var values []byte
			for _, n := range got.StateDict() {
				values = append(values, n.Tensor.Bytes()...)
			}
			require.Equal(t, want, values)
			if file == "legacy.pth.tar" {
				assert.Equal(t, int64(12), *c.Epoch)
				assert.Equal(t, 0.74, *c.BestDice)
				assert.Equal(t, pth.FormatLegacy, c.Format)
			}
			assert.Equal(t, []string{NameUNetNested}, Identify(c.StateDict))
		})
	}
}

// TestPyTorchLoadsSavedCheckpoint saves a checkpoint and has PyTorch load
// it the way the original's eval script does: torch.load, then a strict
// load_state_dict into the reference network wrapped in DataParallel.
func TestPyTorchLoadsSavedCheckpoint(t *testing.T) {
	pytorchtest.Python(t)
	m, opt := trainedUNet(t)
	optState, err := opt.StateDict()
	require.NoError(t, err)
	dir := t.TempDir()
	for _, format := range []pth.Format{pth.FormatZip, pth.FormatLegacy} {
		path := filepath.Join(dir, format.String()+".pth.tar")
		require.NoError(t, SaveCheckpoint(path, m, &CheckpointMeta{Epoch: 5, BestDice: 0.5, DiceEpoch: 0.25}, optState, SaveOptions{Format: format}))
	}
	var sum float64
	torch.NoGrad(func() {
		for _, n := range m.StateDict() {
			if n.Tensor.DType().IsFloatingPoint() {
				sum += n.Tensor.To(torch.Float64).Sum().Item()
			}
		}
	})
	testdata, err := filepath.Abs("testdata")
	require.NoError(t, err)
	out := pytorchtest.Run(t, dir, `
import sys, torch
sys.path.insert(0, sys.argv[1])
from reference_models import NETWORKS
for f in ("zip.pth.tar", "legacy.pth.tar"):
    c = torch.load(f)
    net = torch.nn.DataParallel(NETWORKS["unet"]())
    net.load_state_dict(c["state_dict"])  # strict
    opt = torch.optim.Adam(net.parameters(), lr=0.1, betas=(0.9, 0.99))
    opt.load_state_dict(c["optimizer"])
    s = sum(float(v.double().sum()) for v in net.state_dict().values() if v.is_floating_point())
    print(f, c["epoch"], c["best_dice"], c["dice_epoch"], opt.param_groups[0]["lr"], repr(s))
`, testdata)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	for i, f := range []string{"zip.pth.tar", "legacy.pth.tar"} {
		var name string
		var epoch int
		var best, dice, lr, got float64
		_, err := fmt.Sscan(lines[i], &name, &epoch, &best, &dice, &lr, &got)
		require.NoError(t, err, lines[i])
		assert.Equal(t, f, name)
		assert.Equal(t, 5, epoch)
		assert.Equal(t, 0.5, best)
		assert.Equal(t, 0.25, dice)
		assert.Equal(t, 1e-3, lr, "the optimizer's own learning rate replaces the one it was built with")
		assert.InDelta(t, sum, got, 1e-6*max(1, abs(sum)))
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestLoadWrongCheckpoints(t *testing.T) {
	m, _ := trainedUNet(t)
	dir := t.TempDir()
	unetPath := filepath.Join(dir, "unet.pth.tar")
	require.NoError(t, SaveCheckpoint(unetPath, m, &CheckpointMeta{}, nil, SaveOptions{}))

	t.Run("another network", func(t *testing.T) {
		_, _, err := Load(unetPath, NameUNetNested, torch.CPU)
		var ce *CheckpointError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, []string{NameUNet}, ce.Fits)
		assert.Contains(t, err.Error(), "holds the weights of unet, not of unet_nested")
		assert.NotContains(t, err.Error(), "\n")
		require.NotNil(t, ce.Load)
		assert.NotEmpty(t, ce.Load.Missing)
		assert.NotEmpty(t, ce.Load.Unexpected)
	})

	t.Run("missing, unexpected and mis-shaped keys", func(t *testing.T) {
		sd, err := nn.HostStateDict(m.StateDict())
		require.NoError(t, err)
		sd.Delete("final_1.bias")
		sd.Delete("conv1.conv1.0.weight")
		w, _ := sd.Get("cls.1.weight")
		bad := w.Clone()
		bad.Shape = []int64{3, 128, 2, 1}
		sd.Set("cls.1.weight", bad)
		extra, err := pth.FromFloat32([]int64{1}, []float32{1})
		require.NoError(t, err)
		sd.Set("head.extra", extra)
		path := filepath.Join(dir, "broken.pth")
		require.NoError(t, (&Checkpoint{StateDict: sd, Bare: true}).Save(path, SaveOptions{}))

		before, err := nn.HostStateDict(m.StateDict())
		require.NoError(t, err)
		c, err := ReadCheckpoint(path)
		require.NoError(t, err)
		err = m.LoadCheckpoint(c)
		var ce *CheckpointError
		require.ErrorAs(t, err, &ce)
		assert.Empty(t, ce.Fits)
		msg := err.Error()
		for _, want := range []string{"not a unet checkpoint", "2 missing keys (conv1.conv1.0.weight, final_1.bias)",
			"1 unexpected keys (head.extra)", "size mismatch for cls.1.weight"} {
			assert.Contains(t, msg, want)
		}
		assert.NotContains(t, msg, "\n")
		after, err := nn.HostStateDict(m.StateDict())
		require.NoError(t, err)
		assert.Equal(t, before, after, "a failed load changes nothing")
	})

	t.Run("not a checkpoint", func(t *testing.T) {
		path := filepath.Join(dir, "junk.pth")
		require.NoError(t, os.WriteFile(path, []byte("not a checkpoint"), 0o644))
		_, _, err := Load(path, NameUNet, torch.CPU)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "junk.pth")
	})

	t.Run("missing file", func(t *testing.T) {
		_, _, err := Load(filepath.Join(dir, "nothing.pth"), NameUNet, torch.CPU)
		require.ErrorIs(t, err, os.ErrNotExist)
	})

	t.Run("unknown network", func(t *testing.T) {
		_, _, err := Load(unetPath, "resnet", torch.CPU)
		require.ErrorContains(t, err, `unknown network "resnet"`)
	})
}

func TestIdentify(t *testing.T) {
	for _, name := range Names() {
		m, err := New(name)
		require.NoError(t, err)
		sd, err := nn.HostStateDict(m.StateDict())
		m.Free()
		require.NoError(t, err)
		assert.Equal(t, []string{name}, Identify(sd), name)
		assert.Equal(t, []string{name}, Identify(sd.WithPrefix(pth.DataParallelPrefix)), "%s with module.", name)

		// PyTorch 0.4.0 wrote no num_batches_tracked.
		for _, k := range sd.Keys() {
			if strings.HasSuffix(k, ".num_batches_tracked") {
				sd.Delete(k)
			}
		}
		assert.Equal(t, []string{name}, Identify(sd), "%s without num_batches_tracked", name)

		first := sd.Keys()[0]
		sd.Delete(first)
		assert.Empty(t, Identify(sd), "%s without %s", name, first)
	}
	assert.Empty(t, Identify(nil))
	assert.Empty(t, Identify(pth.NewStateDict()))
}

// TestCheckpointTasks: the tasks a checkpoint records come back from every
// format (safetensors' metadata included) and restrict the network that
// loads it; a bad record is refused and changes nothing.
func TestCheckpointTasks(t *testing.T) {
	m, err := New(NameUNet)
	require.NoError(t, err)
	defer m.Free()
	dir := t.TempDir()
	for _, format := range []pth.Format{pth.FormatZip, pth.FormatLegacy, pth.FormatSafetensors} {
		c, err := NewCheckpoint(m, &CheckpointMeta{Epoch: 1}, nil)
		require.NoError(t, err)
		SetTasks(c, NameUNet, oct.Segmentation)
		path := filepath.Join(dir, fmt.Sprintf("unet-%d.pth", format))
		require.NoError(t, c.Save(path, SaveOptions{Format: format}))
		back, err := ReadCheckpoint(path)
		require.NoError(t, err)
		tasks, err := TasksOf(back, NameUNet)
		require.NoError(t, err)
		assert.Equal(t, oct.Segmentation, tasks, "format %v", format)

		u, err := New(NameUNet)
		require.NoError(t, err)
		require.NoError(t, u.LoadCheckpoint(back))
		assert.Equal(t, oct.Segmentation, u.Tasks())
		u.Free()
	}
	c, err := NewCheckpoint(m, nil, nil)
	require.NoError(t, err)
	tasks, err := TasksOf(c, NameUNet)
	require.NoError(t, err)
	assert.Equal(t, oct.BothTasks, tasks, "no record: every output")
	SetTasks(c, NameUNet, oct.Detection)
	SetTasks(c, NameUNet, oct.BothTasks)
	_, recorded := c.Extra.Get(CheckpointTasks)
	assert.False(t, recorded, "all of the outputs need no record")

	for _, tc := range []struct {
		value any
		want  string
	}{
		{int64(3), `checkpoint entry "tasks" is not a string of task names`},
		{"segmentation,counting", `unknown task "counting"`},
		{"", `unknown task ""`},
	} {
		c.Extra.Set(CheckpointTasks, tc.value)
		_, err := TasksOf(c, NameUNet)
		assert.ErrorContains(t, err, tc.want)
		assert.ErrorContains(t, m.LoadCheckpoint(c), tc.want)
		assert.Equal(t, oct.BothTasks, m.Tasks(), "unchanged")
	}
	c.Extra.Set(CheckpointTasks, "segmentation")
	_, err = TasksOf(c, NameResNet18)
	assert.ErrorContains(t, err, `says segmentation, which resnet18 cannot do`)
}
