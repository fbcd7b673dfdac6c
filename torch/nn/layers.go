package nn

import "github.com/edema/edema/torch"

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
// (zero means Kernel, PyTorch's default).
type MaxPool2d struct{ Kernel, Stride int64 }

// Forward pools x (N×C×H×W).
func (m MaxPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.MaxPool2d(x, [2]int64{m.Kernel, m.Kernel}, [2]int64{m.Stride, m.Stride}, [2]int64{}, false)
}

// AdaptiveMaxPool2d takes the maximum over windows that divide every
// channel into Size×Size cells.
type AdaptiveMaxPool2d struct{ Size int64 }

// Forward pools x (N×C×H×W) to N×C×Size×Size.
func (m AdaptiveMaxPool2d) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.AdaptiveMaxPool2d(x, [2]int64{m.Size, m.Size})
}
