// Package models holds the networks of the retinal-edema pipeline: UNet,
// UNet++ and dilated UNet++ (docs/ORIGINAL.md, "Networks"), each segmenting a slice into
// background, REA, SRF and PED and detecting which lesions it shows.
//
// The networks are built on package torch/nn with the module tree of the
// original PyTorch code, so their state dicts have its keys, dtypes, shapes
// and order, and weights trained by it load here. Construction draws random
// numbers in the original's order: after torch.ManualSeed(s), New gives the
// weights that the original code gives after torch.manual_seed(s).
//
//	m, err := models.New("unet_nested")
//	...
//	defer m.Free()
//	seg, det, err := m.Forward(x) // N×4×H×W log-probabilities, N×3 probabilities
//
// [Model.Predict] runs a whole cube in batches with bounded memory and
// returns class labels and detection probabilities as Go slices.
package models
