package nn

import (
	"fmt"

	"github.com/edema/edema/torch"
)

// GroupNorm is torch.nn.GroupNorm with its defaults (affine, eps 1e-5):
// the channels of x (N×C×...) split into Groups groups, each normalised
// over its channels and positions, then scaled and shifted per channel.
// It has no running statistics: training and evaluation agree.
type GroupNorm struct {
	Weight, Bias *torch.Tensor
	Groups       int64
	Eps          float64
}

// NewGroupNorm creates group normalisation of channels channels in groups
// groups at p: parameters "weight" (ones) and "bias" (zeros).
func NewGroupNorm(p Path, groups, channels int64) *GroupNorm {
	if groups <= 0 || channels <= 0 || channels%groups != 0 {
		panic(&torch.Error{Op: "group_norm", Msg: fmt.Sprintf("%d channels do not split into %d groups", channels, groups)})
	}
	m := &GroupNorm{Groups: groups, Eps: 1e-5}
	m.Weight, m.Bias = affine(p, []int64{channels})
	p.register(m)
	return m
}

// Forward normalises x.
func (m *GroupNorm) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.GroupNorm(x, m.Groups, m.Weight, m.Bias, m.Eps)
}

// LayerNorm is torch.nn.LayerNorm with its defaults (element-wise affine,
// eps 1e-5): x normalised over its last axes, which have Shape, then
// scaled and shifted element by element.
type LayerNorm struct {
	Weight, Bias *torch.Tensor
	Shape        []int64
	Eps          float64
}

// NewLayerNorm creates layer normalisation over the trailing shape at p:
// parameters "weight" (ones) and "bias" (zeros) of that shape.
func NewLayerNorm(p Path, shape ...int64) *LayerNorm {
	if len(shape) == 0 {
		panic(&torch.Error{Op: "layer_norm", Msg: "no normalised shape"})
	}
	for _, d := range shape {
		if d <= 0 {
			panic(&torch.Error{Op: "layer_norm", Msg: fmt.Sprintf("normalised shape %v has an axis that is not positive", shape)})
		}
	}
	m := &LayerNorm{Shape: append([]int64(nil), shape...), Eps: 1e-5}
	m.Weight, m.Bias = affine(p, shape)
	p.register(m)
	return m
}

// affine makes a normalisation's parameters at p: "weight" (ones) and
// "bias" (zeros) of the given shape, PyTorch's reset_parameters.
func affine(p Path, shape []int64) (weight, bias *torch.Tensor) {
	return p.Param("weight", torch.Ones(shape, torch.Float32CPU)), p.Param("bias", torch.Zeros(shape, torch.Float32CPU))
}

// Forward normalises x.
func (m *LayerNorm) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.LayerNorm(x, m.Shape, m.Weight, m.Bias, m.Eps)
}
