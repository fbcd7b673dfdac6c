package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Reduction says how a loss combines its per-element values.
type Reduction int

const (
	ReductionNone Reduction = 0
	ReductionMean Reduction = 1
	ReductionSum  Reduction = 2
)

func pair(p *[2]int64) *C.int64_t { return (*C.int64_t)(unsafe.Pointer(&p[0])) }

// Conv2dOptions are the settings of a 2-D convolution. The zero value means
// PyTorch's defaults: stride 1, padding 0, dilation 1, one group.
type Conv2dOptions struct {
	Stride, Padding, Dilation [2]int64
	OutputPadding             [2]int64 // transposed convolution only
	Groups                    int64
}

func (o Conv2dOptions) withDefaults() Conv2dOptions {
	for i := range 2 {
		if o.Stride[i] == 0 {
			o.Stride[i] = 1
		}
		if o.Dilation[i] == 0 {
			o.Dilation[i] = 1
		}
	}
	if o.Groups == 0 {
		o.Groups = 1
	}
	return o
}

// Conv2d is torch.nn.functional.conv2d: x is N×Cin×H×W, w is
// Cout×(Cin/groups)×kH×kW and bias (nil for none) has Cout entries.
func Conv2d(x, w, bias *Tensor, o Conv2dOptions) *Tensor {
	o = o.withDefaults()
	var out C.et_tensor
	err := C.et_conv2d(x.handle("conv2d"), w.handle("conv2d"), optHandle("conv2d", bias),
		pair(&o.Stride), pair(&o.Padding), pair(&o.Dilation), C.int64_t(o.Groups), &out)
	runtime.KeepAlive(x)
	runtime.KeepAlive(w)
	runtime.KeepAlive(bias)
	return result("conv2d", err, out)
}

// ConvTranspose2d is torch.nn.functional.conv_transpose2d: w is
// Cin×(Cout/groups)×kH×kW.
func ConvTranspose2d(x, w, bias *Tensor, o Conv2dOptions) *Tensor {
	o = o.withDefaults()
	var out C.et_tensor
	err := C.et_conv_transpose2d(x.handle("conv_transpose2d"), w.handle("conv_transpose2d"),
		optHandle("conv_transpose2d", bias), pair(&o.Stride), pair(&o.Padding), pair(&o.OutputPadding),
		C.int64_t(o.Groups), pair(&o.Dilation), &out)
	runtime.KeepAlive(x)
	runtime.KeepAlive(w)
	runtime.KeepAlive(bias)
	return result("conv_transpose2d", err, out)
}

// BatchNorm is torch.nn.functional.batch_norm. In training mode it
// normalises with the batch statistics and, when running stats are given,
// updates them in place (running = (1−momentum)·running + momentum·batch,
// with the unbiased batch variance) exactly as PyTorch does. weight, bias and
// the running stats may be nil.
func BatchNorm(x, weight, bias, runningMean, runningVar *Tensor, training bool, momentum, eps float64) *Tensor {
	var out C.et_tensor
	err := C.et_batch_norm(x.handle("batch_norm"), optHandle("batch_norm", weight),
		optHandle("batch_norm", bias), optHandle("batch_norm", runningMean), optHandle("batch_norm", runningVar),
		cbool(training), C.double(momentum), C.double(eps), &out)
	runtime.KeepAlive(x)
	runtime.KeepAlive(weight)
	runtime.KeepAlive(bias)
	runtime.KeepAlive(runningMean)
	runtime.KeepAlive(runningVar)
	return result("batch_norm", err, out)
}

// MaxPool2d is torch.nn.functional.max_pool2d; a zero stride means the kernel size.
func MaxPool2d(x *Tensor, kernel, stride, padding [2]int64, ceilMode bool) *Tensor {
	if stride == [2]int64{} {
		stride = kernel
	}
	dilation := [2]int64{1, 1}
	var out C.et_tensor
	err := C.et_max_pool2d(x.handle("max_pool2d"), pair(&kernel), pair(&stride), pair(&padding),
		pair(&dilation), cbool(ceilMode), &out)
	runtime.KeepAlive(x)
	return result("max_pool2d", err, out)
}

// AdaptiveMaxPool2d pools every channel to an output of the given size.
func AdaptiveMaxPool2d(x *Tensor, size [2]int64) *Tensor {
	var out C.et_tensor
	err := C.et_adaptive_max_pool2d(x.handle("adaptive_max_pool2d"), pair(&size), &out)
	runtime.KeepAlive(x)
	return result("adaptive_max_pool2d", err, out)
}

// AdaptiveAvgPool2d averages every channel to an output of the given size.
func AdaptiveAvgPool2d(x *Tensor, size [2]int64) *Tensor {
	var out C.et_tensor
	err := C.et_adaptive_avg_pool2d(x.handle("adaptive_avg_pool2d"), pair(&size), &out)
	runtime.KeepAlive(x)
	return result("adaptive_avg_pool2d", err, out)
}

// Dropout zeroes elements with probability p and scales the rest by
// 1/(1−p) in training mode; otherwise it returns x unchanged (a new handle).
func Dropout(x *Tensor, p float64, training bool) *Tensor {
	var out C.et_tensor
	err := C.et_dropout(x.handle("dropout"), C.double(p), cbool(training), &out)
	runtime.KeepAlive(x)
	return result("dropout", err, out)
}

// Linear is torch.nn.functional.linear: x·wᵀ + bias, with w out×in and
// bias (nil for none) of out entries, over the last axis of x.
func Linear(x, w, bias *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_linear(x.handle("linear"), w.handle("linear"), optHandle("linear", bias), &out)
	runtime.KeepAlive(x)
	runtime.KeepAlive(w)
	runtime.KeepAlive(bias)
	return result("linear", err, out)
}

// AvgPool2dOptions are the settings of AvgPool2d. The zero value is
// PyTorch's defaults: the stride of the kernel, no padding, padded zeros
// counted in the averages.
type AvgPool2dOptions struct {
	Stride, Padding [2]int64 // a zero Stride means the kernel size
	CeilMode        bool
	ExcludePad      bool // count_include_pad=False
}

// AvgPool2d is torch.nn.functional.avg_pool2d.
func AvgPool2d(x *Tensor, kernel [2]int64, o AvgPool2dOptions) *Tensor {
	if o.Stride == [2]int64{} {
		o.Stride = kernel
	}
	var out C.et_tensor
	err := C.et_avg_pool2d(x.handle("avg_pool2d"), pair(&kernel), pair(&o.Stride), pair(&o.Padding),
		cbool(o.CeilMode), cbool(!o.ExcludePad), &out)
	runtime.KeepAlive(x)
	return result("avg_pool2d", err, out)
}

// UpsampleNearest2d resizes x (N×C×H×W) to size by nearest neighbour.
// scale, when its entries are positive, holds the factors that place the
// samples, as F.interpolate's scale_factor does (see nn.Upsample).
func UpsampleNearest2d(x *Tensor, size [2]int64, scale [2]float64) *Tensor {
	var out C.et_tensor
	err := C.et_upsample_nearest2d(x.handle("upsample_nearest2d"), pair(&size), C.double(scale[0]), C.double(scale[1]), &out)
	runtime.KeepAlive(x)
	return result("upsample_nearest2d", err, out)
}

// UpsampleBilinear2d resizes x (N×C×H×W) to size by bilinear
// interpolation; alignCorners and scale are F.interpolate's.
func UpsampleBilinear2d(x *Tensor, size [2]int64, alignCorners bool, scale [2]float64) *Tensor {
	var out C.et_tensor
	err := C.et_upsample_bilinear2d(x.handle("upsample_bilinear2d"), pair(&size), cbool(alignCorners),
		C.double(scale[0]), C.double(scale[1]), &out)
	runtime.KeepAlive(x)
	return result("upsample_bilinear2d", err, out)
}

// GroupNorm is torch.nn.functional.group_norm: x (N×C×...) normalised
// over each of groups groups of channels, then scaled by weight and
// shifted by bias (C entries each, nil for none).
func GroupNorm(x *Tensor, groups int64, weight, bias *Tensor, eps float64) *Tensor {
	var out C.et_tensor
	err := C.et_group_norm(x.handle("group_norm"), C.int64_t(groups), optHandle("group_norm", weight),
		optHandle("group_norm", bias), C.double(eps), &out)
	runtime.KeepAlive(x)
	runtime.KeepAlive(weight)
	runtime.KeepAlive(bias)
	return result("group_norm", err, out)
}

// LayerNorm is torch.nn.functional.layer_norm: x normalised over its last
// len(shape) axes, which must have that shape, then scaled and shifted
// element-wise by weight and bias (of that shape, nil for none).
func LayerNorm(x *Tensor, shape []int64, weight, bias *Tensor, eps float64) *Tensor {
	sp, nd := int64s(shape)
	var out C.et_tensor
	err := C.et_layer_norm(x.handle("layer_norm"), sp, nd, optHandle("layer_norm", weight),
		optHandle("layer_norm", bias), C.double(eps), &out)
	runtime.KeepAlive(x)
	runtime.KeepAlive(weight)
	runtime.KeepAlive(bias)
	return result("layer_norm", err, out)
}

// LeakyRelu is x where x > 0, slope·x elsewhere.
func LeakyRelu(x *Tensor, slope float64) *Tensor {
	var out C.et_tensor
	err := C.et_leaky_relu(x.handle("leaky_relu"), C.double(slope), &out)
	runtime.KeepAlive(x)
	return result("leaky_relu", err, out)
}

// Gelu is x·Φ(x), or its tanh approximation (approximate='tanh').
func Gelu(x *Tensor, tanh bool) *Tensor {
	var out C.et_tensor
	err := C.et_gelu(x.handle("gelu"), cbool(tanh), &out)
	runtime.KeepAlive(x)
	return result("gelu", err, out)
}

// Softmax normalises exp(x) along dim.
func Softmax(x *Tensor, dim int64) *Tensor {
	var out C.et_tensor
	err := C.et_softmax(x.handle("softmax"), C.int64_t(dim), &out)
	runtime.KeepAlive(x)
	return result("softmax", err, out)
}

// LogSoftmax is log(softmax(x)) along dim, computed stably.
func LogSoftmax(x *Tensor, dim int64) *Tensor {
	var out C.et_tensor
	err := C.et_log_softmax(x.handle("log_softmax"), C.int64_t(dim), &out)
	runtime.KeepAlive(x)
	return result("log_softmax", err, out)
}

// LossOptions are the settings of the classification losses. Weight (nil
// for none) holds one weight per class; targets equal to IgnoreIndex do not
// count. Use DefaultLossOptions for PyTorch's defaults.
type LossOptions struct {
	Weight      *Tensor
	Reduction   Reduction
	IgnoreIndex int64
}

// DefaultLossOptions are PyTorch's: no weights, mean, ignore_index −100.
func DefaultLossOptions() LossOptions {
	return LossOptions{Reduction: ReductionMean, IgnoreIndex: -100}
}

// NLLLoss is torch.nn.functional.nll_loss on log-probabilities N×C or
// N×C×d1×..., with int64 targets N or N×d1×...
func NLLLoss(logp, target *Tensor, o LossOptions) *Tensor {
	var out C.et_tensor
	err := C.et_nll_loss(logp.handle("nll_loss"), target.handle("nll_loss"), optHandle("nll_loss", o.Weight),
		C.int64_t(o.Reduction), C.int64_t(o.IgnoreIndex), &out)
	runtime.KeepAlive(logp)
	runtime.KeepAlive(target)
	runtime.KeepAlive(o.Weight)
	return result("nll_loss", err, out)
}

// CrossEntropy is torch.nn.functional.cross_entropy on unnormalised scores.
func CrossEntropy(logits, target *Tensor, o LossOptions) *Tensor {
	var out C.et_tensor
	err := C.et_cross_entropy(logits.handle("cross_entropy"), target.handle("cross_entropy"),
		optHandle("cross_entropy", o.Weight), C.int64_t(o.Reduction), C.int64_t(o.IgnoreIndex), &out)
	runtime.KeepAlive(logits)
	runtime.KeepAlive(target)
	runtime.KeepAlive(o.Weight)
	return result("cross_entropy", err, out)
}

// BinaryCrossEntropy is torch.nn.functional.binary_cross_entropy on
// probabilities p and targets of the same shape; weight may be nil.
func BinaryCrossEntropy(p, target, weight *Tensor, reduction Reduction) *Tensor {
	var out C.et_tensor
	err := C.et_binary_cross_entropy(p.handle("binary_cross_entropy"),
		target.handle("binary_cross_entropy"), optHandle("binary_cross_entropy", weight), C.int64_t(reduction), &out)
	runtime.KeepAlive(p)
	runtime.KeepAlive(target)
	runtime.KeepAlive(weight)
	return result("binary_cross_entropy", err, out)
}
