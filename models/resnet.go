package models

import (
	"fmt"
	"strings"

	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
)

// NameResNet18 names the detector of the original's results table:
// torchvision's ResNet-18, its classifier replaced by 512→3 and a sigmoid.
const NameResNet18 = "resnet18"

// ResNet18Parameters is the detector's number of trainable parameters:
// torchvision's 11,689,512 less its 512→1000 classifier plus the 512→3 one.
const ResNet18Parameters = 11_178_051

// BasicBlock is torchvision's residual block of ResNet-18 and -34: two 3×3
// convolutions without bias, each followed by batch norm, a ReLU after the
// first and after the sum with the block's input, which Downsample (a 1×1
// convolution of the block's stride and a batch norm) brings to the
// output's shape when the block changes it. Keys: conv1, bn1, conv2, bn2,
// downsample.0, downsample.1.
type BasicBlock struct {
	Conv1      *nn.Conv2d
	BN1        *nn.BatchNorm2d
	Conv2      *nn.Conv2d
	BN2        *nn.BatchNorm2d
	Downsample *nn.Sequential // nil when the block keeps its input's shape
}

// NewBasicBlock builds a block from in to out channels at p, its first
// convolution (and the downsampling) of the given stride.
func NewBasicBlock(p nn.Path, in, out, stride int64) *BasicBlock {
	b := &BasicBlock{
		Conv1: nn.NewConv2d(p.Sub("conv1"), in, out, nn.Conv2dConfig{Kernel: 3, Stride: stride, Padding: 1, NoBias: true}),
		BN1:   nn.NewBatchNorm2d(p.Sub("bn1"), out),
		Conv2: nn.NewConv2d(p.Sub("conv2"), out, out, nn.Conv2dConfig{Kernel: 3, Padding: 1, NoBias: true}),
		BN2:   nn.NewBatchNorm2d(p.Sub("bn2"), out),
	}
	if stride != 1 || in != out {
		b.Downsample = nn.NewSequential(p.Sub("downsample")).
			Conv2d(in, out, nn.Conv2dConfig{Kernel: 1, Stride: stride, NoBias: true}).
			BatchNorm2d(out)
	}
	return b
}

// Forward returns relu(bn2(conv2(relu(bn1(conv1(x))))) + identity).
func (b *BasicBlock) Forward(x *torch.Tensor) *torch.Tensor {
	identity := x
	if b.Downsample != nil {
		identity = b.Downsample.Forward(x)
	}
	out := b.BN1.Forward(b.Conv1.Forward(x)).ReluInPlace()
	out = b.BN2.Forward(b.Conv2.Forward(out))
	return out.AddInPlace(identity, 1).ReluInPlace()
}

// ResNet18 is the detector: torchvision's resnet18 (a 7×7 stride-2 stem
// with batch norm, ReLU and 3×3 stride-2 max pooling, four stages of two
// BasicBlocks of 64, 128, 256 and 512 channels, the later three starting at
// stride 2, a global average pool) with fc replaced by a 512→3 linear
// layer, whose sigmoid gives the probabilities that a slice shows REA, SRF
// and PED. Its input is the segmentation networks': the normalised
// 3-channel stack. It has no segmentation output.
type ResNet18 struct {
	Conv1  *nn.Conv2d
	BN1    *nn.BatchNorm2d
	Layers [4][2]*BasicBlock // layer1 … layer4
	FC     *nn.Linear
}

// NewResNet18 builds the detector at p (normally a store's root),
// initialised as `m = torchvision.models.resnet18(); m.fc =
// nn.Linear(512, 3)` is after the same torch.manual_seed: every layer's
// default initialisation in construction order, including that of the
// 512→1000 classifier it replaces, then Kaiming normal (fan_out, ReLU) on
// every convolution and ones and zeros on the batch norms, then the new
// classifier's default initialisation.
func NewResNet18(p nn.Path) *ResNet18 {
	r := &ResNet18{
		Conv1: nn.NewConv2d(p.Sub("conv1"), inChannels, 64, nn.Conv2dConfig{Kernel: 7, Stride: 2, Padding: 3, NoBias: true}),
		BN1:   nn.NewBatchNorm2d(p.Sub("bn1"), 64),
	}
	in := int64(64)
	for i, out := range []int64{64, 128, 256, 512} {
		stage := p.Sub(fmt.Sprintf("layer%d", i+1))
		stride := int64(2)
		if i == 0 {
			stride = 1
		}
		r.Layers[i][0] = NewBasicBlock(stage.Sub("0"), in, out, stride)
		r.Layers[i][1] = NewBasicBlock(stage.Sub("1"), out, out, 1)
		in = out
	}
	// torchvision's own classifier draws its weights before the
	// re-initialisation; the replacement draws after it.
	imagenet := nn.NewStore()
	nn.NewLinear(imagenet.Root(), 512, 1000, true)
	imagenet.Free()
	torch.NoGrad(func() {
		for _, m := range p.Modules() {
			switch m := m.(type) {
			case *nn.Conv2d:
				m.Weight.KaimingNormalInPlace(0, torch.FanOut, "relu")
			case *nn.BatchNorm2d:
				m.Weight.FillInPlace(1)
				m.Bias.ZeroInPlace()
			}
		}
	})
	r.FC = nn.NewLinear(p.Sub("fc"), 512, oct.NumLesions, true)
	return r
}

// stemPool is the stem's 3×3 max pooling, stride 2, padding 1.
var stemPool = nn.MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}

// Forward returns no segmentation (nil) and the detection probabilities
// N×3 of x (N×3×H×W), as a Network.
func (r *ResNet18) Forward(x *torch.Tensor) (seg, det *torch.Tensor) {
	return nil, r.Detect(x)
}

// Detect returns the detection probabilities N×3 of x (N×3×H×W).
func (r *ResNet18) Detect(x *torch.Tensor) *torch.Tensor {
	y := lastUse(r.BN1.Forward(r.Conv1.Forward(x)).ReluInPlace(), stemPool.Forward)
	for _, stage := range r.Layers {
		for _, block := range stage {
			y = lastUse(y, block.Forward)
		}
	}
	pooled := lastUse(y, func(y *torch.Tensor) *torch.Tensor { return torch.AdaptiveAvgPool2d(y, [2]int64{1, 1}) })
	features := pooled.Reshape(pooled.Size(0), -1)
	return r.FC.Forward(features).Sigmoid()
}

// LoadPretrainedResNet18 loads torchvision's ImageNet weights of
// ResNet-18 (resnet18-f37072fd.pth: its keys conv1.weight,
// layer1.0.bn1.running_mean, …, fc.*) into the detector of store s: every
// tensor but the classifier's, whose shape differs (fc.weight and fc.bias
// keep their values). Anything else that does not fit, a key missing or
// left over or a shape that differs, is refused in one error that lists
// it all, and nothing is loaded then.
func LoadPretrainedResNet18(s *nn.Store, sd []nn.Named) error {
	var weights []nn.Named
	for _, n := range sd {
		if !strings.HasPrefix(n.Name, "fc.") {
			weights = append(weights, n)
		}
	}
	// The detector's own classifier stands in for torchvision's, so that
	// the strict load checks every other key.
	for _, name := range []string{"fc.weight", "fc.bias"} {
		t, ok := s.Lookup(name)
		if !ok {
			return fmt.Errorf("pretrained ResNet-18: the network has no %s: not a ResNet-18 detector", name)
		}
		weights = append(weights, nn.Named{Name: name, Tensor: t})
	}
	if err := s.LoadStateDict(weights, true); err != nil {
		return fmt.Errorf("pretrained ResNet-18: %w", err)
	}
	return nil
}
