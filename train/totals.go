package train

import (
	"fmt"
	"math"

	"github.com/edema/edema/losses"
	"github.com/edema/edema/metrics"

	"github.com/edema/edema/oct"
)

// counts are the pixel counts of one batch per lesion class: predicted
// and true together, predicted, true.
type counts struct {
	Inter, Pred, Truth [oct.NumLesions]float64
}

// diceSmooth is the smoothing of the original's per-batch training Dice.
const diceSmooth = 0.001

// dice is the original training script's Dice of one batch and class:
// (2·|P∩G| + 0.001) / (|P| + |G| + 0.001), so 1 where the class is in
// neither the prediction nor the labels.
func (c counts) dice(k int) float64 {
	return (2*c.Inter[k] + diceSmooth) / (c.Pred[k] + c.Truth[k] + diceSmooth)
}

// totals are the running training figures of an epoch: the steps done,
// the sum of their losses, their pooled counts and the sum of their
// per-batch Dice.
type totals struct {
	Steps   int
	LossSum float64
	counts
	// DiceSum holds per class the sum over the steps of counts.dice; NaN
	// for an epoch resumed from a checkpoint written before it was kept.
	DiceSum [oct.NumLesions]float64
}

func (t *totals) add(v losses.Values, c counts) {
	t.Steps++
	t.LossSum += v.Total
	for k := range oct.NumLesions {
		t.Inter[k] += c.Inter[k]
		t.Pred[k] += c.Pred[k]
		t.Truth[k] += c.Truth[k]
		t.DiceSum[k] += c.dice(k)
	}
}

// merge adds the steps of o, another rank's, to t.
func (t *totals) merge(o totals) {
	t.Steps += o.Steps
	t.LossSum += o.LossSum
	for k := range oct.NumLesions {
		t.Inter[k] += o.Inter[k]
		t.Pred[k] += o.Pred[k]
		t.Truth[k] += o.Truth[k]
		t.DiceSum[k] += o.DiceSum[k]
	}
}

// meanLoss is the mean loss of the steps done (NaN before the first).
func (t *totals) meanLoss() float64 {
	if t.Steps == 0 {
		return math.NaN()
	}
	return t.LossSum / float64(t.Steps)
}

// dice is the original's training Dice of each lesion class: the mean
// over the steps so far of each batch's smoothed Dice (NaN before the
// first step).
func (t *totals) dice() metrics.PerLesion {
	var d metrics.PerLesion
	for k := range d {
		d[k] = math.NaN()
		if t.Steps > 0 {
			d[k] = t.DiceSum[k] / float64(t.Steps)
		}
	}
	return d
}

// pooledDice is the training Dice of each lesion class over the pixels of
// the epoch so far, 2·|P∩G| / (|P| + |G|), NaN while the class has not
// occurred in the labels.
func (t *totals) pooledDice() metrics.PerLesion {
	var d metrics.PerLesion
	for k := range d {
		d[k] = math.NaN()
		if t.Truth[k] > 0 {
			d[k] = 2 * t.Inter[k] / (t.Pred[k] + t.Truth[k])
		}
	}
	return d
}

// Lengths of the list of numbers that a checkpoint keeps of the totals:
// before the per-batch Dice was kept, and since.
const (
	totalsLenCounts = 2 + 3*oct.NumLesions
	totalsLen       = totalsLenCounts + oct.NumLesions
)

// encode gives the totals as the list of numbers a checkpoint keeps.
func (t *totals) encode() []any {
	v := []any{float64(t.Steps), t.LossSum}
	for k := range oct.NumLesions {
		v = append(v, t.Inter[k], t.Pred[k], t.Truth[k])
	}
	for _, d := range t.DiceSum {
		v = append(v, d)
	}
	return v
}

func decodeTotals(v any) (totals, error) {
	items, ok := v.([]any)
	if !ok || (len(items) != totalsLen && len(items) != totalsLenCounts) {
		return totals{}, fmt.Errorf("epoch totals: want a list of %d numbers", totalsLen)
	}
	f := make([]float64, len(items))
	for i, item := range items {
		x, ok := item.(float64)
		if !ok || math.IsInf(x, 0) {
			return totals{}, fmt.Errorf("epoch totals: item %d is %v, not a number", i, item)
		}
		f[i] = x
	}
	if f[0] < 0 || f[0] != math.Trunc(f[0]) {
		return totals{}, fmt.Errorf("epoch totals: %v steps", f[0])
	}
	t := totals{Steps: int(f[0]), LossSum: f[1]}
	for k := range oct.NumLesions {
		t.Inter[k], t.Pred[k], t.Truth[k] = f[2+3*k], f[3+3*k], f[4+3*k]
		t.DiceSum[k] = math.NaN()
		if len(f) == totalsLen {
			t.DiceSum[k] = f[totalsLenCounts+k]
		}
	}
	return t, nil
}
