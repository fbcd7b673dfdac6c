package nn

import (
	"fmt"

	"github.com/edema/edema/torch"
)

// Layers without parameters. They need no path; Sequential gives them
// their index all the same, as torch.nn.Sequential does.

// ReLU is max(x, 0). InPlace overwrites its input, like
// torch.nn.ReLU(inplace=True), which saves memory when nothing else needs
// the input.
type ReLU struct{ InPlace bool }

// Forward applies the ReLU.
func (m ReLU) Forward(x *torch.Tensor) *torch.Tensor {
	if m.InPlace {
		return x.ReluInPlace()
	}
	return x.Relu()
}

// Sigmoid is 1/(1+e^−x).
type Sigmoid struct{}

// Forward applies the sigmoid.
func (Sigmoid) Forward(x *torch.Tensor) *torch.Tensor { return x.Sigmoid() }

// Dropout zeroes each element with probability P and scales the others by
// 1/(1−P) in training mode; in evaluation mode it passes x through.
type Dropout struct {
	P    float64
	path Path
}

// NewDropout creates dropout that follows the mode of p's store.
func NewDropout(p Path, prob float64) *Dropout {
	if prob < 0 || prob > 1 {
		panic(&torch.Error{Op: "dropout", Msg: "probability must be in [0, 1]"})
	}
	m := &Dropout{P: prob, path: p}
	p.register(m)
	return m
}

// Forward applies dropout.
func (m *Dropout) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.Dropout(x, m.P, m.path.Training())
}

// MaxPool2d takes the maximum over Kernel×Kernel windows moved by Stride
// (zero means Kernel, PyTorch's default) over x padded by Padding on each
// side (padding never wins the maximum).
type MaxPool2d struct{ Kernel, Stride, Padding int64 }

// Forward pools x (N×C×H×W).
func (m MaxPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	if k := m.Kernel; k > 1 && (m.Stride == 0 || m.Stride == k) && m.Padding == 0 &&
		x.Dim() == 4 && x.Size(2) >= k && x.Size(3) >= k && !torch.GradEnabled() && x.Device() == torch.CPU {
		return maxOfWindows(x, k)
	}
	return torch.MaxPool2d(x, [2]int64{m.Kernel, m.Kernel}, [2]int64{m.Stride, m.Stride}, [2]int64{m.Padding, m.Padding}, false)
}

// maxOfWindows pools x over its k×k windows that do not overlap as the
// elementwise maximum of the k² strided views x[:, :, i::k, j::k]: the
// values of max_pool2d (a maximum is exact, and both propagate NaN), which
// on the CPU also records where each maximum was, for a backward pass, at
// about five times the time (BenchmarkEvalLayers). Only without autograd:
// the two spread the gradient of ties differently.
func maxOfWindows(x *torch.Tensor, k int64) (out *torch.Tensor) {
	h, w := x.Size(2)/k, x.Size(3)/k
	torch.Scoped(func(sc *torch.Scope) {
		for i := range k {
			for j := range k {
				v := x.Slice(2, i, i+k*(h-1)+1, k).Slice(3, j, j+k*(w-1)+1, k)
				switch {
				case out == nil:
					out = v
				case i == 0 && j == 1:
					out = out.Maximum(v)
				default:
					out.MaximumInPlace(v)
				}
			}
		}
		sc.Keep(out)
	})
	return out
}

// AdaptiveMaxPool2d takes the maximum over windows that divide every
// channel into Size×Size cells.
type AdaptiveMaxPool2d struct{ Size int64 }

// Forward pools x (N×C×H×W) to N×C×Size×Size.
func (m AdaptiveMaxPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.AdaptiveMaxPool2d(x, [2]int64{m.Size, m.Size})
}

// AvgPool2d averages over Kernel×Kernel windows moved by Stride (zero
// means Kernel) over x padded by Padding zeros, which count in the
// averages, as torch.nn.AvgPool2d's defaults do.
type AvgPool2d struct{ Kernel, Stride, Padding int64 }

// Forward pools x (N×C×H×W).
func (m AvgPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.AvgPool2d(x, [2]int64{m.Kernel, m.Kernel}, torch.AvgPool2dOptions{
		Stride: [2]int64{m.Stride, m.Stride}, Padding: [2]int64{m.Padding, m.Padding}})
}

// AdaptiveAvgPool2d averages over windows that divide every channel into
// Size×Size cells; Size 1 is a global average pool.
type AdaptiveAvgPool2d struct{ Size int64 }

// Forward pools x (N×C×H×W) to N×C×Size×Size.
func (m AdaptiveAvgPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.AdaptiveAvgPool2d(x, [2]int64{m.Size, m.Size})
}

// LeakyReLU is x for x > 0 and Slope·x elsewhere; torch.nn.LeakyReLU()'s
// default slope is 0.01 (LeakyReLU{Slope: 0.01}).
type LeakyReLU struct{ Slope float64 }

// Forward applies the leaky ReLU.
func (m LeakyReLU) Forward(x *torch.Tensor) *torch.Tensor { return torch.LeakyRelu(x, m.Slope) }

// GELU is x·Φ(x), Φ the standard normal distribution function, or with
// Tanh its tanh approximation (torch.nn.GELU(approximate='tanh')).
type GELU struct{ Tanh bool }

// Forward applies the GELU.
func (m GELU) Forward(x *torch.Tensor) *torch.Tensor { return torch.Gelu(x, m.Tanh) }

// Softmax normalises exp(x) along Dim to sum to one.
type Softmax struct{ Dim int64 }

// Forward applies the softmax.
func (m Softmax) Forward(x *torch.Tensor) *torch.Tensor { return torch.Softmax(x, m.Dim) }

// Interpolation says how Interpolate resizes: to Size, or when Size is
// zero by the factor Scale on both sides, as F.interpolate's size and
// scale_factor do; Mode "nearest" (the default) or "bilinear", the latter
// with or without AlignCorners.
type Interpolation struct {
	Size         [2]int64
	Scale        float64
	Mode         string
	AlignCorners bool
}

// Interpolate resizes x (N×C×H×W) as F.interpolate does.
func Interpolate(x *torch.Tensor, o Interpolation) *torch.Tensor {
	size, scale := o.Size, [2]float64{}
	if size == [2]int64{} {
		if !(o.Scale > 0) {
			panic(&torch.Error{Op: "interpolate", Msg: "neither a size nor a positive scale factor"})
		}
		shape := x.Shape()
		if len(shape) != 4 {
			panic(&torch.Error{Op: "interpolate", Msg: fmt.Sprintf("expected 4D input (got %dD input)", len(shape))})
		}
		// PyTorch's output size for a scale factor: the input's times
		// the factor, rounded down; the factor itself then places the
		// samples.
		size = [2]int64{int64(float64(shape[2]) * o.Scale), int64(float64(shape[3]) * o.Scale)}
		scale = [2]float64{o.Scale, o.Scale}
	}
	switch o.Mode {
	case "", "nearest":
		if o.AlignCorners {
			panic(&torch.Error{Op: "interpolate", Msg: "align_corners only applies to the interpolating modes (bilinear)"})
		}
		return torch.UpsampleNearest2d(x, size, scale)
	case "bilinear":
		return torch.UpsampleBilinear2d(x, size, o.AlignCorners, scale)
	}
	panic(&torch.Error{Op: "interpolate", Msg: fmt.Sprintf("unknown mode %q: want nearest or bilinear", o.Mode)})
}

// Upsample is torch.nn.Upsample: Interpolate as a layer.
type Upsample struct{ Interpolation }

// Forward resizes x.
func (m Upsample) Forward(x *torch.Tensor) *torch.Tensor { return Interpolate(x, m.Interpolation) }
