// Package models holds the networks of the retinal-edema pipeline: UNet,
// UNet++ and dilated UNet++ (docs/ORIGINAL.md, "Networks"), each segmenting a slice into
// background, REA, SRF and PED and detecting which lesions it shows, and
// the ResNet-18 detector of the original's results table, which only
// detects. A Model's Tasks say which of its outputs mean something.
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
// [Model.PredictInto] runs one batch in evaluation mode and writes class
// labels and detection probabilities into Go slices; whole cubes, fusions
// and test-time augmentation are package inference's.
//
// # Goroutines
//
// A network in evaluation mode may run Forward and PredictInto from
// several goroutines at once: the pass only reads the weights and the
// mode, and each call's tensors are its own. Everything that changes the
// network (Train, Eval, SetTraining, LoadCheckpoint, To, ToDType, Free, an
// optimizer step) must not run while another goroutine uses it. In
// training mode a forward pass updates the batch-normalisation statistics,
// so a network being trained belongs to one goroutine.
package models
