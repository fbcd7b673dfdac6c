package nn

import "github.com/edema/edema/torch"

// The evaluation fast path. A store in evaluation mode computes some
// layers another way when autograd is off (torch.NoGrad,
// torch.InferenceMode), with the same results up to rounding:
//
//   - a Conv2d that a BatchNorm2d follows (Sequential.FoldBatchNorm) runs
//     as one convolution with the batch norm folded into its weight and
//     bias (fold.go), one pass over the activations instead of two;
//   - a ConvTranspose2d with kernel 4, stride 2 and padding 1 on the CPU
//     runs as one ordinary convolution that computes its four output
//     phases, interleaved afterwards (phases.go): libtorch 1.13 computes a
//     transposed convolution on the CPU with im2col and a GEMM (the "slow"
//     path), and oneDNN's convolution takes about half its time at the
//     decoders' sizes (BenchmarkEvalLayers).
//
// PyTorch's frozen TorchScript modules fold batch norm the same way
// (torch.jit.freeze, optimize_for_inference). The state dict keeps the
// layers' own tensors: the fast path's are made when the store enters
// evaluation mode, loads a state dict, moves or converts its tensors, or
// SetFastPath(true) is called, and kept until the next of those. With
// autograd on, evaluation runs every layer as it is, so that the layers'
// own parameters get their gradients.

// SetFastPath switches the evaluation fast path on (the default) or off;
// off, evaluation runs every layer as it is, for comparison. On, it also
// makes the fast path's tensors anew: call it after changing a network's
// tensors in place in evaluation mode other than through the store's
// methods (an all-reduce or a broadcast into them, say).
func (s *Store) SetFastPath(on bool) {
	s.noFastPath = !on
	s.refreshFastPath()
}

// SetPhasedTraining makes the transposed convolutions that the fast path
// computes by phases do so on the CPU with autograd on as well, in
// training mode and out of it (off by default). The gradients flow through
// the phases' convolution and the strided copy that interleaves them to
// the layers' own weight and bias. It trades PyTorch's bits for speed:
// libtorch 1.13 runs a transposed convolution and its backward pass on the
// CPU with im2col and OpenBLAS's GEMM, several times as slow as oneDNN's
// convolution of the phases (docs/BENCHMARKS.md, "Training"), and the
// phases sum the same products in another order, so that a training run
// is no longer PyTorch's bit for bit, only up to rounding.
func (s *Store) SetPhasedTraining(on bool) { s.phasedTraining = on }

// refreshFastPath makes the fast path's tensors when the store is in
// evaluation mode with the fast path on, and drops them otherwise. The
// store calls it whenever the tensors or the mode change.
func (s *Store) refreshFastPath() {
	for _, conv := range s.folds {
		drop(&conv.folded)
	}
	for _, up := range s.phased {
		drop(&up.phases)
	}
	if s.training || s.noFastPath || s.freed {
		return
	}
	torch.NoGrad(func() {
		for _, conv := range s.folds {
			conv.folded = foldBatchNorm(conv, conv.bn)
		}
		if s.Device() != torch.CPU {
			return
		}
		for _, up := range s.phased {
			up.phases = phaseWeights(up)
		}
	})
}

// fastPath says whether a forward pass of a layer at p now takes the fast
// path: evaluation mode, autograd off on this thread (the tensors exist
// only with the fast path on).
func fastPath(p Path) bool {
	return !p.Training() && !torch.GradEnabled()
}

// drop frees a weight and bias of the fast path and forgets them.
func drop(p *[2]*torch.Tensor) {
	p[0].Free()
	p[1].Free()
	*p = [2]*torch.Tensor{}
}
