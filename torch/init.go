package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"fmt"
	"math"
)

// In-place initialisation with the formulas of torch.nn.init. These run
// without autograd recording, so they also apply to parameters.

// NormalInPlace fills t with numbers from N(mean, std²).
func (t *Tensor) NormalInPlace(mean, std float64) *Tensor {
	NoGrad(func() { check("normal_", C.et_normal_(t.handle("normal_"), C.double(mean), C.double(std))) })
	return t
}

// UniformInPlace fills t with numbers drawn uniformly from [from, to).
func (t *Tensor) UniformInPlace(from, to float64) *Tensor {
	NoGrad(func() { check("uniform_", C.et_uniform_(t.handle("uniform_"), C.double(from), C.double(to))) })
	return t
}

// FillInPlace sets every element to value (torch.nn.init.constant_).
func (t *Tensor) FillInPlace(value float64) *Tensor {
	NoGrad(func() { check("fill_", C.et_fill_(t.handle("fill_"), C.double(value))) })
	return t
}

// ZeroInPlace sets every element to 0 (torch.nn.init.zeros_).
func (t *Tensor) ZeroInPlace() *Tensor {
	NoGrad(func() { check("zero_", C.et_zero_(t.handle("zero_"))) })
	return t
}

// FanMode picks which fan the Kaiming initialisers scale by.
type FanMode int

const (
	FanIn FanMode = iota
	FanOut
)

// Fans returns fan_in and fan_out of a weight as torch.nn.init computes
// them: dimension 1 and dimension 0, each times the receptive field (the
// product of the remaining dimensions).
func Fans(shape []int64) (fanIn, fanOut int64) {
	if len(shape) < 2 {
		fail("init", fmt.Sprintf("fan in and fan out need at least 2 dimensions, got %d", len(shape)))
	}
	receptive := int64(1)
	for _, s := range shape[2:] {
		receptive *= s
	}
	return shape[1] * receptive, shape[0] * receptive
}

// Gain is torch.nn.init.calculate_gain for "linear", "conv2d", "sigmoid",
// "tanh", "relu" and "leaky_relu" (with negative slope param).
func Gain(nonlinearity string, param float64) float64 {
	switch nonlinearity {
	case "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid":
		return 1
	case "tanh":
		return 5.0 / 3
	case "relu":
		return math.Sqrt(2)
	case "leaky_relu":
		return math.Sqrt(2 / (1 + param*param))
	}
	fail("init", fmt.Sprintf("unsupported nonlinearity %q", nonlinearity))
	return 0
}

func kaimingStd(t *Tensor, a float64, mode FanMode, nonlinearity string) float64 {
	fanIn, fanOut := Fans(t.Shape())
	fan := fanIn
	if mode == FanOut {
		fan = fanOut
	}
	return Gain(nonlinearity, a) / math.Sqrt(float64(fan))
}

// KaimingNormalInPlace is torch.nn.init.kaiming_normal_(t, a, mode, nonlinearity).
func (t *Tensor) KaimingNormalInPlace(a float64, mode FanMode, nonlinearity string) *Tensor {
	return t.NormalInPlace(0, kaimingStd(t, a, mode, nonlinearity))
}

// KaimingUniformInPlace is torch.nn.init.kaiming_uniform_(t, a, mode, nonlinearity).
func (t *Tensor) KaimingUniformInPlace(a float64, mode FanMode, nonlinearity string) *Tensor {
	bound := math.Sqrt(3) * kaimingStd(t, a, mode, nonlinearity)
	return t.UniformInPlace(-bound, bound)
}

// BernoulliInPlace fills t with 1 with probability p and 0 otherwise.
func (t *Tensor) BernoulliInPlace(p float64) *Tensor {
	NoGrad(func() { check("bernoulli_", C.et_bernoulli_(t.handle("bernoulli_"), C.double(p))) })
	return t
}
