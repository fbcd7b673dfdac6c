package metrics

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/integrate"
	"gonum.org/v1/gonum/stat"
)

// ROCCurve is a receiver operating characteristic: point i gives the false
// and true positive rates of the classifier "score >= Thresholds[i]". The
// thresholds decrease from +Inf (the point (0, 0)) to the lowest score (the
// point (1, 1)), one point per distinct score, so tied scores form a single
// point as in scikit-learn's roc_curve.
type ROCCurve struct {
	FPR, TPR, Thresholds []float64
}

// ROC returns the ROC curve of scores against the binary targets positive.
// The curve has no points when the targets are all positive or all negative:
// the curve, and its AUC, are then undefined. A NaN score is an error.
func ROC(scores []float64, positive []bool) (ROCCurve, error) {
	if len(scores) != len(positive) {
		return ROCCurve{}, fmt.Errorf("ROC of %d scores against %d targets", len(scores), len(positive))
	}
	var npos int
	for i, s := range scores {
		if math.IsNaN(s) {
			return ROCCurve{}, fmt.Errorf("score %d is NaN", i)
		}
		if positive[i] {
			npos++
		}
	}
	if npos == 0 || npos == len(scores) {
		return ROCCurve{}, nil
	}

	y := slices.Clone(scores)
	classes := slices.Clone(positive)
	stat.SortWeightedLabeled(y, classes, nil)
	// Explicit cutoffs, one per distinct score: stat.ROC then gives the rates
	// of "score >= cutoff" for each of them, the last point being (1, 1).
	// Its default cutoffs would end in a +Inf sentinel that a +Inf score
	// collides with.
	cutoffs := slices.Compact(slices.Clone(y))
	tpr, fpr, thresh := stat.ROC(cutoffs, y, classes, nil)
	return ROCCurve{
		FPR:        append([]float64{0}, fpr...),
		TPR:        append([]float64{0}, tpr...),
		Thresholds: append([]float64{math.Inf(1)}, thresh...),
	}, nil
}

// Defined reports whether the curve has points, that is whether the targets
// held both classes.
func (c ROCCurve) Defined() bool {
	return len(c.FPR) >= 2
}

// AUC returns the area under the curve by the trapezoidal rule (the same
// figure as scikit-learn's roc_auc_score), NaN when the curve is undefined.
func (c ROCCurve) AUC() float64 {
	if !c.Defined() {
		return math.NaN()
	}
	return integrate.Trapezoidal(c.FPR, c.TPR)
}

// AUC returns the area under the ROC curve of scores against the binary
// targets positive, NaN when the targets are all positive or all negative.
func AUC(scores []float64, positive []bool) (float64, error) {
	curve, err := ROC(scores, positive)
	if err != nil {
		return math.NaN(), err
	}
	return curve.AUC(), nil
}

// At returns the curve's point for the decision "score ≥ threshold": the
// false and true positive rates of the slices it calls positive. It is
// (0, 0) above every score and NaN, NaN for an undefined curve.
func (c ROCCurve) At(threshold float64) (fpr, tpr float64) {
	if !c.Defined() {
		return math.NaN(), math.NaN()
	}
	// Thresholds fall along the curve, from +Inf; the last one still ≥
	// threshold gives the rates of "score ≥ threshold".
	i := 0
	for i+1 < len(c.Thresholds) && c.Thresholds[i+1] >= threshold {
		i++
	}
	return c.FPR[i], c.TPR[i]
}
