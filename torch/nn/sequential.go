package nn

import (
	"strconv"

	"github.com/edema/edema/torch"
)

// Sequential is torch.nn.Sequential: layers applied one after the other,
// each created at the sub-path of its index ("0", "1", ...), so that a
// convolution, batch normalisation and ReLU give the keys 0.weight,
// 0.bias, 1.weight, ... of PyTorch. Layers are appended with the methods
// named after them:
//
//	step := nn.NewSequential(p.Sub("conv1")).
//		Conv2d(3, 16, nn.Conv2dConfig{Kernel: 3, Padding: 1}).
//		BatchNorm2d(16).
//		ReLU()
type Sequential struct {
	path   Path
	layers []Module
}

// NewSequential returns an empty sequence at p.
func NewSequential(p Path) *Sequential {
	s := &Sequential{path: p}
	p.register(s)
	return s
}

// Add appends the layer that build creates at the next index's path.
func (s *Sequential) Add(build func(p Path) Module) *Sequential {
	s.layers = append(s.layers, build(s.path.Sub(strconv.Itoa(len(s.layers)))))
	return s
}

// Conv2d appends NewConv2d(next, in, out, c).
func (s *Sequential) Conv2d(in, out int64, c Conv2dConfig) *Sequential {
	return s.Add(func(p Path) Module { return NewConv2d(p, in, out, c) })
}

// ConvTranspose2d appends NewConvTranspose2d(next, in, out, c).
func (s *Sequential) ConvTranspose2d(in, out int64, c Conv2dConfig) *Sequential {
	return s.Add(func(p Path) Module { return NewConvTranspose2d(p, in, out, c) })
}

// BatchNorm2d appends NewBatchNorm2d(next, features).
func (s *Sequential) BatchNorm2d(features int64) *Sequential {
	return s.Add(func(p Path) Module { return NewBatchNorm2d(p, features) })
}

// Dropout appends NewDropout(next, prob).
func (s *Sequential) Dropout(prob float64) *Sequential {
	return s.Add(func(p Path) Module { return NewDropout(p, prob) })
}

// ReLU appends a ReLU. Like torch.nn.ReLU(inplace=True) it overwrites its
// input when that is the fresh output of a convolution or batch
// normalisation just before it, which no one else sees.
func (s *Sequential) ReLU() *Sequential {
	inPlace := false
	if n := len(s.layers); n > 0 {
		switch s.layers[n-1].(type) {
		case *Conv2d, *ConvTranspose2d, *BatchNorm2d:
			inPlace = true
		}
	}
	return s.Add(func(Path) Module { return ReLU{InPlace: inPlace} })
}

// Sigmoid appends a sigmoid.
func (s *Sequential) Sigmoid() *Sequential {
	return s.Add(func(Path) Module { return Sigmoid{} })
}

// MaxPool2d appends max pooling over kernel×kernel windows, stride kernel.
func (s *Sequential) MaxPool2d(kernel int64) *Sequential {
	return s.Add(func(Path) Module { return MaxPool2d{Kernel: kernel} })
}

// AdaptiveMaxPool2d appends adaptive max pooling to size×size.
func (s *Sequential) AdaptiveMaxPool2d(size int64) *Sequential {
	return s.Add(func(Path) Module { return AdaptiveMaxPool2d{Size: size} })
}

// Layers returns the layers in order.
func (s *Sequential) Layers() []Module { return s.layers }

// Forward applies the layers in order. Each intermediate result's handle
// is released as soon as the next layer has consumed it, as Python drops
// its last reference, so that memory is reused within the pass; autograd
// keeps its own references to what the backward pass needs.
func (s *Sequential) Forward(x *torch.Tensor) *torch.Tensor {
	in := x
	for _, l := range s.layers {
		y := l.Forward(x)
		if x != in && x != y {
			x.Free()
		}
		x = y
	}
	return x
}
