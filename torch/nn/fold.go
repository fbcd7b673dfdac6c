package nn

import (
	"github.com/edema/edema/torch"
)

// Folding batch norm into the convolution before it, for evaluation: in
// evaluation mode a BatchNorm2d is an affine map per channel,
//
//	y = (x − mean)·γ/√(var + ε) + β,
//
// so a Conv2d followed by one computes conv(x; W', b') with
// W' = W·γ/√(var + ε) per output channel and b' = (b − mean)·γ/√(var + ε) + β,
// one pass over the activations instead of two. PyTorch's frozen
// TorchScript modules do the same (torch.jit.freeze, optimize_for_inference).
// The state dict keeps the layers' own tensors; the folded ones are made
// when the store enters evaluation mode, loads a state dict, moves or
// converts its tensors, or SetFolding(true) is called, and kept until the
// next of those. A pass uses them only while autograd is off (torch.NoGrad,
// torch.InferenceMode): with autograd on, evaluation runs every layer as it
// is, so that the layers' own parameters get their gradients.

// FoldBatchNorm marks every Conv2d of s that a BatchNorm2d directly follows
// to compute both in evaluation mode (see Store.SetFolding). Training mode
// and the state dict are unchanged. It returns the number of pairs.
func (s *Sequential) FoldBatchNorm() int {
	n := 0
	for i := 0; i+1 < len(s.layers); i++ {
		conv, ok := s.layers[i].(*Conv2d)
		bn, ok2 := s.layers[i+1].(*BatchNorm2d)
		if !ok || !ok2 || conv.bn != nil {
			continue
		}
		conv.bn, bn.foldedInto = bn, conv
		store := s.path.store
		store.folds = append(store.folds, conv)
		n++
	}
	s.path.store.refold()
	return n
}

// SetFolding switches the folding of FoldBatchNorm's pairs on (the default)
// or off; off, evaluation runs every layer as it is, for comparison. On,
// it also folds the tensors anew: call it after changing a network's
// tensors in place in evaluation mode other than through the store's
// methods (an all-reduce or a broadcast into them, say).
func (s *Store) SetFolding(on bool) {
	s.noFold = !on
	s.refold()
}

// refold makes the folded weights and biases when the store is in
// evaluation mode with folding on, and drops them otherwise. The store
// calls it whenever the tensors or the mode change.
func (s *Store) refold() {
	for _, conv := range s.folds {
		conv.folded[0].Free()
		conv.folded[1].Free()
		conv.folded = [2]*torch.Tensor{}
	}
	if s.training || s.noFold || s.freed {
		return
	}
	torch.NoGrad(func() {
		for _, conv := range s.folds {
			conv.folded = foldBatchNorm(conv, conv.bn)
		}
	})
}

// folding says whether a forward pass of m now uses its folded tensors:
// evaluation mode, folding on, autograd off on this thread.
func (m *Conv2d) folding() bool {
	return m.folded[0] != nil && !m.bn.path.Training() && !torch.GradEnabled()
}

// foldBatchNorm returns the weight and bias of conv followed by bn in
// evaluation mode, in the convolution's dtype, owned by no scope.
func foldBatchNorm(conv *Conv2d, bn *BatchNorm2d) (folded [2]*torch.Tensor) {
	torch.Scoped(func(sc *torch.Scope) {
		scale := bn.Weight.Div(bn.RunningVar.AddScalar(bn.Eps).Sqrt())
		out := conv.Weight.Size(0)
		w := conv.Weight.Mul(scale.Reshape(out, 1, 1, 1))
		b := bn.Bias.Sub(bn.RunningMean.Mul(scale))
		if conv.Bias != nil {
			b = b.Add(conv.Bias.Mul(scale))
		}
		sc.Keep(w, b)
		w.Unscope()
		b.Unscope()
		folded = [2]*torch.Tensor{w, b}
	})
	return folded
}
