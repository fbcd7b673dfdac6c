package models

import (
	"fmt"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"

	"github.com/edema/edema/oct"
)

// The building blocks of the three networks, named as in the original code
// (unetConv2, unetUp, unetConv2_dilation) by what they do.

// conv3x3 is the 3×3 convolution, stride 1, padding 1, with bias, of every
// DoubleConv.
var conv3x3 = nn.Conv2dConfig{Kernel: 3, Padding: 1}

// DoubleConv is two steps of 3×3 convolution, batch normalisation (when
// enabled) and ReLU: keys conv1.0 (conv), conv1.1 (BN), conv2.0, conv2.1.
type DoubleConv struct {
	Conv1, Conv2 *nn.Sequential
}

// NewDoubleConv builds a DoubleConv from in to out channels at p.
func NewDoubleConv(p nn.Path, in, out int64, batchNorm bool) *DoubleConv {
	step := func(name string, in int64) *nn.Sequential {
		s := nn.NewSequential(p.Sub(name)).Conv2d(in, out, conv3x3)
		if batchNorm {
			s.BatchNorm2d(out)
		}
		return s.ReLU()
	}
	d := &DoubleConv{Conv1: step("conv1", in), Conv2: step("conv2", out)}
	// The original re-initialises its steps as soon as it has built them.
	reinitBlock(p.Sub("conv1"), p.Sub("conv2"))
	return d
}

// Forward applies both steps.
func (d *DoubleConv) Forward(x *torch.Tensor) *torch.Tensor {
	return lastUse(d.Conv1.Forward(x), d.Conv2.Forward)
}

// lastUse returns f(x) and releases the handle of x, an intermediate
// result that f is the last to use, as Python drops its last reference: the
// memory of large activations is then reused within a forward pass instead
// of piling up until its end. Autograd keeps references of its own.
func lastUse(x *torch.Tensor, f func(*torch.Tensor) *torch.Tensor) *torch.Tensor {
	y := f(x)
	if y != x {
		release(x)
	}
	return y
}

// release frees the handles of intermediate results that nothing later
// uses, so that their memory serves the next ones (autograd keeps what
// backward needs); without it they live until the caller's scope closes.
func release(ts ...*torch.Tensor) {
	if !freeEarly {
		return
	}
	for _, t := range ts {
		t.Free()
	}
}

// freeEarly is whether release frees at once. BenchmarkLiveness turns it
// off to measure what freeing early saves.
var freeEarly = true

// down is an encoder step: max pooling 2×2, then conv.
func down(conv *DoubleConv, x *torch.Tensor) *torch.Tensor {
	return lastUse(pool.Forward(x), conv.Forward)
}

// Up is a decoder node: the lower level upsampled ×2 by a transposed
// convolution (kernel 4, stride 2, padding 1), concatenated on channels with
// the skip connections, then a DoubleConv without batch normalisation.
// Keys: conv.conv1.0, conv.conv2.0, then up.
type Up struct {
	Conv *DoubleConv
	Up   *nn.ConvTranspose2d
}

// NewUp builds a decoder node at p that takes a lower level of low channels
// and nConcat−1 skip connections of skip channels, and gives skip channels.
func NewUp(p nn.Path, low, skip int64, nConcat int) *Up {
	u := &Up{
		Conv: NewDoubleConv(p.Sub("conv"), low+int64(nConcat-2)*skip, skip, false),
		Up:   nn.NewConvTranspose2d(p.Sub("up"), low, skip, nn.Conv2dConfig{Kernel: 4, Stride: 2, Padding: 1}),
	}
	// The original re-initialises its children except the DoubleConv,
	// which did so itself.
	reinitBlock(p.Sub("up"))
	return u
}

// Forward upsamples lower and concatenates [up(lower), skips...].
func (u *Up) Forward(lower *torch.Tensor, skips ...*torch.Tensor) *torch.Tensor {
	up := u.Up.Forward(lower)
	cat := torch.Cat(append([]*torch.Tensor{up}, skips...), 1)
	release(up)
	return lastUse(cat, u.Conv.Forward)
}

// DilatedBlock is the dilated module of dilated UNet++: four chained
// steps of 3×3 convolution with dilation and padding 1, 2, 4, 8, batch
// normalisation and ReLU (keys conv1..conv4), whose input and four outputs
// are summed.
type DilatedBlock struct {
	Convs [4]*nn.Sequential
}

// NewDilatedBlock builds a dilated block of c channels at p.
func NewDilatedBlock(p nn.Path, c int64) *DilatedBlock {
	b := &DilatedBlock{}
	var steps []nn.Path
	for i := range b.Convs {
		d := int64(1) << i
		step := p.Sub(fmt.Sprintf("conv%d", i+1))
		b.Convs[i] = nn.NewSequential(step).
			Conv2d(c, c, nn.Conv2dConfig{Kernel: 3, Padding: d, Dilation: d}).
			BatchNorm2d(c).
			ReLU()
		steps = append(steps, step)
	}
	reinitBlock(steps...)
	return b
}

// Forward returns x + y1 + y2 + y3 + y4, y_i the output of step i on
// y_(i-1) and y_0 = x. The block works at the bottleneck, a sixteenth of
// the slice's side, where keeping all five until the pass ends costs about
// 1% of its peak memory (BenchmarkLiveness), so nothing is freed early.
func (b *DilatedBlock) Forward(x *torch.Tensor) *torch.Tensor {
	y1 := b.Convs[0].Forward(x)
	y2 := b.Convs[1].Forward(y1)
	y3 := b.Convs[2].Forward(y2)
	y4 := b.Convs[3].Forward(y3)
	return x.Add(y1).Add(y2).Add(y3).Add(y4)
}

// newDetectionHead builds the detection head "cls" on in channels:
// Dropout(0.5), 1×1 convolution to 3 outputs (key cls.1), global max
// pooling and sigmoid.
func newDetectionHead(p nn.Path, in int64) *nn.Sequential {
	return nn.NewSequential(p).
		Dropout(0.5).
		Conv2d(in, oct.NumLesions, nn.Conv2dConfig{Kernel: 1}).
		AdaptiveMaxPool2d(1).
		Sigmoid()
}

// detect runs the detection head and returns N×3 probabilities, also for
// N = 1 (the original's squeeze would drop the batch dimension there).
func detect(head *nn.Sequential, x *torch.Tensor) *torch.Tensor {
	return head.Forward(x).Reshape(x.Size(0), oct.NumLesions)
}

// newFinal builds a segmentation head: a 1×1 convolution to the classes.
func newFinal(p nn.Path, in int64) *nn.Conv2d {
	return nn.NewConv2d(p, in, oct.NumClasses, nn.Conv2dConfig{Kernel: 1})
}

var pool = nn.MaxPool2d{Kernel: 2}

// Initialisation (docs/ORIGINAL.md, "Networks"). The original re-initialises twice: each block
// right after building its layers (init_weights(m, 'kaiming') on its
// children, which matches plain and transposed convolutions alike), and
// the network at the end of its constructor (a loop over self.modules()
// that matches only nn.Conv2d, not nn.ConvTranspose2d, and
// nn.BatchNorm2d). Every draw consumes random numbers, so the same seed
// gives the original's weights only if all of them happen in this order.

// reinitBlock re-initialises the layers under paths as the original's
// blocks do.
func reinitBlock(paths ...nn.Path) {
	for _, p := range paths {
		for _, m := range p.Modules() {
			switch m := m.(type) {
			case *nn.Conv2d:
				kaimingNormal(m.Weight)
			case *nn.ConvTranspose2d:
				kaimingNormal(m.Weight)
			case *nn.BatchNorm2d:
				normalBatchNorm(m)
			}
		}
	}
}

// reinitNetwork re-initialises a whole network as the original's
// constructors finally do.
func reinitNetwork(s *nn.Store) {
	for _, m := range s.Modules() {
		switch m := m.(type) {
		case *nn.Conv2d:
			kaimingNormal(m.Weight)
		case *nn.BatchNorm2d:
			normalBatchNorm(m)
		}
	}
}

// kaimingNormal is kaiming_normal_(w, a=0, mode='fan_in').
func kaimingNormal(w *torch.Tensor) { w.KaimingNormalInPlace(0, torch.FanIn, "leaky_relu") }

// normalBatchNorm draws the weight from N(1, 0.02²) and zeroes the bias.
func normalBatchNorm(m *nn.BatchNorm2d) {
	m.Weight.NormalInPlace(1, 0.02)
	m.Bias.ZeroInPlace()
}
