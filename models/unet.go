package models

import (
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
)

const (
	inChannels = 3 // the slice and its two neighbours
)

// filters are the widths of the five levels: 64..1024 divided by the
// original's feature_scale 4.
var filters = [5]int64{16, 32, 64, 128, 256}

// UNet is the multi-task UNet (name "unet"): a four-level encoder with
// batch normalisation, the detection head on the bottom level, a decoder of
// Up nodes and a 1×1 segmentation head.
type UNet struct {
	Conv1, Conv2, Conv3, Conv4, Center         *DoubleConv
	Cls                                        *nn.Sequential
	UpConcat4, UpConcat3, UpConcat2, UpConcat1 *Up
	Final1                                     *nn.Conv2d
}

// NewUNet builds a UNet in the module p (normally a store's root) and
// initialises it as the original does.
func NewUNet(p nn.Path) *UNet {
	f := filters
	n := &UNet{
		Conv1:  NewDoubleConv(p.Sub("conv1"), inChannels, f[0], true),
		Conv2:  NewDoubleConv(p.Sub("conv2"), f[0], f[1], true),
		Conv3:  NewDoubleConv(p.Sub("conv3"), f[1], f[2], true),
		Conv4:  NewDoubleConv(p.Sub("conv4"), f[2], f[3], true),
		Center: NewDoubleConv(p.Sub("center"), f[3], f[4], true),
		Cls:    newDetectionHead(p.Sub("cls"), f[4]),

		UpConcat4: NewUp(p.Sub("up_concat4"), f[4], f[3], 2),
		UpConcat3: NewUp(p.Sub("up_concat3"), f[3], f[2], 2),
		UpConcat2: NewUp(p.Sub("up_concat2"), f[2], f[1], 2),
		UpConcat1: NewUp(p.Sub("up_concat1"), f[1], f[0], 2),

		Final1: newFinal(p.Sub("final_1"), f[0]),
	}
	reinitNetwork(p.Store())
	return n
}

// Forward returns the segmentation log-probabilities N×4×H×W and the
// detection probabilities N×3 of x (N×3×H×W).
func (n *UNet) Forward(x *torch.Tensor) (seg, det *torch.Tensor) {
	conv1 := n.Conv1.Forward(x)
	conv2 := down(n.Conv2, conv1)
	conv3 := down(n.Conv3, conv2)
	conv4 := down(n.Conv4, conv3)
	center := down(n.Center, conv4)
	det = detect(n.Cls, center)

	up4 := n.UpConcat4.Forward(center, conv4)
	up3 := n.UpConcat3.Forward(up4, conv3)
	up2 := n.UpConcat2.Forward(up3, conv2)
	up1 := n.UpConcat1.Forward(up2, conv1)
	return torch.LogSoftmax(n.Final1.Forward(up1), 1), det
}
