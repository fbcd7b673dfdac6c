package nn

import (
	"fmt"

	"github.com/edema/edema/torch"
)

// Linear is torch.nn.Linear: y = x·Wᵀ + b over the last axis of x, with
// weight out×in and an optional bias of out entries.
type Linear struct {
	Weight *torch.Tensor
	Bias   *torch.Tensor // nil without bias
}

// NewLinear creates a linear layer from in to out features at p, with
// parameters "weight" and (when bias is set) "bias" initialised as
// PyTorch initialises them.
func NewLinear(p Path, in, out int64, bias bool) *Linear {
	if in <= 0 || out <= 0 {
		panic(&torch.Error{Op: "linear", Msg: fmt.Sprintf("in and out features must be positive, got %d and %d", in, out)})
	}
	m := &Linear{}
	m.Weight, m.Bias = newConvParameters(p, []int64{out, in}, out, bias)
	p.register(m)
	return m
}

// Forward applies the layer to x (…×in).
func (m *Linear) Forward(x *torch.Tensor) *torch.Tensor { return torch.Linear(x, m.Weight, m.Bias) }

// Identity passes its input through, as torch.nn.Identity does: the layer
// that stands in for one removed (a classifier's head, say).
type Identity struct{}

// Forward returns x.
func (Identity) Forward(x *torch.Tensor) *torch.Tensor { return x }

// Flatten is torch.nn.Flatten(): every axis after the first joined into
// one, N×C×H×W to N×(C·H·W).
type Flatten struct{}

// Forward flattens x.
func (Flatten) Forward(x *torch.Tensor) *torch.Tensor {
	if x.Dim() < 1 {
		panic(&torch.Error{Op: "flatten", Msg: "a scalar has no batch axis"})
	}
	return x.Reshape(x.Shape()[0], -1)
}
