package metrics

import (
	"errors"
	"fmt"
)

// Fuse returns the weighted mean Σ_k w_k·p_k / Σ_k w_k of equally long
// probability slices, one per model: segmentation probabilities (the exp of
// a network's log-probabilities) or detection probabilities. It computes in
// float32, in model order, so that with weights summing to 1 the result is
// bit for bit PyTorch's w_1*p_1 + w_2*p_2 on float32 tensors.
func Fuse(weights []float32, probs ...[]float32) ([]float32, error) {
	if len(probs) == 0 {
		return nil, errors.New("fusing no model")
	}
	if len(weights) != len(probs) {
		return nil, fmt.Errorf("%d weights for %d models", len(weights), len(probs))
	}
	var total float32
	for k, w := range weights {
		if !(w >= 0) {
			return nil, fmt.Errorf("weight %d is %g, want a non-negative number", k, w)
		}
		total += w
	}
	if !(total > 0) {
		return nil, errors.New("the fusion weights sum to 0")
	}
	for k, p := range probs[1:] {
		if len(p) != len(probs[0]) {
			return nil, fmt.Errorf("model %d has %d probabilities, model 0 has %d", k+1, len(p), len(probs[0]))
		}
	}

	fused := make([]float32, len(probs[0]))
	w := weights[0]
	for i, v := range probs[0] {
		fused[i] = w * v
	}
	for k, p := range probs[1:] {
		w := weights[k+1]
		p = p[:len(fused)]
		for i, v := range p {
			// The explicit conversion rounds the product, so that it is
			// never fused into a multiply-add (as PyTorch does not either).
			fused[i] += float32(w * v)
		}
	}
	if total != 1 {
		for i := range fused {
			fused[i] /= total
		}
	}
	return fused, nil
}

// Argmax returns the label of each pixel of n images of per-class scores
// (probabilities or log-probabilities) laid out n×classes×H×W: the class of
// the highest score, the lowest such class on a tie and the first NaN if any,
// as torch.argmax and numpy.argmax do. The labels are laid out n×H×W.
func Argmax(scores []float32, n, classes int) ([]uint8, error) {
	if n <= 0 || classes <= 0 || classes > 256 {
		return nil, fmt.Errorf("argmax over %d images of %d classes", n, classes)
	}
	if len(scores)%(n*classes) != 0 {
		return nil, fmt.Errorf("%d scores do not make %d images of %d classes", len(scores), n, classes)
	}
	area := len(scores) / (n * classes)
	labels := make([]uint8, n*area)
	best := make([]float32, area)
	for b := range n {
		image := scores[b*classes*area : (b+1)*classes*area]
		out := labels[b*area : (b+1)*area]
		copy(best, image[:area])
		// Class-major sweeps keep every read sequential.
		for c := 1; c < classes; c++ {
			plane := image[c*area : (c+1)*area]
			for i, v := range plane {
				if v > best[i] || v != v && best[i] == best[i] {
					best[i] = v
					out[i] = uint8(c)
				}
			}
		}
	}
	return labels, nil
}
