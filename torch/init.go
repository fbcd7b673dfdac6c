package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
)

// In-place initialisation with the formulas of torch.nn.init. Like
// torch.nn.init, they run without autograd recording (the shim holds a
// no-grad guard for the call), so they also apply to parameters.

// NormalInPlace fills t with numbers from N(mean, std²).
func (t *Tensor) NormalInPlace(mean, std float64) *Tensor {
	err := C.et_normal_(t.handle("normal_"), C.double(mean), C.double(std))
	runtime.KeepAlive(t)
	check("normal_", err)
	return t
}

// UniformInPlace fills t with numbers drawn uniformly from [from, to).
func (t *Tensor) UniformInPlace(from, to float64) *Tensor {
	err := C.et_uniform_(t.handle("uniform_"), C.double(from), C.double(to))
	runtime.KeepAlive(t)
	check("uniform_", err)
	return t
}

// FillInPlace sets every element to value (torch.nn.init.constant_).
func (t *Tensor) FillInPlace(value float64) *Tensor {
	err := C.et_fill_(t.handle("fill_"), C.double(value))
	runtime.KeepAlive(t)
	check("fill_", err)
	return t
}

// ZeroInPlace sets every element to 0 (torch.nn.init.zeros_).
func (t *Tensor) ZeroInPlace() *Tensor {
	err := C.et_zero_(t.handle("zero_"))
	runtime.KeepAlive(t)
	check("zero_", err)
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

// Gain is torch.nn.init.calculate_gain: the recommended scale of the
// weights in front of a nonlinearity ("linear", "conv1d", "conv2d", ...,
// "sigmoid", "tanh", "relu", "leaky_relu" with negative slope param, "selu").
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
	case "selu":
		return 3.0 / 4
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

// BernoulliInPlace fills t with 1 with probability p and 0 otherwise, like
// torch.Tensor.bernoulli_(p).
func (t *Tensor) BernoulliInPlace(p float64) *Tensor {
	err := C.et_bernoulli_(t.handle("bernoulli_"), C.double(p))
	runtime.KeepAlive(t)
	check("bernoulli_", err)
	return t
}
