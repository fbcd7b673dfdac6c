package nn

import (
	"testing"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/pth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostDTypesPairEqualNames(t *testing.T) {
	require.Len(t, hostDTypes, 10, "every dtype of package torch")
	require.Len(t, deviceDTypes, len(hostDTypes), "no two dtypes share a file dtype")
	for d, h := range hostDTypes {
		assert.Equal(t, d.String(), h.String())
		assert.Equal(t, d.Size(), h.ElemSize(), d.String())
		assert.Equal(t, d.IsFloatingPoint(), h.IsFloat(), d.String())
	}
}

func TestStateDictThroughTheHost(t *testing.T) {
	s, _, _ := smallNet()
	defer s.Free()
	torch.NoGrad(func() {
		for _, n := range s.StateDict() {
			if n.Tensor.DType().IsFloatingPoint() {
				n.Tensor.NormalInPlace(0, 1)
			}
		}
	})
	sd, err := HostStateDict(s.StateDict())
	require.NoError(t, err)
	assert.Equal(t, keys(s.StateDict()), sd.Keys())
	n, _ := sd.Get("bn.num_batches_tracked")
	assert.Equal(t, pth.Int64, n.DType)

	torch.Scoped(func(*torch.Scope) {
		named, err := NamedFromHost(sd)
		require.NoError(t, err)
		want := s.StateDict()
		require.Len(t, named, len(want))
		for i, n := range named {
			assert.Equal(t, want[i].Name, n.Name)
			assert.Equal(t, want[i].Tensor.DType(), n.Tensor.DType(), n.Name)
			assert.Equal(t, want[i].Tensor.Shape(), n.Tensor.Shape(), n.Name)
			assert.Equal(t, want[i].Tensor.Bytes(), n.Tensor.Bytes(), n.Name)
		}
	})

	// Every dtype crosses both ways with its bytes.
	torch.Scoped(func(*torch.Scope) {
		for d := range hostDTypes {
			x := torch.Arange(0, 6, 1, torch.Float32CPU).Reshape(2, 3).To(d)
			sd, err := HostStateDict([]Named{{Name: "x", Tensor: x}})
			require.NoError(t, err, d.String())
			named, err := NamedFromHost(sd)
			require.NoError(t, err, d.String())
			assert.Equal(t, d, named[0].Tensor.DType())
			assert.Equal(t, x.Bytes(), named[0].Tensor.Bytes(), d.String())
		}
	})

	_, err = HostStateDict([]Named{{Name: "gone"}})
	assert.ErrorContains(t, err, "gone: no tensor (nil or freed)")
	bad := pth.NewStateDict()
	bad.Set("short", &pth.Tensor{DType: pth.Float32, Shape: []int64{3}, Data: []byte{1}})
	_, err = NamedFromHost(bad)
	assert.ErrorContains(t, err, "short: float32 tensor of shape [3] needs 12 bytes of data, has 1")
}

func TestOptimizerStateThroughTheHost(t *testing.T) {
	torch.Scoped(func(*torch.Scope) {
		state := pth.NewDict()
		param := pth.NewDict()
		param.Set("step", torch.Full(nil, 3, torch.Float32CPU))
		param.Set("exp_avg", torch.Ones([]int64{2}, torch.Float32CPU))
		state.Set(0, param)
		group := pth.NewDict()
		group.Set("lr", 1e-3)
		group.Set("betas", pth.Tuple{0.9, 0.99})
		group.Set("params", []any{0})
		group.Set("amsgrad", false)
		group.Set("foreach", nil)
		sd := pth.NewDict()
		sd.Set("state", state)
		sd.Set("param_groups", []any{group})

		host, err := OptimizerStateToHost(sd)
		require.NoError(t, err)
		groups, _ := host.Get("param_groups")
		params, _ := groups.([]any)[0].(*pth.Dict).Get("params")
		assert.Equal(t, []any{int64(0)}, params, "a Go int is a Python int")
		hostState, _ := host.Get("state")
		p0, _ := hostState.(*pth.Dict).Get(0)
		avg, _ := p0.(*pth.Dict).Get("exp_avg")
		assert.Equal(t, []int64{2}, avg.(*pth.Tensor).Shape)

		back, err := OptimizerStateFromHost(host)
		require.NoError(t, err)
		again, err := OptimizerStateToHost(back)
		require.NoError(t, err)
		assert.Equal(t, host, again)
		backState, _ := back.Get("state")
		p0back, _ := backState.(*pth.Dict).Get(0)
		step, _ := p0back.(*pth.Dict).Get("step")
		assert.Equal(t, 3.0, step.(*torch.Tensor).Item())

		state.Set(1, struct{}{})
		_, err = OptimizerStateToHost(sd)
		assert.ErrorContains(t, err, "optimizer[state][1]: cannot save a value of Go type struct {}")
	})
}

func TestOptimizerStateFromHostRejects(t *testing.T) {
	_, err := OptimizerStateFromHost([]any{int64(1)})
	require.ErrorContains(t, err, "not a dict")
	d := pth.NewDict()
	d.Set("state", pth.Device("cuda:0"))
	_, err = OptimizerStateFromHost(d)
	require.ErrorContains(t, err, "optimizer[state]")
	_, err = OptimizerStateToHost(nil)
	require.ErrorContains(t, err, "no optimizer state")
}
