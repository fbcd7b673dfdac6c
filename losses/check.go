package losses

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/edema/edema/torch"

	"github.com/edema/edema/oct"
)

// shapeString writes a shape the way the documentation does: 2×4×16×16.
func shapeString(shape []int64) string {
	if len(shape) == 0 {
		return "a scalar"
	}
	parts := make([]string, len(shape))
	for i, n := range shape {
		parts[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(parts, "×")
}

func usable(t *torch.Tensor, name string) error {
	if t == nil {
		return fmt.Errorf("%s are missing (nil tensor)", name)
	}
	if t.IsFreed() {
		return fmt.Errorf("%s were already freed", name)
	}
	return nil
}

func sameDevice(a *torch.Tensor, aName string, b *torch.Tensor, bName string) error {
	if da, db := a.Device(), b.Device(); da != db {
		return fmt.Errorf("%s are on %s but %s are on %s", bName, db, aName, da)
	}
	return nil
}

// checkSegmentation accepts floating-point log-probabilities N×4×H×W and
// int64 labels N×H×W on the same device whose values are classes or
// oct.IgnoreClass, with at least one pixel not ignored. The label values are
// checked on the tensor's device with a single transfer of two counts.
func checkSegmentation(logp, target *torch.Tensor) error {
	if err := usable(logp, "log-probabilities"); err != nil {
		return err
	}
	if err := usable(target, "labels"); err != nil {
		return err
	}
	ls := logp.Shape()
	if len(ls) != 4 || ls[1] != oct.NumClasses {
		return fmt.Errorf("log-probabilities have shape %s, want N×%d×H×W", shapeString(ls), oct.NumClasses)
	}
	if d := logp.DType(); !d.IsFloatingPoint() {
		return fmt.Errorf("log-probabilities have dtype %s, want a floating-point dtype", d)
	}
	if ls[0] == 0 || ls[2] == 0 || ls[3] == 0 {
		return fmt.Errorf("log-probabilities have shape %s: the batch is empty", shapeString(ls))
	}
	ts := target.Shape()
	if want := []int64{ls[0], ls[2], ls[3]}; !slices.Equal(ts, want) {
		return fmt.Errorf("labels have shape %s, want %s to match log-probabilities of shape %s",
			shapeString(ts), shapeString(want), shapeString(ls))
	}
	if d := target.DType(); d != torch.Int64 {
		return fmt.Errorf("labels have dtype %s, want int64", d)
	}
	if err := sameDevice(logp, "log-probabilities", target, "labels"); err != nil {
		return err
	}

	ignored := target.EqScalar(float64(oct.IgnoreClass))
	invalid := target.LtScalar(0).LogicalOr(target.GtScalar(oct.NumClasses - 1)).LogicalAnd(ignored.LogicalNot())
	counts := torch.Stack([]*torch.Tensor{invalid.Sum(), ignored.Sum()}, 0).ToDevice(torch.CPU).Int64s()
	if counts[0] > 0 {
		return fmt.Errorf("%d label pixels are outside 0..%d and not %d (ignore); the labels range from %d to %d",
			counts[0], oct.NumClasses-1, oct.IgnoreClass, int64(target.Min().Item()), int64(target.Max().Item()))
	}
	if counts[1] == target.Numel() {
		return fmt.Errorf("every label pixel is %d (ignore): the weighted cross-entropy is undefined", oct.IgnoreClass)
	}
	return nil
}

// checkDetection accepts floating-point probabilities and targets of the
// same dtype and device, both n×3 (any n ≥ 1 when n < 0).
func checkDetection(prob, target *torch.Tensor, n int64) error {
	if err := usable(prob, "detection probabilities"); err != nil {
		return err
	}
	if err := usable(target, "detection targets"); err != nil {
		return err
	}
	ps, ts := prob.Shape(), target.Shape()
	want := fmt.Sprintf("N×%d", oct.NumLesions)
	if n >= 0 {
		want = fmt.Sprintf("%d×%d (one row per image of the batch)", n, oct.NumLesions)
	}
	if len(ps) != 2 || ps[1] != oct.NumLesions || (n >= 0 && ps[0] != n) || ps[0] == 0 {
		return fmt.Errorf("detection probabilities have shape %s, want %s", shapeString(ps), want)
	}
	if !slices.Equal(ts, ps) {
		return fmt.Errorf("detection targets have shape %s, want %s like the probabilities", shapeString(ts), shapeString(ps))
	}
	if d := prob.DType(); !d.IsFloatingPoint() {
		return fmt.Errorf("detection probabilities have dtype %s, want a floating-point dtype", d)
	}
	if dp, dt := prob.DType(), target.DType(); dp != dt {
		return fmt.Errorf("detection targets have dtype %s, want %s like the probabilities", dt, dp)
	}
	return sameDevice(prob, "detection probabilities", target, "detection targets")
}
