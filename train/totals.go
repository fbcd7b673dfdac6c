package train

import (
	"fmt"
	"math"

	"github.com/edema/edema/edema/metrics"
	"github.com/edema/edema/losses"
)

// counts are the pixel counts of one batch per lesion class: predicted
// and true together, predicted, true.
type counts struct {
	Inter, Pred, Truth [losses.NumLesions]float64
}

// totals are the running training figures of an epoch: the steps done,
// the sum of their losses and their pooled counts.
type totals struct {
	Steps   int
	LossSum float64
	counts
}

func (t *totals) add(v losses.Values, c counts) {
	t.Steps++
	t.LossSum += v.Total
	for k := range losses.NumLesions {
		t.Inter[k] += c.Inter[k]
		t.Pred[k] += c.Pred[k]
		t.Truth[k] += c.Truth[k]
	}
}

// meanLoss is the mean loss of the steps done (NaN before the first).
func (t *totals) meanLoss() float64 {
	if t.Steps == 0 {
		return math.NaN()
	}
	return t.LossSum / float64(t.Steps)
}

// dice is the training Dice of each lesion class over the pixels of the
// epoch so far, 2·|P∩G| / (|P| + |G|), NaN while the class has not
// occurred in the labels.
func (t *totals) dice() metrics.PerLesion {
	var d metrics.PerLesion
	for k := range d {
		d[k] = math.NaN()
		if t.Truth[k] > 0 {
			d[k] = 2 * t.Inter[k] / (t.Pred[k] + t.Truth[k])
		}
	}
	return d
}

// encode gives the totals as the list of numbers a checkpoint keeps.
func (t *totals) encode() []any {
	v := []any{float64(t.Steps), t.LossSum}
	for k := range losses.NumLesions {
		v = append(v, t.Inter[k], t.Pred[k], t.Truth[k])
	}
	return v
}

func decodeTotals(v any) (totals, error) {
	items, ok := v.([]any)
	if !ok || len(items) != 2+3*losses.NumLesions {
		return totals{}, fmt.Errorf("epoch totals: want a list of %d numbers", 2+3*losses.NumLesions)
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
	for k := range losses.NumLesions {
		t.Inter[k], t.Pred[k], t.Truth[k] = f[2+3*k], f[3+3*k], f[4+3*k]
	}
	return t, nil
}
