package models

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/oct"
)

// interopCase is one network checked against testdata/reference_models.py.
type interopCase struct {
	name        string
	dir         string
	seed        uint64
	dropoutSeed uint64
	model       *Model
	init        []nn.Named // Go's state dict right after New, copied
	x, w, v     *torch.Tensor
}

// The input is small (2×3×64×32) so that the whole comparison takes seconds.
const (
	interopN = 2
	interopH = 64
	interopW = 32
)

func TestMatchesPyTorch(t *testing.T) {
	pytorchtest.Python(t)
	// The reference runs on one thread (see pytorchtest); so does Go here,
	// so that both sum in the same order. With two threads the gradients
	// of the dilated UNet++'s first layers, through nine batch
	// normalisations in training mode on a batch of two, differ from the
	// reference's by up to 1.5e-3 of their scale.
	defer torch.SetNumThreads(torch.NumThreads())
	torch.SetNumThreads(1)
	root := t.TempDir()
	var cases []*interopCase
	var dirs []string
	for i, name := range segmenters() {
		c := &interopCase{name: name, dir: filepath.Join(root, name), seed: uint64(1234 + i), dropoutSeed: uint64(77 + i)}
		require.NoError(t, os.Mkdir(c.dir, 0o755))
		prepareInterop(t, c)
		defer c.model.Free()
		cases = append(cases, c)
		dirs = append(dirs, c.dir)
	}
	pytorchtest.RunFile(t, filepath.Join("testdata", "reference_models.py"), append([]string{"check"}, dirs...)...)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("same seed, same initial weights", func(t *testing.T) { checkInit(t, c) })
			t.Run("eval", func(t *testing.T) { checkEval(t, c) })
			t.Run("train", func(t *testing.T) { checkTrain(t, c) })
		})
	}
}

// prepareInterop builds the Go network with the case's seed, keeps a copy
// of its initial weights, gives its batch normalisations non-trivial
// running statistics and writes weights, inputs and meta.json for Python.
func prepareInterop(t *testing.T, c *interopCase) {
	torch.ManualSeed(c.seed)
	m, err := New(c.name)
	require.NoError(t, err)
	c.model = m
	for _, n := range m.StateDict() {
		c.init = append(c.init, nn.Named{Name: n.Name, Tensor: n.Tensor.Detach().Clone()})
	}

	// Running statistics far from PyTorch's initial 0 and 1, so that eval
	// mode really depends on them.
	torch.ManualSeed(c.seed + 1000)
	for _, mod := range m.Store().Modules() {
		if bn, ok := mod.(*nn.BatchNorm2d); ok {
			bn.RunningMean.NormalInPlace(0, 0.5)
			bn.RunningVar.UniformInPlace(0.5, 2)
			bn.NumBatchesTracked.AddScalarInPlace(7)
		}
	}
	writeTensors(t, filepath.Join(c.dir, "weights"), m.StateDict())

	c.x = torch.Randn([]int64{interopN, 3, interopH, interopW}, torch.Float32CPU)
	c.w = torch.Randn([]int64{interopN, oct.NumClasses, interopH, interopW}, torch.Float32CPU)
	c.v = torch.Randn([]int64{interopN, oct.NumLesions}, torch.Float32CPU)
	writeTensors(t, filepath.Join(c.dir, "inputs"), []nn.Named{{Name: "x", Tensor: c.x}, {Name: "w", Tensor: c.w}, {Name: "v", Tensor: c.v}})

	meta, err := json.Marshal(map[string]any{"name": c.name, "seed": c.seed, "dropout_seed": c.dropoutSeed})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "meta.json"), meta, 0o644))
}

// checkInit compares, bit for bit, Go's weights after torch.ManualSeed(s)
// and New with the reference's after torch.manual_seed(s) and construction.
func checkInit(t *testing.T, c *interopCase) {
	py := readTensors(t, filepath.Join(c.dir, "init"))
	require.Len(t, py, len(c.init))
	for i, g := range c.init {
		require.Equal(t, py[i].Name, g.Name)
		require.Equal(t, py[i].Tensor.DType(), g.Tensor.DType(), g.Name)
		require.Equal(t, py[i].Tensor.Shape(), g.Tensor.Shape(), g.Name)
		assert.True(t, equalBytes(py[i].Tensor.Bytes(), g.Tensor.Bytes()), "%s differs from PyTorch's", g.Name)
	}
}

func checkEval(t *testing.T, c *interopCase) {
	ref := byName(readTensors(t, filepath.Join(c.dir, "reference")))
	c.model.Eval()
	torch.InferenceMode(func() {
		seg, det, err := c.model.Forward(c.x)
		require.NoError(t, err)
		assert.Equal(t, []int64{interopN, oct.NumClasses, interopH, interopW}, seg.Shape())
		assert.Equal(t, []int64{interopN, oct.NumLesions}, det.Shape())
		assertClose(t, ref["eval.seg"], seg, 1e-4, "eval seg")
		assertClose(t, ref["eval.det"], det, 1e-4, "eval det")
	})
}

func checkTrain(t *testing.T, c *interopCase) {
	ref := byName(readTensors(t, filepath.Join(c.dir, "reference")))
	m := c.model
	m.Train()
	torch.ManualSeed(c.dropoutSeed) // the same dropout mask as the reference's
	seg, det, err := m.Forward(c.x)
	require.NoError(t, err)
	loss := seg.Mul(c.w).Sum().Add(det.Mul(c.v).Sum())
	loss.Backward()

	assertClose(t, ref["train.seg"], seg, 1e-4, "train seg")
	assertClose(t, ref["train.det"], det, 1e-4, "train det")
	assert.InDelta(t, ref["train.loss"].Item(), loss.Item(), 1e-3*math.Abs(ref["train.loss"].Item()))

	for _, n := range m.StateDict() {
		want := ref["state."+n.Name]
		require.NotNil(t, want, n.Name)
		if n.Tensor.DType() == torch.Int64 {
			assert.Equal(t, want.Int64s(), n.Tensor.Int64s(), n.Name)
			assert.Equal(t, []int64{8}, n.Tensor.Int64s(), "%s counts the train pass", n.Name)
			continue
		}
		assertClose(t, want, n.Tensor, 1e-4, n.Name)
	}
	for _, n := range m.Store().NamedParameters() {
		want, got := ref["grad."+n.Name], n.Tensor.Grad()
		require.NotNil(t, want, n.Name)
		require.NotNil(t, got, "%s has no gradient", n.Name)
		scale := maxAbs(want.Float32s())
		if layer, ok := strings.CutSuffix(n.Name, ".0.bias"); ok && ref["state."+layer+".1.running_mean"] != nil {
			// Batch normalisation in training mode removes the bias of the
			// convolution before it, whose gradient is zero but for
			// rounding: compare at the scale of the convolution's weight.
			scale = maxAbs(ref["grad."+layer+".0.weight"].Float32s())
			assert.LessOrEqual(t, maxAbs(got.Float32s()), 1e-3*scale, "gradient of %s is not zero", n.Name)
		}
		assertClose(t, want, got, 1e-3*scale, "gradient of "+n.Name)
	}

	// The dropout mask matters: another seed gives other detections.
	torch.ManualSeed(c.dropoutSeed + 1)
	_, det2, err := m.Forward(c.x)
	require.NoError(t, err)
	assert.Greater(t, maxAbsDiff(det.Float32s(), det2.Float32s()), float32(1e-4), "dropout had no effect")
}

func assertClose(t *testing.T, want, got *torch.Tensor, tol float64, what string) {
	t.Helper()
	require.NotNil(t, want, what)
	require.Equal(t, want.Shape(), got.Shape(), what)
	d := maxAbsDiff(want.Float32s(), got.Float32s())
	assert.LessOrEqual(t, float64(d), tol, "%s: max |Go − PyTorch| = %g", what, d)
}

func maxAbsDiff(a, b []float32) float32 {
	var d float32
	for i := range a {
		if x := float32(math.Abs(float64(a[i] - b[i]))); x > d || x != x {
			d = x
		}
	}
	return d
}

func maxAbs(a []float32) float64 {
	var m float64
	for _, v := range a {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
