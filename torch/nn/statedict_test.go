package nn

import (
	"errors"
	"testing"

	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallNet is a convolution and a batch normalisation: keys conv.weight,
// conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var,
// bn.num_batches_tracked.
func smallNet() (*Store, *Conv2d, *BatchNorm2d) {
	s := NewStore()
	conv := NewConv2d(s.Root().Sub("conv"), 2, 3, Conv2dConfig{Kernel: 1})
	bn := NewBatchNorm2d(s.Root().Sub("bn"), 3)
	return s, conv, bn
}

// copyOf returns a state dict with copies of the store's tensors, each
// plus delta (integer tensors unchanged).
func copyOf(s *Store, delta float64) []Named {
	var out []Named
	for _, n := range s.StateDict() {
		c := n.Tensor.Detach().Clone()
		if c.DType().IsFloatingPoint() {
			c = c.AddScalar(delta)
		}
		out = append(out, Named{Name: n.Name, Tensor: c})
	}
	return out
}

func TestLoadStateDictCopiesIntoTheSameTensors(t *testing.T) {
	s, conv, bn := smallNet()
	defer s.Free()
	src, _, _ := smallNet()
	defer src.Free()
	weight := conv.Weight
	sd := copyOf(src, 0.5)
	sd[len(sd)-1].Tensor = torch.Scalar[int64](12)
	// A float64 checkpoint converts to the network's float32, as in PyTorch.
	sd[0].Tensor = sd[0].Tensor.To(torch.Float64)

	require.NoError(t, s.LoadStateDict(sd, true))
	assert.Same(t, weight, conv.Weight)
	assert.True(t, conv.Weight.RequiresGrad())
	assert.Equal(t, torch.Float32, conv.Weight.DType())
	assert.Equal(t, sd[0].Tensor.To(torch.Float32).Float32s(), conv.Weight.Float32s())
	assert.Equal(t, []float32{1.5, 1.5, 1.5}, bn.Weight.Float32s())
	assert.Equal(t, []int64{12}, bn.NumBatchesTracked.Int64s())
}

func TestStrictLoadListsEveryProblemAndCopiesNothing(t *testing.T) {
	s, conv, _ := smallNet()
	defer s.Free()
	before := conv.Bias.Float32s()
	var sd []Named
	for _, n := range copyOf(s, 1) {
		switch n.Name {
		case "bn.running_var": // missing
		case "conv.weight":
			sd = append(sd, Named{Name: n.Name, Tensor: torch.Zeros([]int64{3, 2, 3, 3}, torch.Float32CPU)})
		case "bn.bias":
			sd = append(sd, Named{Name: n.Name, Tensor: torch.Zeros([]int64{3}, torch.Options{DType: torch.Int64})})
		default:
			sd = append(sd, n)
		}
	}
	sd = append(sd, Named{Name: "module.extra", Tensor: torch.Zeros([]int64{1}, torch.Float32CPU)})

	err := s.LoadStateDict(sd, true)
	var le *LoadError
	require.True(t, errors.As(err, &le), "%v", err)
	assert.Equal(t, []string{"bn.running_var"}, le.Missing)
	assert.Equal(t, []string{"module.extra"}, le.Unexpected)
	require.Len(t, le.Mismatched, 2)
	assert.Contains(t, le.Mismatched[0], "size mismatch for conv.weight: copying a param with shape [3 2 3 3] from checkpoint, the shape in current model is [3 2 1 1]")
	assert.Contains(t, le.Mismatched[1], "dtype mismatch for bn.bias")
	msg := err.Error()
	assert.Contains(t, msg, `missing key(s) in state_dict: "bn.running_var"`)
	assert.Contains(t, msg, `unexpected key(s) in state_dict: "module.extra"`)
	assert.Equal(t, before, conv.Bias.Float32s(), "a failed load copies nothing")

	// Not strict: missing and unexpected keys are fine, mismatches are not.
	err = s.LoadStateDict(sd, false)
	require.True(t, errors.As(err, &le))
	assert.Empty(t, le.Missing)
	assert.Empty(t, le.Unexpected)
	assert.Len(t, le.Mismatched, 2)

	dup := append(copyOf(s, 0), copyOf(s, 0)[0])
	assert.ErrorContains(t, s.LoadStateDict(dup, true), `duplicate key(s) in state_dict: "conv.weight"`)
}

func TestLoadWithoutBatchCounterResetsIt(t *testing.T) {
	s, conv, bn := smallNet()
	defer s.Free()
	bn.NumBatchesTracked.AddScalarInPlace(5)
	var legacy []Named // as PyTorch 0.4.0 saved it
	for _, n := range copyOf(s, 2) {
		if n.Name != "bn.num_batches_tracked" {
			legacy = append(legacy, n)
		}
	}
	require.NoError(t, s.LoadStateDict(legacy, true))
	assert.Equal(t, []int64{0}, bn.NumBatchesTracked.Int64s())
	assert.Equal(t, legacy[1].Tensor.Float32s(), conv.Bias.Float32s())

	// Non-strict loads of part of a network leave the rest alone.
	require.NoError(t, s.LoadStateDict([]Named{{Name: "bn.weight", Tensor: torch.Full([]int64{3}, 7, torch.Float32CPU)}}, false))
	assert.Equal(t, []float32{7, 7, 7}, bn.Weight.Float32s())
	assert.Equal(t, legacy[1].Tensor.Float32s(), conv.Bias.Float32s())
}

func TestToDTypeKeepsTensorsAndIntegerBuffers(t *testing.T) {
	s, conv, bn := smallNet()
	defer s.Free()
	weight, counter := conv.Weight, bn.NumBatchesTracked
	x := torch.Randn([]int64{2, 2, 3, 3}, torch.Float32CPU)
	conv.Forward(x).Sum().Backward()
	require.NotNil(t, conv.Weight.Grad())

	require.NoError(t, s.ToDType(torch.Float64))
	assert.Same(t, weight, conv.Weight)
	assert.Same(t, counter, bn.NumBatchesTracked)
	assert.Equal(t, torch.Float64, conv.Weight.DType())
	assert.Equal(t, torch.Float64, conv.Weight.Grad().DType())
	assert.True(t, conv.Weight.RequiresGrad())
	assert.Equal(t, torch.Float64, bn.RunningVar.DType())
	assert.Equal(t, torch.Int64, bn.NumBatchesTracked.DType())
	assert.Equal(t, torch.Float64, s.DType())

	y := bn.Forward(conv.Forward(x.To(torch.Float64)))
	assert.Equal(t, torch.Float64, y.DType())
	assert.Equal(t, []int64{1}, bn.NumBatchesTracked.Int64s())

	assert.Error(t, s.ToDType(torch.Int32))
	assert.Equal(t, torch.CPU, s.Device())
	require.NoError(t, s.To(torch.CPU))
	if !torch.CUDAIsAvailable() {
		assert.ErrorContains(t, s.To(torch.CUDA(0)), "CUDA is not available")
	}
}

func TestToCUDA(t *testing.T) {
	if !torch.CUDAIsAvailable() {
		t.Skip("no CUDA device")
	}
	s, conv, bn := smallNet()
	defer s.Free()
	weight := conv.Weight
	require.NoError(t, s.To(torch.CUDA(0)))
	assert.Same(t, weight, conv.Weight)
	for _, n := range s.StateDict() {
		assert.Equal(t, torch.CUDA(0), n.Tensor.Device(), n.Name)
	}
	y := bn.Forward(conv.Forward(torch.Randn([]int64{2, 2, 3, 3}, torch.Options{DType: torch.Float32, Device: torch.CUDA(0)})))
	y.Sum().Backward()
	assert.Equal(t, torch.CUDA(0), conv.Weight.Grad().Device())
	require.NoError(t, s.To(torch.CPU))
	assert.Equal(t, torch.CPU, conv.Weight.Grad().Device())
}
