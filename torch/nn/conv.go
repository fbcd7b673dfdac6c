package nn

import (
	"fmt"
	"math"

	"github.com/edema/edema/torch"
)

// Conv2dConfig are the settings of a 2-D convolution with a square kernel.
// The zero value is PyTorch's default: zero Stride, Dilation and Groups
// mean 1, and the convolution has a bias unless NoBias is set.
type Conv2dConfig struct {
	Kernel        int64
	Stride        int64
	Padding       int64
	Dilation      int64
	OutputPadding int64 // transposed convolutions only
	Groups        int64
	NoBias        bool
}

func (c Conv2dConfig) withDefaults() Conv2dConfig {
	if c.Stride == 0 {
		c.Stride = 1
	}
	if c.Dilation == 0 {
		c.Dilation = 1
	}
	if c.Groups == 0 {
		c.Groups = 1
	}
	return c
}

func (c Conv2dConfig) options() torch.Conv2dOptions {
	sq := func(v int64) [2]int64 { return [2]int64{v, v} }
	return torch.Conv2dOptions{
		Stride: sq(c.Stride), Padding: sq(c.Padding), Dilation: sq(c.Dilation),
		OutputPadding: sq(c.OutputPadding), Groups: c.Groups,
	}
}

func (c Conv2dConfig) validate(op string, in, out int64) {
	bad := func(format string, args ...any) {
		panic(&torch.Error{Op: op, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case in <= 0 || out <= 0:
		bad("channels must be positive, got %d in and %d out", in, out)
	case c.Kernel <= 0 || c.Stride <= 0 || c.Dilation <= 0 || c.Groups <= 0:
		bad("kernel, stride, dilation and groups must be positive, got %d, %d, %d, %d", c.Kernel, c.Stride, c.Dilation, c.Groups)
	case c.Padding < 0 || c.OutputPadding < 0:
		bad("padding must not be negative, got %d and output padding %d", c.Padding, c.OutputPadding)
	case in%c.Groups != 0 || out%c.Groups != 0:
		bad("%d in and %d out channels are not divisible by %d groups", in, out, c.Groups)
	}
}

// resetParameters is PyTorch's _ConvNd.reset_parameters, which
// Linear.reset_parameters repeats: Kaiming uniform with a = √5 on the
// weight, then, for the bias, uniform on ±1/√fan_in, with fan_in computed
// on the weight as it is stored.
func resetParameters(weight, bias *torch.Tensor) {
	weight.KaimingUniformInPlace(math.Sqrt(5), torch.FanIn, "leaky_relu")
	if bias != nil {
		fanIn, _ := torch.Fans(weight.Shape())
		bound := 0.0
		if fanIn > 0 {
			bound = 1 / math.Sqrt(float64(fanIn))
		}
		bias.UniformInPlace(-bound, bound)
	}
}

// Conv2d is torch.nn.Conv2d: a 2-D convolution with weight
// out×(in/groups)×k×k and an optional bias of out entries.
type Conv2d struct {
	Weight *torch.Tensor
	Bias   *torch.Tensor // nil without bias
	opts   torch.Conv2dOptions
	// bn is the batch norm folded into the convolution for evaluation
	// (Sequential.FoldBatchNorm), folded their combined weight and bias
	// while the store holds them (fold.go).
	bn     *BatchNorm2d
	folded [2]*torch.Tensor
}

// NewConv2d creates a convolution from in to out channels at p, with
// parameters "weight" and "bias" initialised as PyTorch initialises them.
func NewConv2d(p Path, in, out int64, c Conv2dConfig) *Conv2d {
	c = c.withDefaults()
	c.validate("conv2d", in, out)
	m := &Conv2d{opts: c.options()}
	m.Weight, m.Bias = newConvParameters(p, []int64{out, in / c.Groups, c.Kernel, c.Kernel}, out, !c.NoBias)
	p.register(m)
	return m
}

// newConvParameters creates, initialises and registers a convolution's
// weight and optional bias, in PyTorch's order.
func newConvParameters(p Path, weightShape []int64, biasSize int64, withBias bool) (weight, bias *torch.Tensor) {
	weight = torch.Empty(weightShape, torch.Float32CPU)
	if withBias {
		bias = torch.Empty([]int64{biasSize}, torch.Float32CPU)
	}
	resetParameters(weight, bias)
	p.Param("weight", weight)
	if withBias {
		p.Param("bias", bias)
	}
	return weight, bias
}

// Forward convolves x (N×in×H×W); with a batch norm folded in, in
// evaluation mode without autograd, it applies both.
func (m *Conv2d) Forward(x *torch.Tensor) *torch.Tensor {
	if m.bn != nil && m.folding() {
		return torch.Conv2d(x, m.folded[0], m.folded[1], m.opts)
	}
	return torch.Conv2d(x, m.Weight, m.Bias, m.opts)
}

// ConvTranspose2d is torch.nn.ConvTranspose2d: a transposed 2-D
// convolution with weight in×(out/groups)×k×k and an optional bias.
type ConvTranspose2d struct {
	Weight *torch.Tensor
	Bias   *torch.Tensor // nil without bias
	opts   torch.Conv2dOptions
	path   Path
	// phases are the weight and bias of the convolution that computes the
	// output's phases in the evaluation fast path, while the store holds
	// them (phases.go).
	phases [2]*torch.Tensor
	// byPhases says whether its kernel, stride and padding allow that.
	byPhases bool
}

// NewConvTranspose2d creates a transposed convolution from in to out
// channels at p, initialised as PyTorch initialises it (its fan_in is
// (out/groups)·k², from the weight as stored).
func NewConvTranspose2d(p Path, in, out int64, c Conv2dConfig) *ConvTranspose2d {
	c = c.withDefaults()
	c.validate("conv_transpose2d", in, out)
	if c.OutputPadding >= c.Stride && c.OutputPadding >= c.Dilation {
		panic(&torch.Error{Op: "conv_transpose2d", Msg: fmt.Sprintf("output padding %d must be smaller than stride %d or dilation %d", c.OutputPadding, c.Stride, c.Dilation)})
	}
	m := &ConvTranspose2d{opts: c.options(), path: p}
	m.Weight, m.Bias = newConvParameters(p, []int64{in, out / c.Groups, c.Kernel, c.Kernel}, out, !c.NoBias)
	p.register(m)
	if m.byPhases = byPhases(m.opts, c.Kernel); m.byPhases {
		p.store.phased = append(p.store.phased, m)
		p.store.refreshFastPath()
	}
	return m
}

// Forward applies the transposed convolution to x (N×in×H×W); by phases
// in the evaluation fast path, and on the CPU with autograd on too when the
// store says so (Store.SetPhasedTraining).
func (m *ConvTranspose2d) Forward(x *torch.Tensor) *torch.Tensor {
	if m.byPhases && x.Dim() == 4 {
		if m.phases[0] != nil && fastPath(m.path) {
			return m.forwardByPhases(x, m.phases)
		}
		if m.path.store.phasedTraining && x.Device() == torch.CPU {
			phases := phaseWeights(m)
			defer drop(&phases)
			return m.forwardByPhases(x, phases)
		}
	}
	return torch.ConvTranspose2d(x, m.Weight, m.Bias, m.opts)
}
