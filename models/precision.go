package models

import (
	"fmt"

	"github.com/edema/edema/torch"
)

// Precision is the arithmetic of a network's forward pass: float32 (the
// zero value, as the original trains and evaluates) or automatic mixed
// precision, torch.autocast's, in bfloat16 or float16. Mixed precision
// runs the convolutions in the narrow type and keeps the weights, the
// losses and the optimizer in float32; it pays where the hardware has fast
// narrow arithmetic (tensor cores on CUDA, AMX or AVX-512 BF16 on a CPU)
// and costs elsewhere (docs/BENCHMARKS.md).
type Precision string

const (
	Float32 Precision = ""     // plain float32
	BF16    Precision = "bf16" // autocast to bfloat16: the CPU or CUDA
	FP16    Precision = "fp16" // autocast to float16: CUDA only; training needs a gradient scaler
)

// Precisions are the names ParsePrecision takes, besides "" and "fp32".
var Precisions = []Precision{BF16, FP16}

// ParsePrecision reads a precision's name: "bf16", "fp16", or "" or
// "fp32" for plain float32.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case "", "fp32":
		return Float32, nil
	case BF16, FP16:
		return p, nil
	}
	return "", fmt.Errorf("precision %q: want bf16, fp16 or fp32", s)
}

// String returns the name, "fp32" for plain float32.
func (p Precision) String() string {
	if p.normal() == Float32 {
		return "fp32"
	}
	return string(p)
}

// normal is p with "fp32" read as Float32.
func (p Precision) normal() Precision {
	if p == "fp32" {
		return Float32
	}
	return p
}

// DType is the narrow type of autocast, or Float32.
func (p Precision) DType() torch.DType {
	switch p.normal() {
	case BF16:
		return torch.BFloat16
	case FP16:
		return torch.Float16
	}
	return torch.Float32
}

// Check says whether the precision runs on dev.
func (p Precision) Check(dev torch.Device) error {
	if _, err := ParsePrecision(string(p)); err != nil {
		return err
	}
	if p == FP16 && !dev.IsCUDA() {
		return fmt.Errorf("precision fp16 runs on CUDA only, not on the %v; use bf16 there", dev)
	}
	return nil
}

// Forward runs forward, a network's forward pass, in the precision on dev
// and returns its outputs as float32 (nil stays nil), which the losses,
// the fusion and the metrics take: under mixed precision the pass runs
// inside torch.Autocast, and the conversion is part of the autograd graph,
// so that gradients flow back through it.
func (p Precision) Forward(dev torch.Device, forward func() (seg, det *torch.Tensor, err error)) (seg, det *torch.Tensor, err error) {
	if p.normal() == Float32 {
		return forward()
	}
	if err := torch.Autocast(dev, p.DType(), func() { seg, det, err = forward() }); err != nil {
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, err
	}
	return float32Of(seg), float32Of(det), nil
}

// float32Of returns t as float32, freeing t when that made a new tensor.
func float32Of(t *torch.Tensor) *torch.Tensor {
	if t == nil || t.DType() == torch.Float32 {
		return t
	}
	f := t.To(torch.Float32)
	t.Free()
	return f
}
