package models

import (
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
)

// UNetNested is UNet++ (name "unet_nested") and, with a Dilated block,
// dilated UNet++ (name "unet_nested_dilated"). Node Xij sits at level i
// (resolution 1/2^i) and column j: column 0 is the encoder, and
// Xij = Up_ij(X(i+1)(j−1), Xi0, ..., Xi(j−1)). Four 1×1 heads on X01..X04
// are averaged before the log-softmax (deep supervision).
type UNetNested struct {
	Conv00, Conv10, Conv20, Conv30, Conv40 *DoubleConv
	Dilated                                *DilatedBlock // nil in plain UNet++
	Cls                                    *nn.Sequential

	UpConcat01, UpConcat11, UpConcat21, UpConcat31 *Up
	UpConcat02, UpConcat12, UpConcat22             *Up
	UpConcat03, UpConcat13                         *Up
	UpConcat04                                     *Up

	Final1, Final2, Final3, Final4 *nn.Conv2d
}

// NewUNetNested builds UNet++, with the dilated block on X40 when dilated
// is set, in the module p and initialises it as the original does.
func NewUNetNested(p nn.Path, dilated bool) *UNetNested {
	f := filters
	n := &UNetNested{
		Conv00: NewDoubleConv(p.Sub("conv00"), inChannels, f[0], true),
		Conv10: NewDoubleConv(p.Sub("conv10"), f[0], f[1], true),
		Conv20: NewDoubleConv(p.Sub("conv20"), f[1], f[2], true),
		Conv30: NewDoubleConv(p.Sub("conv30"), f[2], f[3], true),
		Conv40: NewDoubleConv(p.Sub("conv40"), f[3], f[4], true),
	}
	if dilated {
		n.Dilated = NewDilatedBlock(p.Sub("dilated"), f[4])
	}
	n.Cls = newDetectionHead(p.Sub("cls"), f[4])

	n.UpConcat01 = NewUp(p.Sub("up_concat01"), f[1], f[0], 2)
	n.UpConcat11 = NewUp(p.Sub("up_concat11"), f[2], f[1], 2)
	n.UpConcat21 = NewUp(p.Sub("up_concat21"), f[3], f[2], 2)
	n.UpConcat31 = NewUp(p.Sub("up_concat31"), f[4], f[3], 2)

	n.UpConcat02 = NewUp(p.Sub("up_concat02"), f[1], f[0], 3)
	n.UpConcat12 = NewUp(p.Sub("up_concat12"), f[2], f[1], 3)
	n.UpConcat22 = NewUp(p.Sub("up_concat22"), f[3], f[2], 3)

	n.UpConcat03 = NewUp(p.Sub("up_concat03"), f[1], f[0], 4)
	n.UpConcat13 = NewUp(p.Sub("up_concat13"), f[2], f[1], 4)

	n.UpConcat04 = NewUp(p.Sub("up_concat04"), f[1], f[0], 5)

	n.Final1 = newFinal(p.Sub("final_1"), f[0])
	n.Final2 = newFinal(p.Sub("final_2"), f[0])
	n.Final3 = newFinal(p.Sub("final_3"), f[0])
	n.Final4 = newFinal(p.Sub("final_4"), f[0])

	reinitNetwork(p.Store())
	return n
}

// Forward returns the segmentation log-probabilities N×4×H×W and the
// detection probabilities N×3 of x (N×3×H×W).
func (n *UNetNested) Forward(x *torch.Tensor) (seg, det *torch.Tensor) {
	// Column 0: the encoder.
	x00 := n.Conv00.Forward(x)
	x10 := down(n.Conv10, x00)
	x20 := down(n.Conv20, x10)
	x30 := down(n.Conv30, x20)
	x40 := down(n.Conv40, x30)
	if n.Dilated != nil {
		x40 = lastUse(x40, n.Dilated.Forward)
	}
	det = detect(n.Cls, x40)

	// Column 1.
	x01 := n.UpConcat01.Forward(x10, x00)
	x11 := n.UpConcat11.Forward(x20, x10)
	x21 := n.UpConcat21.Forward(x30, x20)
	x31 := n.UpConcat31.Forward(x40, x30)
	release(x40, x30)
	// Column 2.
	x02 := n.UpConcat02.Forward(x11, x00, x01)
	x12 := n.UpConcat12.Forward(x21, x10, x11)
	x22 := n.UpConcat22.Forward(x31, x20, x21)
	release(x31, x20, x21)
	// Column 3.
	x03 := n.UpConcat03.Forward(x12, x00, x01, x02)
	x13 := n.UpConcat13.Forward(x22, x10, x11, x12)
	release(x22, x10, x11, x12)
	// Column 4.
	x04 := n.UpConcat04.Forward(x13, x00, x01, x02, x03)
	release(x13, x00)

	final := n.Final1.Forward(x01).
		Add(n.Final2.Forward(x02)).
		Add(n.Final3.Forward(x03)).
		Add(n.Final4.Forward(x04)).
		DivScalar(4)
	return torch.LogSoftmax(final, 1), det
}
