package nn

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keys(named []Named) []string {
	out := make([]string, len(named))
	for i, n := range named {
		out[i] = n.Name
	}
	return out
}

func TestStateDictOrderIsPyTorchs(t *testing.T) {
	s := NewStore()
	defer s.Free()
	root := s.Root()
	// A child created before its parent's own tensors still comes after
	// them, as in torch.nn.Module.state_dict.
	block := root.Sub("block")
	NewConv2d(block.Sub("inner"), 1, 2, Conv2dConfig{Kernel: 1})
	block.Buffer("counter", torch.Zeros(nil, torch.Float32CPU))
	block.Param("scale", torch.Ones([]int64{1}, torch.Float32CPU))
	NewBatchNorm2d(root.Sub("bn"), 2)
	root.Param("gain", torch.Ones([]int64{1}, torch.Float32CPU))

	assert.Equal(t, []string{
		"gain",
		"block.scale", "block.counter",
		"block.inner.weight", "block.inner.bias",
		"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
	}, keys(s.StateDict()))
	assert.Equal(t, []string{"gain", "block.scale", "block.inner.weight", "block.inner.bias", "bn.weight", "bn.bias"},
		keys(s.NamedParameters()))
	assert.Equal(t, int64(1+1+2+2+2+2), s.NumParameters())
	assert.Equal(t, "block.inner", block.Sub("inner").Name())

	nbt, ok := s.Lookup("bn.num_batches_tracked")
	require.True(t, ok)
	assert.Equal(t, torch.Int64, nbt.DType())
	assert.Empty(t, nbt.Shape())
	for _, p := range s.Parameters() {
		assert.True(t, p.RequiresGrad())
	}
	assert.False(t, nbt.RequiresGrad())
}

func TestBadNamesPanicWithTorchError(t *testing.T) {
	s := NewStore()
	defer s.Free()
	root := s.Root()
	root.Param("w", torch.Ones([]int64{1}, torch.Float32CPU))
	for name, tc := range map[string]struct {
		f    func()
		want string
	}{
		"empty":          {func() { root.Sub("") }, `torch: nn: bad sub-module name "" under "": names are non-empty and have no dots`},
		"dotted":         {func() { root.Sub("a.b") }, `torch: nn: bad sub-module name "a.b" under ""`},
		"duplicate":      {func() { root.Param("w", torch.Ones([]int64{1}, torch.Float32CPU)) }, `torch: nn: "w" is already registered`},
		"param as child": {func() { root.Sub("w") }, `torch: nn: "w" is already a parameter or buffer`},
		"bad conv":       {func() { NewConv2d(root.Sub("c"), 3, 4, Conv2dConfig{Kernel: 3, Groups: 2, NoBias: true}) }, "torch: conv2d: 3 in and 4 out channels are not divisible by 2 groups"},
	} {
		err := torch.Try(tc.f)
		var te *torch.Error
		assert.ErrorAs(t, err, &te, name)
		assert.ErrorContains(t, err, tc.want, name)
	}
}

func TestStoreOutlivesScopes(t *testing.T) {
	var s *Store
	var conv *Conv2d
	torch.Scoped(func(*torch.Scope) {
		s = NewStore()
		conv = NewConv2d(s.Root().Sub("conv"), 1, 1, Conv2dConfig{Kernel: 1, NoBias: true})
	})
	defer s.Free()
	assert.False(t, conv.Weight.IsFreed())
	assert.Equal(t, []int64{1, 1, 1, 1}, conv.Weight.Shape())

	s.Free()
	s.Free()
	assert.True(t, conv.Weight.IsFreed())
	err := torch.Try(func() { conv.Forward(torch.Ones([]int64{1, 1, 2, 2}, torch.Float32CPU)) })
	assert.ErrorContains(t, err, "freed")
	assert.Error(t, s.LoadStateDict(nil, false))
}

func TestModeReachesLayers(t *testing.T) {
	s := NewStore()
	defer s.Free()
	seq := NewSequential(s.Root()).Dropout(0.5).BatchNorm2d(2)
	bn := seq.Layers()[1].(*BatchNorm2d)
	x := torch.Randn([]int64{4, 2, 3, 3}, torch.Float32CPU).AddScalar(5)

	require.True(t, s.Training())
	y := seq.Forward(x)
	assert.Equal(t, []int64{1}, bn.NumBatchesTracked.Int64s())
	// Batch statistics: every channel of y has mean 0 whatever dropout did.
	for _, m := range y.MeanDims([]int64{0, 2, 3}, false).Float32s() {
		assert.InDelta(t, 0, m, 1e-5)
	}
	assert.Greater(t, bn.RunningMean.Min().Item(), 0.2, "running mean moved towards the batch mean")

	s.Eval()
	assert.False(t, s.Training())
	before := bn.RunningMean.Float32s()
	y = seq.Forward(x)
	assert.Equal(t, before, bn.RunningMean.Float32s(), "eval mode leaves running stats alone")
	assert.Equal(t, []int64{1}, bn.NumBatchesTracked.Int64s())
	// No dropout and running statistics: y = (x − mean)/√(var + eps).
	mean := bn.RunningMean.Reshape(1, 2, 1, 1)
	sd := bn.RunningVar.AddScalar(1e-5).Sqrt().Reshape(1, 2, 1, 1)
	want := x.Sub(mean).Div(sd)
	assert.InDelta(t, 0, want.Sub(y).Abs().Max().Item(), 1e-5)

	err := torch.Try(func() { bn.Forward(torch.Ones([]int64{2, 3}, torch.Float32CPU)) })
	assert.ErrorContains(t, err, "expected 4D input")
	s.Train()
	err = torch.Try(func() { bn.Forward(torch.Ones([]int64{1, 2, 1, 1}, torch.Float32CPU)) })
	assert.ErrorContains(t, err, "expected more than 1 value per channel when training")
	assert.Equal(t, []int64{1}, bn.NumBatchesTracked.Int64s(), "a failed pass counts no batch")
}

func TestInPlaceReLUNeverTouchesTheInput(t *testing.T) {
	s := NewStore()
	defer s.Free()
	seq := NewSequential(s.Root()).ReLU().Conv2d(1, 1, Conv2dConfig{Kernel: 1, NoBias: true}).ReLU()
	assert.Equal(t, ReLU{InPlace: false}, seq.Layers()[0])
	assert.Equal(t, ReLU{InPlace: true}, seq.Layers()[2])
	x := torch.FromSlice([]float32{-1, 2, -3, 4}, 1, 1, 2, 2)
	y := seq.Forward(x)
	assert.Equal(t, []float32{-1, 2, -3, 4}, x.Float32s())
	for _, v := range y.Float32s() {
		assert.GreaterOrEqual(t, v, float32(0))
	}
}

// TestLayersMatchPyTorch builds the same layers after the same seed in Go
// and in PyTorch and compares weights bit for bit, then a training-mode
// forward pass, the running statistics it updates, and eval-mode outputs.
func TestLayersMatchPyTorch(t *testing.T) {
	const script = `
import json, torch, torch.nn as nn
torch.manual_seed(42)
net = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1),
    nn.BatchNorm2d(8),
    nn.ReLU(inplace=True),
    nn.Conv2d(8, 4, 3, stride=2, padding=2, dilation=2, groups=2, bias=False),
    nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1),
    nn.Sigmoid(),
    nn.MaxPool2d(2),
    nn.AdaptiveMaxPool2d(1),
)
x = torch.randn(2, 3, 8, 8)
out = {"init": {k: v.flatten().tolist() for k, v in net.state_dict().items()}}
y = net(x)
out["train"] = y.flatten().tolist()
out["after"] = {k: v.flatten().tolist() for k, v in net.state_dict().items()}
net.eval()
with torch.no_grad():
    out["eval"] = net(x).flatten().tolist()
print(json.dumps(out))
`
	var ref struct {
		Init, After map[string][]float64
		Train, Eval []float64
	}
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, "", script)), &ref))

	torch.ManualSeed(42)
	s := NewStore()
	defer s.Free()
	net := NewSequential(s.Root()).
		Conv2d(3, 8, Conv2dConfig{Kernel: 3, Padding: 1}).
		BatchNorm2d(8).
		ReLU().
		Conv2d(8, 4, Conv2dConfig{Kernel: 3, Stride: 2, Padding: 2, Dilation: 2, Groups: 2, NoBias: true}).
		ConvTranspose2d(4, 6, Conv2dConfig{Kernel: 4, Stride: 2, Padding: 1}).
		Sigmoid().
		MaxPool2d(2).
		AdaptiveMaxPool2d(1)
	x := torch.Randn([]int64{2, 3, 8, 8}, torch.Float32CPU)

	sd := s.StateDict()
	require.Len(t, sd, len(ref.Init))
	for _, n := range sd {
		assert.Equal(t, ref.Init[n.Name], values(n.Tensor), "%s differs from PyTorch's", n.Name)
	}
	assertClose(t, ref.Train, values(net.Forward(x)), 1e-5, "train output")
	for _, n := range sd {
		assertClose(t, ref.After[n.Name], values(n.Tensor), 1e-5, n.Name+" after the pass")
	}
	s.Eval()
	torch.InferenceMode(func() { assertClose(t, ref.Eval, values(net.Forward(x)), 1e-5, "eval output") })
}

func values(t *torch.Tensor) []float64 { return t.Detach().To(torch.Float64).Float64s() }

func assertClose(t *testing.T, want, got []float64, tol float64, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		if math.Abs(want[i]-got[i]) > tol || math.IsNaN(got[i]) {
			t.Errorf("%s: element %d is %g, PyTorch's %g", what, i, got[i], want[i])
			return
		}
	}
}

// TestPortingLayersMatchPyTorch builds a chain of the porting layers after
// the same seed in Go and in PyTorch and compares their initial weights bit
// for bit, the outputs, and the gradients of the parameters and the input.
func TestPortingLayersMatchPyTorch(t *testing.T) {
	const script = `
import json, torch, torch.nn as nn
torch.manual_seed(7)
net = nn.Sequential(
    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
    nn.GroupNorm(2, 4),
    nn.LeakyReLU(0.1),
    nn.AvgPool2d(3, stride=2, padding=1),
    nn.Upsample(size=(9, 7), mode="nearest"),
    nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False),
    nn.LayerNorm([4, 3]),
    nn.GELU(),
    nn.AdaptiveAvgPool2d(2),
    nn.Flatten(),
    nn.Linear(16, 5),
    nn.GELU(approximate="tanh"),
    nn.Identity(),
    nn.Linear(5, 3, bias=False),
    nn.Identity(),
    nn.Softmax(dim=1),
)
x = torch.randn(2, 4, 6, 6, requires_grad=True)
out = {"init": {k: v.flatten().tolist() for k, v in net.state_dict().items()}}
with torch.no_grad():
    for name, p in net.named_parameters():
        p.add_(torch.randn(p.shape) * 0.1)  # weights that are not ones and zeros
y = net(x)
w = torch.arange(y.numel(), dtype=torch.float32).reshape(y.shape) / 7
(y * w).sum().backward()
out["y"] = y.flatten().tolist()
out["grads"] = {k: p.grad.flatten().tolist() for k, p in net.named_parameters()}
out["x_grad"] = x.grad.flatten().tolist()
# Nearest by a fractional factor: the factor places the samples.
z = torch.arange(2 * 4 * 5 * 5, dtype=torch.float32).reshape(2, 4, 5, 5)
out["nearest"] = nn.functional.interpolate(z, scale_factor=1.7, mode="nearest").flatten().tolist()
out["nearest_shape"] = list(nn.functional.interpolate(z, scale_factor=1.7, mode="nearest").shape)
print(json.dumps(out))
`
	var ref struct {
		Init, Grads  map[string][]float64
		Y            []float64
		XGrad        []float64 `json:"x_grad"`
		Nearest      []float64
		NearestShape []int64 `json:"nearest_shape"`
	}
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, "", script)), &ref))

	torch.ManualSeed(7)
	s := NewStore()
	defer s.Free()
	net := NewSequential(s.Root()).
		Add(func(Path) Module { return Upsample{Interpolation{Scale: 2, Mode: "bilinear", AlignCorners: true}} }).
		Add(func(p Path) Module { return NewGroupNorm(p, 2, 4) }).
		Add(func(Path) Module { return LeakyReLU{Slope: 0.1} }).
		Add(func(Path) Module { return AvgPool2d{Kernel: 3, Stride: 2, Padding: 1} }).
		Add(func(Path) Module { return Upsample{Interpolation{Size: [2]int64{9, 7}}} }).
		Add(func(Path) Module { return Upsample{Interpolation{Scale: 0.5, Mode: "bilinear"}} }).
		Add(func(p Path) Module { return NewLayerNorm(p, 4, 3) }).
		Add(func(Path) Module { return GELU{} }).
		Add(func(Path) Module { return AdaptiveAvgPool2d{Size: 2} }).
		Add(func(Path) Module { return Flatten{} }).
		Add(func(p Path) Module { return NewLinear(p, 16, 5, true) }).
		Add(func(Path) Module { return GELU{Tanh: true} }).
		Add(func(Path) Module { return Identity{} }).
		Add(func(p Path) Module { return NewLinear(p, 5, 3, false) }).
		Add(func(Path) Module { return Identity{} }).
		Add(func(Path) Module { return Softmax{Dim: 1} })

	sd := s.StateDict()
	require.Equal(t, len(ref.Init), len(sd))
	for _, n := range sd {
		assert.Equal(t, ref.Init[n.Name], values(n.Tensor), "%s: initial values differ from PyTorch's", n.Name)
	}
	x := torch.Randn([]int64{2, 4, 6, 6}, torch.Float32CPU).SetRequiresGrad(true)
	torch.NoGrad(func() {
		for _, p := range s.NamedParameters() {
			p.Tensor.AddInPlace(torch.Randn(p.Tensor.Shape(), torch.Float32CPU), 0.1)
		}
	})
	y := net.Forward(x)
	n := y.Numel()
	w := torch.Arange(0, float64(n), 1, torch.Float32CPU).Reshape(y.Shape()...).DivScalar(7)
	y.Mul(w).Sum().Backward()
	assertClose(t, ref.Y, values(y), 1e-5, "output")
	for _, p := range s.NamedParameters() {
		assertClose(t, ref.Grads[p.Name], values(p.Tensor.Grad()), 1e-4, p.Name+"'s gradient")
	}
	assertClose(t, ref.XGrad, values(x.Grad()), 1e-4, "the input's gradient")

	z := torch.Arange(0, 2*4*5*5, 1, torch.Float32CPU).Reshape(2, 4, 5, 5)
	nearest := Interpolate(z, Interpolation{Scale: 1.7})
	assert.Equal(t, ref.NearestShape, nearest.Shape())
	assert.Equal(t, ref.Nearest, values(nearest))
}

func TestPortingLayersRefuseBadSettings(t *testing.T) {
	s := NewStore()
	defer s.Free()
	x := torch.Ones([]int64{1, 4, 2, 2}, torch.Float32CPU)
	for name, tc := range map[string]struct {
		f    func()
		want string
	}{
		"groups":        {func() { NewGroupNorm(s.Root().Sub("g"), 3, 4) }, "group_norm: 4 channels do not split into 3 groups"},
		"layer shape":   {func() { NewLayerNorm(s.Root().Sub("l")) }, "layer_norm: no normalised shape"},
		"linear size":   {func() { NewLinear(s.Root().Sub("f"), 0, 2, true) }, "linear: in and out features must be positive"},
		"linear input":  {func() { NewLinear(s.Root().Sub("f2"), 3, 2, true).Forward(x) }, "torch: linear:"},
		"no size":       {func() { Interpolate(x, Interpolation{}) }, "interpolate: neither a size nor a positive scale factor"},
		"mode":          {func() { Interpolate(x, Interpolation{Scale: 2, Mode: "bicubic"}) }, `interpolate: unknown mode "bicubic"`},
		"align nearest": {func() { Interpolate(x, Interpolation{Scale: 2, AlignCorners: true}) }, "align_corners only applies"},
		"3-D scale":     {func() { Interpolate(torch.Ones([]int64{4, 2, 2}, torch.Float32CPU), Interpolation{Scale: 2}) }, "expected 4D input (got 3D input)"},
		"flatten":       {func() { Flatten{}.Forward(torch.Ones(nil, torch.Float32CPU)) }, "flatten: a scalar has no batch axis"},
	} {
		err := torch.Try(tc.f)
		assert.ErrorContains(t, err, tc.want, name)
	}
}

// TestFoldBatchNorm: in evaluation mode a convolution and the batch norm
// after it run as one convolution with the same outputs, whatever the
// statistics, the device or a state dict loaded later; training mode and
// the state dict are untouched.
func TestFoldBatchNorm(t *testing.T) {
	torch.ManualSeed(3)
	s := NewStore()
	defer s.Free()
	seq := NewSequential(s.Root()).
		Conv2d(3, 4, Conv2dConfig{Kernel: 3, Padding: 1}).
		BatchNorm2d(4).
		ReLU().
		Conv2d(4, 2, Conv2dConfig{Kernel: 1, NoBias: true}).
		BatchNorm2d(2)
	require.Equal(t, 2, seq.FoldBatchNorm())
	assert.Equal(t, 0, seq.FoldBatchNorm(), "folding twice folds nothing more")
	x := torch.Randn([]int64{2, 3, 6, 6}, torch.Float32CPU)
	seq.Forward(x) // training: moves the running statistics away from 0 and 1
	names := keys(s.StateDict())

	compare := func(what string) {
		t.Helper()
		var plain, folded []float64
		torch.NoGrad(func() { folded = values(seq.Forward(x)) })
		s.SetFastPath(false)
		torch.NoGrad(func() { plain = values(seq.Forward(x)) })
		s.SetFastPath(true)
		assertClose(t, plain, folded, 1e-5, what)
		assert.NotEqual(t, plain, folded, "%s: the folded path computes differently, up to rounding", what)
	}
	s.Eval()
	conv := seq.Layers()[0].(*Conv2d)
	require.NotNil(t, conv.folded[0], "evaluation folds")
	compare("after training")
	assert.Equal(t, names, keys(s.StateDict()), "the state dict is unchanged")

	// New statistics through a state dict: folded again.
	sd := s.StateDict()
	for i := range sd {
		if sd[i].Name == "1.running_mean" {
			sd[i].Tensor = torch.FromSlice([]float32{1, -2, 3, 0.5}, 4)
		}
	}
	require.NoError(t, s.LoadStateDict(sd, true))
	compare("after loading")

	// With autograd on, evaluation runs the layers as they are, so that
	// their parameters get gradients (fine-tuning with frozen statistics,
	// saliency maps).
	seq.Forward(x).Sum().Backward()
	bnEval := seq.Layers()[1].(*BatchNorm2d)
	require.NotNil(t, conv.Weight.Grad())
	require.NotNil(t, bnEval.Weight.Grad(), "the batch norm ran")
	assert.NotZero(t, bnEval.Weight.Grad().Abs().Sum().Item())
	// Asking for evaluation mode again keeps the folded tensors.
	folded := conv.folded[0]
	s.Eval()
	assert.Same(t, folded, conv.folded[0])

	s.Train()
	assert.Nil(t, conv.folded[0], "training drops the folded tensors")
	bn := seq.Layers()[1].(*BatchNorm2d)
	before := bn.NumBatchesTracked.Int64s()[0]
	seq.Forward(x)
	assert.Equal(t, before+1, bn.NumBatchesTracked.Int64s()[0], "training runs the batch norm")
}
