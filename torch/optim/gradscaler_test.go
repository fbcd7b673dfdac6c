package optim

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGradScalerUpdateRule follows the scale through overflows and clean
// runs, with a growth interval of 3, as torch._amp_update_scale_ sets it.
func TestGradScalerUpdateRule(t *testing.T) {
	s, err := NewGradScaler(GradScalerOptions{InitScale: 8, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 3})
	require.NoError(t, err)
	for i, step := range []struct {
		overflow bool
		scale    float64
		tracker  int64
	}{
		{false, 8, 1}, {false, 8, 2}, {false, 16, 0}, // grows after 3 clean steps
		{true, 8, 0}, // shrinks and starts counting again
		{false, 8, 1}, {true, 4, 0}, {true, 2, 0},
		{false, 2, 1}, {false, 2, 2}, {false, 4, 0},
	} {
		found := step.overflow
		s.found = &found
		s.Update()
		assert.Equal(t, GradScalerState{Scale: step.scale, GrowthTracker: step.tracker}, s.State(), "after step %d", i+1)
	}

	// The scale does not grow past float32's range.
	big, err := NewGradScaler(GradScalerOptions{InitScale: math.MaxFloat32, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1})
	require.NoError(t, err)
	found := false
	big.found = &found
	big.Update()
	assert.Equal(t, float64(math.MaxFloat32), big.ScaleValue())
}

// TestGradScalerSkipsOverflowingSteps checks Step on real gradients: a
// step with an infinity or a NaN in any gradient leaves the parameters
// as they were; a clean one divides the gradients by the scale and steps.
func TestGradScalerSkipsOverflowingSteps(t *testing.T) {
	for _, bad := range []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())} {
		p, q := leaf(1, 2), leaf(3)
		opt, err := NewSGD([]*torch.Tensor{p, q}, SGDOptions{LR: 0.5})
		require.NoError(t, err)
		s, err := NewGradScaler(DefaultGradScalerOptions())
		require.NoError(t, err)

		setGrad(p, 65536, 131072)
		setGrad(q, bad)
		stepped, err := s.Step(opt, []*torch.Tensor{p, q})
		require.NoError(t, err)
		assert.False(t, stepped, "%v", bad)
		assert.Equal(t, []float32{1, 2}, p.Float32s())
		s.Update()
		assert.Equal(t, 32768.0, s.ScaleValue())

		setGrad(p, 32768, 65536)
		setGrad(q, 0)
		stepped, err = s.Step(opt, []*torch.Tensor{p, q})
		require.NoError(t, err)
		assert.True(t, stepped)
		assert.Equal(t, []float32{1, 2}, p.Grad().Float32s(), "the gradients are unscaled in place")
		assert.Equal(t, []float32{0.5, 1}, p.Float32s())
		_, err = s.Step(opt, []*torch.Tensor{p, q})
		assert.ErrorContains(t, err, "Step twice without Update")
		s.Update()
		assert.Equal(t, GradScalerState{Scale: 32768, GrowthTracker: 1}, s.State())
	}
}

func TestGradScalerRefusals(t *testing.T) {
	for _, tc := range []struct {
		opts GradScalerOptions
		want string
	}{
		{GradScalerOptions{InitScale: 0, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1}, "initial scale 0"},
		{GradScalerOptions{InitScale: 1e300, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 1}, "want a positive float32"},
		{GradScalerOptions{InitScale: 1, GrowthFactor: 1, BackoffFactor: 0.5, GrowthInterval: 1}, "growth factor 1"},
		{GradScalerOptions{InitScale: 1, GrowthFactor: 2, BackoffFactor: 1, GrowthInterval: 1}, "backoff factor 1"},
		{GradScalerOptions{InitScale: 1, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 0}, "growth interval 0"},
	} {
		_, err := NewGradScaler(tc.opts)
		assert.ErrorContains(t, err, tc.want)
	}
	s, err := NewGradScaler(DefaultGradScalerOptions())
	require.NoError(t, err)
	for _, st := range []GradScalerState{{Scale: -1}, {Scale: 0.1}, {Scale: 1, GrowthTracker: 2000}, {Scale: 1, GrowthTracker: -1}} {
		assert.Error(t, s.SetState(st), "%+v", st)
	}
	assert.Equal(t, 65536.0, s.ScaleValue(), "a refused state changes nothing")
	require.NoError(t, s.SetState(GradScalerState{Scale: 0.125, GrowthTracker: 1999}))
	assert.Equal(t, GradScalerState{Scale: 0.125, GrowthTracker: 1999}, s.State())
}

// The reference: torch.amp.GradScaler on the CPU (PyTorch 2.3 and later)
// with SGD, over the gradients of the JSON file named by its argument,
// scaled by the scale of each step as a backward pass of a scaled loss
// would leave them. Prints, per step, the scale, the growth tracker,
// whether it stepped, and the parameters.
const gradScalerScript = `
import json, sys, torch
if not hasattr(torch, "amp") or not hasattr(torch.amp, "GradScaler"):
    print("unsupported")
    sys.exit(0)
inp = json.load(open(sys.argv[1]))
p = torch.tensor(inp["param"], dtype=torch.float32, requires_grad=True)
opt = torch.optim.SGD([p], lr=0.25)
s = torch.amp.GradScaler("cpu", init_scale=inp["init"], growth_interval=inp["interval"])
out = []
for g in inp["grads"]:
    p.grad = s.scale(torch.tensor(g, dtype=torch.float32))
    before = p.detach().clone()
    s.step(opt)
    s.update()
    st = s.state_dict()
    out.append({"scale": st["scale"], "tracker": st["_growth_tracker"],
                "stepped": not torch.equal(before, p.detach()), "param": p.detach().tolist()})
json.dump(out, sys.stdout)
`

func TestGradScalerMatchesPyTorch(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	grads := [][]float64{{1e-3, -2e-4, 3}, {0.5, inf, 1}, {1e-4, 1e-4, 1e-4}, {0.25, 0.5, -0.75}, {nan, 0, 0},
		{3e-5, 1, 2}, {-1, -2, -3}, {0.1, 0.2, 0.3}, {1, 1, 1}, {7, 8, 9}}
	// JSON has no infinities or NaNs: send them as strings and let Python
	// turn them back.
	enc := make([][]any, len(grads))
	for i, g := range grads {
		for _, v := range g {
			if math.IsInf(v, 0) || math.IsNaN(v) {
				enc[i] = append(enc[i], formatSpecial(v))
			} else {
				enc[i] = append(enc[i], v)
			}
		}
	}
	dir := t.TempDir()
	in, err := json.Marshal(map[string]any{"param": []float64{1, -1, 0.5}, "init": 1024.0, "interval": 3, "grads": enc})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.json"), in, 0o644))
	script := strings.Replace(gradScalerScript, `torch.tensor(g, dtype=torch.float32)`,
		`torch.tensor([float(v) for v in g], dtype=torch.float32)`, 1)
	out := pytorchtest.Run(t, dir, script, filepath.Join(dir, "in.json"))
	if strings.TrimSpace(out) == "unsupported" {
		t.Skip("this PyTorch has no torch.amp.GradScaler on the CPU (it came with 2.3); the libtorch 2.x tests run it")
	}
	var want []struct {
		Scale   float64
		Tracker int64
		Stepped bool
		Param   []float64
	}
	require.NoError(t, json.Unmarshal([]byte(out), &want))
	require.Len(t, want, len(grads))

	p := leaf(1, -1, 0.5)
	opt, err := NewSGD([]*torch.Tensor{p}, SGDOptions{LR: 0.25})
	require.NoError(t, err)
	s, err := NewGradScaler(GradScalerOptions{InitScale: 1024, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 3})
	require.NoError(t, err)
	for i, g := range grads {
		f := make([]float32, len(g))
		for k, v := range g {
			f[k] = float32(v)
		}
		setGrad(p, torch.FromSlice(f).MulScalar(s.ScaleValue()).Float32s()...)
		stepped, err := s.Step(opt, []*torch.Tensor{p})
		require.NoError(t, err)
		s.Update()
		w := want[i]
		assert.Equal(t, w.Stepped, stepped, "step %d", i+1)
		assert.Equal(t, GradScalerState{Scale: w.Scale, GrowthTracker: w.Tracker}, s.State(), "step %d", i+1)
		for k, v := range p.Float32s() {
			assert.Equal(t, float32(w.Param[k]), v, "step %d, parameter %d", i+1, k)
		}
	}
}

// formatSpecial spells an infinity or NaN as Python's float() reads it.
func formatSpecial(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case v > 0:
		return "inf"
	}
	return "-inf"
}

// TestGradScalerEdgeGradients: an empty gradient has nothing to check, and
// a float64 gradient beyond float32's range is finite, so the step runs.
func TestGradScalerEdgeGradients(t *testing.T) {
	empty := torch.FromSlice([]float32{}).SetRequiresGrad(true)
	empty.BackwardWith(torch.FromSlice([]float32{}), false)
	wide := torch.FromSlice([]float64{1}).SetRequiresGrad(true)
	wide.BackwardWith(torch.FromSlice([]float64{1e300}), false)
	opt, err := NewSGD([]*torch.Tensor{empty, wide}, SGDOptions{LR: 1e-300})
	require.NoError(t, err)
	s, err := NewGradScaler(GradScalerOptions{InitScale: 1, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 10})
	require.NoError(t, err)
	stepped, err := s.Step(opt, []*torch.Tensor{empty, wide})
	require.NoError(t, err)
	assert.True(t, stepped)
	assert.InDelta(t, 0, wide.Float64s()[0], 1e-12, "1 − 1e-300·1e300")
}
