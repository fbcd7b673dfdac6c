package nn

import (
	"github.com/edema/edema/torch"
)

// Folding batch norm into the convolution before it, the first part of the
// evaluation fast path (fastpath.go): in evaluation mode a BatchNorm2d is
// an affine map per channel,
//
//	y = (x − mean)·γ/√(var + ε) + β,
//
// so a Conv2d followed by one computes conv(x; W', b') with
// W' = W·γ/√(var + ε) per output channel and b' = (b − mean)·γ/√(var + ε) + β,
// one pass over the activations instead of two.

// FoldBatchNorm marks every Conv2d of s that a BatchNorm2d directly follows
// to compute both in evaluation mode (see Store.SetFastPath). Training mode
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
	s.path.store.refreshFastPath()
	return n
}

// folding says whether a forward pass of m now uses its folded tensors.
func (m *Conv2d) folding() bool {
	return m.folded[0] != nil && fastPath(m.bn.path)
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
