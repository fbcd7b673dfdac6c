package oct

import "image/color"

// The lesion classes: this file is their one owner. Losses, networks,
// metrics, submissions and pictures all take the class set from here.

// Classes of the segmentation, as the networks number them.
const (
	Background = 0
	REA        = 1 // retinal edema area
	SRF        = 2 // subretinal fluid
	PED        = 3 // pigment epithelial detachment

	NumClasses = 4 // background and the three lesions
	NumLesions = 3 // detection outputs, one per lesion class
)

// IgnoreClass marks label pixels that the losses skip: the padding that
// rotation and cropping add around a slice.
//
// The original pads its label images with grey level 255 before mapping
// grey levels to classes, so its padding became class 1 (REA). Here labels
// are classes from the moment they are read, and padding stays ignored, as
// the original's pad value was meant.
const IgnoreClass uint8 = 255

// Grey levels of the lesion classes in the label BMPs.
const (
	LabelREA uint8 = 255
	LabelSRF uint8 = 191
	LabelPED uint8 = 128
)

// LesionNames names the lesion classes in class order: class c is
// LesionNames[c-1].
var LesionNames = [NumLesions]string{"REA", "SRF", "PED"}

// LesionColors are the colours the lesion classes are painted in, index
// c-1 for class c, as the original's pictures: REA blue, SRF green, PED
// red.
var LesionColors = [NumLesions]color.RGBA{
	{0, 0, 255, 255},
	{0, 255, 0, 255},
	{255, 0, 0, 255},
}

// ClassOfLabel maps a label grey level to its class: 255 → REA, 191 → SRF,
// 128 → PED; every other level is background.
func ClassOfLabel(v uint8) uint8 {
	switch v {
	case LabelREA:
		return REA
	case LabelSRF:
		return SRF
	case LabelPED:
		return PED
	}
	return Background
}

// LabelOfClass is the inverse of ClassOfLabel for the classes 0..3.
func LabelOfClass(c uint8) uint8 {
	switch c {
	case REA:
		return LabelREA
	case SRF:
		return LabelSRF
	case PED:
		return LabelPED
	}
	return 0
}
