package losses

import (
	"github.com/edema/edema/torch"

	"github.com/edema/edema/oct"
)

// The loss terms on checked inputs. They panic with *torch.Error when
// libtorch fails and leave their temporaries to the caller's scope.

func wce(logp, target *torch.Tensor) *torch.Tensor {
	w := ClassWeights()
	weight := torch.FromSlice(w[:]).ToOptions(torch.Options{DType: logp.DType(), Device: logp.Device()})
	return torch.NLLLoss(logp, target, torch.LossOptions{
		Weight:      weight,
		Reduction:   torch.ReductionMean,
		IgnoreIndex: int64(oct.IgnoreClass),
	})
}

// classDice computes dice_c of the lesion classes over the whole batch
// without a branch on the data, so that it needs no transfer to the host:
// an absent class selects the constant 1 (with no gradient), and its
// denominator is replaced by 1 as well, so that the unselected quotient
// stays finite and cannot leak NaN into the gradient.
func classDice(logp, target *torch.Tensor) *torch.Tensor {
	o := torch.Options{DType: logp.DType(), Device: logp.Device()}
	lesions := torch.Arange(1, oct.NumClasses, 1, torch.Options{DType: torch.Int64, Device: o.Device}).
		View(1, oct.NumLesions, 1, 1)
	isClass := target.Unsqueeze(1).Eq(lesions).To(o.DType) // N×3×H×W: [T = c]
	p := logp.Narrow(1, 1, oct.NumLesions).Exp()           // N×3×H×W: P_c
	sumDims := []int64{0, 2, 3}
	intersection := p.Mul(isClass).SumDims(sumDims, false)
	count := isClass.SumDims(sumDims, false)
	union := p.SumDims(sumDims, false).Add(count)
	present := count.GtScalar(0)
	one := torch.Ones([]int64{}, o)
	dice := intersection.MulScalar(2).Div(torch.Where(present, union, one))
	return torch.Where(present, dice, one)
}

func diceLoss(logp, target *torch.Tensor) *torch.Tensor {
	return classDice(logp, target).Mean().RSubScalar(1)
}

// smallestNormalFloat32 bounds dice_c from below before its logarithm.
const smallestNormalFloat32 = 0x1p-126

func expLogDiceLoss(logp, target *torch.Tensor) *torch.Tensor {
	o := torch.Options{DType: logp.DType(), Device: logp.Device()}
	x := classDice(logp, target).ClampMin(smallestNormalFloat32).Log().Neg()
	// x^Gamma has an infinite derivative at x = 0 (a perfect or absent
	// class). Where x <= 0 the power is taken of 1 instead and the result
	// replaced by 0, so that no infinity reaches the backward pass.
	positive := x.GtScalar(0)
	one, zero := torch.Ones([]int64{}, o), torch.Zeros([]int64{}, o)
	terms := torch.Where(positive, torch.Where(positive, x, one).Pow(Gamma), zero)
	return terms.Mean()
}

func bce(prob, target *torch.Tensor) *torch.Tensor {
	return torch.BinaryCrossEntropy(prob, target, nil, torch.ReductionMean)
}
