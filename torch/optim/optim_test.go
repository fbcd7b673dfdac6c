package optim

import (
	"math"
	"testing"

	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func leaf(xs ...float32) *torch.Tensor {
	return torch.FromSlice(xs).SetRequiresGrad(true)
}

func setGrad(p *torch.Tensor, g ...float32) {
	p.ZeroGrad()
	p.BackwardWith(torch.FromSlice(g, p.Shape()...), false)
}

func TestNewRejectsBadParameters(t *testing.T) {
	p := leaf(1, 2)
	freed := leaf(1)
	freed.Free()
	adam := func(o AdamOptions) func() error {
		return func() error { _, err := NewAdam([]*torch.Tensor{p}, o); return err }
	}
	sgd := func(o SGDOptions) func() error {
		return func() error { _, err := NewSGD([]*torch.Tensor{p}, o); return err }
	}
	withAdam := func(f func(*AdamOptions)) AdamOptions { o := DefaultAdamOptions(); f(&o); return o }
	for _, tc := range []struct {
		name string
		new  func() error
		want string
	}{
		{"no parameters", func() error { _, err := NewAdam(nil, DefaultAdamOptions()); return err }, "empty parameter list"},
		{"no groups", func() error { _, err := NewSGDGroups(); return err }, "empty parameter list"},
		{"nil parameter", func() error { _, err := NewSGD([]*torch.Tensor{p, nil}, SGDOptions{}); return err }, "parameter 1 is nil or freed"},
		{"freed parameter", func() error { _, err := NewSGD([]*torch.Tensor{freed}, SGDOptions{}); return err }, "parameter 0 is nil or freed"},
		{"duplicate in group", func() error { _, err := NewSGD([]*torch.Tensor{p, p}, SGDOptions{}); return err }, "parameter 1 is also parameter 0 of group 0"},
		{"duplicate across groups", func() error {
			_, err := NewAdamGroups(AdamGroup{[]*torch.Tensor{p}, DefaultAdamOptions()}, AdamGroup{[]*torch.Tensor{p}, DefaultAdamOptions()})
			return err
		}, "parameter group 1: parameter 0 is also parameter 0 of group 0"},
		{"negative lr", adam(withAdam(func(o *AdamOptions) { o.LR = -1 })), "invalid learning rate -1"},
		{"NaN lr", sgd(SGDOptions{LR: math.NaN()}), "invalid learning rate NaN"},
		{"negative eps", adam(withAdam(func(o *AdamOptions) { o.Eps = -1e-8 })), "invalid epsilon"},
		{"beta 1", adam(withAdam(func(o *AdamOptions) { o.Betas[1] = 1 })), "beta parameter at index 1"},
		{"negative beta", adam(withAdam(func(o *AdamOptions) { o.Betas[0] = -0.1 })), "beta parameter at index 0"},
		{"adam weight decay", adam(withAdam(func(o *AdamOptions) { o.WeightDecay = -1 })), "invalid weight decay"},
		{"sgd weight decay", sgd(SGDOptions{WeightDecay: -1}), "invalid weight decay"},
		{"negative momentum", sgd(SGDOptions{Momentum: -0.5}), "invalid momentum"},
		{"nesterov without momentum", sgd(SGDOptions{Nesterov: true}), "Nesterov momentum requires"},
		{"nesterov with dampening", sgd(SGDOptions{Momentum: 0.9, Dampening: 0.1, Nesterov: true}), "Nesterov momentum requires"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, tc.new(), tc.want)
		})
	}
}

func TestLearningRates(t *testing.T) {
	a, b := leaf(1), leaf(2)
	opt, err := NewSGDGroups(SGDGroup{[]*torch.Tensor{a}, SGDOptions{LR: 0.1}}, SGDGroup{[]*torch.Tensor{b}, SGDOptions{LR: 0.2}})
	require.NoError(t, err)
	assert.Equal(t, 0.1, opt.LR())
	assert.Equal(t, []float64{0.1, 0.2}, opt.LRs())

	require.NoError(t, opt.SetGroupLR(1, 0.5))
	assert.Equal(t, []float64{0.1, 0.5}, opt.LRs())
	assert.Equal(t, 0.5, opt.Options(1).LR)
	require.NoError(t, opt.SetLR(0.25))
	assert.Equal(t, []float64{0.25, 0.25}, opt.LRs())

	require.ErrorContains(t, opt.SetLR(-1), "invalid learning rate")
	require.ErrorContains(t, opt.SetLR(math.Inf(1)), "invalid learning rate")
	require.ErrorContains(t, opt.SetGroupLR(2, 0.1), "no parameter group 2 (there are 2)")
	require.ErrorContains(t, opt.SetGroupLR(0, math.NaN()), "invalid learning rate")
	assert.Equal(t, []float64{0.25, 0.25}, opt.LRs(), "failed calls change nothing")

	// The new rate takes effect at the next step: plain SGD moves by lr·g.
	setGrad(a, 2)
	setGrad(b, 4)
	require.NoError(t, opt.Step())
	assert.Equal(t, []float32{0.5}, a.Float32s())
	assert.Equal(t, []float32{1}, b.Float32s())
}

func TestStepSkipsParametersWithoutGradient(t *testing.T) {
	a, b := leaf(1, 1), leaf(3)
	opt, err := NewAdam([]*torch.Tensor{a, b}, DefaultAdamOptions())
	require.NoError(t, err)
	setGrad(b, 1)
	require.NoError(t, opt.Step())
	assert.Equal(t, []float32{1, 1}, a.Float32s())
	assert.InDelta(t, 3-1e-3, b.Item(), 1e-6)

	sd, err := opt.StateDict()
	require.NoError(t, err)
	state, _ := sd.Get("state")
	assert.Equal(t, []any{int64(1)}, state.(*Dict).Keys(), "only the parameter with a gradient has state")

	opt.ZeroGrad()
	assert.Nil(t, a.Grad())
	assert.Nil(t, b.Grad())
	require.NoError(t, opt.Step())
	assert.InDelta(t, 3-1e-3, b.Item(), 1e-6, "a step without gradients changes nothing")
}

// A training step opens a scope around the forward pass, the backward pass
// and the optimizer step; the optimizer's state must outlive it.
func TestStateOutlivesCallersScope(t *testing.T) {
	p := leaf(1, 2, 3)
	adam, err := NewAdam([]*torch.Tensor{p}, DefaultAdamOptions())
	require.NoError(t, err)
	sgd, err := NewSGD([]*torch.Tensor{p}, SGDOptions{LR: 0.1, Momentum: 0.9})
	require.NoError(t, err)
	for _, opt := range []Optimizer{adam, sgd} {
		for range 3 {
			torch.Scoped(func(*torch.Scope) {
				setGrad(p, 1, 1, 1)
				require.NoError(t, opt.Step())
			})
		}
	}
	sd, err := adam.StateDict()
	require.NoError(t, err)
	state, _ := sd.Get("state")
	entry, _ := state.(*Dict).Get(0)
	step, _ := entry.(*Dict).Get("step")
	assert.Equal(t, 3.0, step.(*torch.Tensor).Item())
}

func TestStepReportsErrors(t *testing.T) {
	p := leaf(1, 2)
	opt, err := NewAdam([]*torch.Tensor{p}, DefaultAdamOptions())
	require.NoError(t, err)
	p.Free()
	err = opt.Step()
	require.ErrorContains(t, err, "optim: step")
	require.ErrorContains(t, err, "freed")
}

// The exported tensors are views of the optimizer's state, as in PyTorch:
// the next step shows through, and freeing them does not free the state.
func TestStateDictSharesState(t *testing.T) {
	p := leaf(1, 2)
	opt, err := NewSGD([]*torch.Tensor{p}, SGDOptions{LR: 0.1, Momentum: 0.5})
	require.NoError(t, err)
	setGrad(p, 1, 1)
	require.NoError(t, opt.Step())
	sd, err := opt.StateDict()
	require.NoError(t, err)
	state, _ := sd.Get("state")
	entry, _ := state.(*Dict).Get(0)
	buf, _ := entry.(*Dict).Get("momentum_buffer")
	assert.Equal(t, []float32{1, 1}, buf.(*torch.Tensor).Float32s())
	require.NoError(t, opt.Step())
	assert.Equal(t, []float32{1.5, 1.5}, buf.(*torch.Tensor).Float32s())
	buf.(*torch.Tensor).Free()
	require.NoError(t, opt.Step())
	assert.InDeltaSlice(t, []float64{1 - 0.1*(1+1.5+1.75), 2 - 0.1*(1+1.5+1.75)}, toFloat64s(p), 1e-6)
}

func toFloat64s(t *torch.Tensor) []float64 { return t.To(torch.Float64).Float64s() }

// PyTorch's SGD without momentum records a None momentum buffer for every
// parameter that had a gradient.
func TestSGDWithoutMomentumState(t *testing.T) {
	a, b := leaf(1), leaf(2)
	opt, err := NewSGD([]*torch.Tensor{a, b}, SGDOptions{LR: 0.1})
	require.NoError(t, err)
	setGrad(b, 1)
	require.NoError(t, opt.Step())
	sd, err := opt.StateDict()
	require.NoError(t, err)
	state, _ := sd.Get("state")
	require.Equal(t, []any{int64(1)}, state.(*Dict).Keys())
	entry, _ := state.(*Dict).Get(1)
	buf, ok := entry.(*Dict).Get("momentum_buffer")
	assert.True(t, ok)
	assert.Nil(t, buf)
}
