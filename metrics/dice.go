// Package metrics scores segmentation and detection outputs the way the AI
// Challenger 2018 retinal-edema track does: the Dice coefficient of each
// lesion class per OCT cube, the ROC AUC of the per-slice detection
// probabilities, and the fusion of several models' probabilities.
//
// Label volumes are flat []uint8 slices in slice-major order (S×H×W) holding
// the labels 0 (background), 1 (REA), 2 (SRF) and 3 (PED). A figure that is
// undefined (a lesion class absent from a cube's ground truth, an AUC with a
// single target class) is NaN and is left out of every mean.
package metrics

import (
	"fmt"
	"math"

	"github.com/edema/edema/oct"
)

// PerLesion holds one figure per lesion class, index c-1 for label c. NaN
// marks a figure that is undefined.
type PerLesion [oct.NumLesions]float64

// Mean returns the mean of the defined (non-NaN) figures, or NaN when none is
// defined. The challenge averages its three class scores; a class absent from
// every cube of the ground truth has no score at all, so it is left out rather
// than turning the whole mean into NaN.
func (p PerLesion) Mean() float64 {
	return meanDefined(p[:])
}

// MeanOverCubes returns, per lesion class, the mean of the figures of the
// cubes where that class is defined (NaN where it is defined in none).
func MeanOverCubes(cubes []PerLesion) PerLesion {
	var mean PerLesion
	for c := range mean {
		var sum float64
		var n int
		for _, cube := range cubes {
			if v := cube[c]; !math.IsNaN(v) {
				sum += v
				n++
			}
		}
		mean[c] = math.NaN()
		if n > 0 {
			mean[c] = sum / float64(n)
		}
	}
	return mean
}

func meanDefined(values []float64) float64 {
	var sum float64
	var n int
	for _, v := range values {
		if !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// Confusion counts voxels by label: Confusion[truth][prediction].
type Confusion [oct.NumClasses][oct.NumClasses]int64

// Add counts the voxels of a predicted volume against its ground truth. The
// two volumes must have the same length and hold labels 0..3 only; on an
// error c is left unchanged.
func (c *Confusion) Add(pred, truth []uint8) error {
	if len(pred) != len(truth) {
		return fmt.Errorf("prediction has %d voxels, ground truth %d", len(pred), len(truth))
	}
	// One pass over both volumes with a 16-cell table; out-of-range labels
	// are caught afterwards from the OR of every label, which keeps the
	// loop free of branches.
	var counts [oct.NumClasses * oct.NumClasses]int64
	var seen uint8
	truth = truth[:len(pred)]
	for i, p := range pred {
		g := truth[i]
		seen |= p | g
		counts[(g<<2|p)&15]++
	}
	if seen >= oct.NumClasses {
		return badLabel(pred, truth)
	}
	for g := range c {
		for p := range c[g] {
			c[g][p] += counts[g*oct.NumClasses+p]
		}
	}
	return nil
}

func badLabel(pred, truth []uint8) error {
	for i, p := range pred {
		if p >= oct.NumClasses {
			return fmt.Errorf("prediction voxel %d has label %d, want 0..%d", i, p, oct.NumClasses-1)
		}
		if g := truth[i]; g >= oct.NumClasses {
			return fmt.Errorf("ground-truth voxel %d has label %d, want 0..%d", i, g, oct.NumClasses-1)
		}
	}
	return fmt.Errorf("label out of range 0..%d", oct.NumClasses-1)
}

// Dice returns per lesion class c the Dice coefficient
// 2·|G_c ∩ P_c| / (|G_c| + |P_c|), NaN when the ground truth has no voxel of
// class c, even if the prediction has some.
func (c *Confusion) Dice() PerLesion {
	var d PerLesion
	for class := 1; class < oct.NumClasses; class++ {
		truth, pred := c.Counts(class)
		if truth == 0 {
			d[class-1] = math.NaN()
			continue
		}
		d[class-1] = 2 * float64(c[class][class]) / float64(truth+pred)
	}
	return d
}

// Counts returns the voxels of class in the ground truth and in the
// prediction.
func (c *Confusion) Counts(class int) (truth, pred int64) {
	for other := range oct.NumClasses {
		truth += c[class][other]
		pred += c[other][class]
	}
	return truth, pred
}

// Dice returns the per-class Dice coefficients of one cube's predicted label
// volume against its ground truth (see Confusion.Dice).
func Dice(pred, truth []uint8) (PerLesion, error) {
	var c Confusion
	if err := c.Add(pred, truth); err != nil {
		return PerLesion{}, err
	}
	return c.Dice(), nil
}

// SliceTargets returns the detection targets of a label volume of the given
// number of slices: per slice (row-major S×3) 1 where lesion class c occurs
// in the slice, else 0.
func SliceTargets(truth []uint8, slices int) ([]float32, error) {
	if slices <= 0 || len(truth)%slices != 0 {
		return nil, fmt.Errorf("a volume of %d voxels does not split into %d slices", len(truth), slices)
	}
	area := len(truth) / slices
	targets := make([]float32, slices*oct.NumLesions)
	for s := range slices {
		var present [256]bool
		for _, g := range truth[s*area : (s+1)*area] {
			present[g] = true
		}
		for c := 1; c < oct.NumClasses; c++ {
			if present[c] {
				targets[s*oct.NumLesions+c-1] = 1
			}
		}
		for g := oct.NumClasses; g < len(present); g++ {
			if present[g] {
				return nil, fmt.Errorf("ground truth of slice %d has label %d, want 0..%d", s, g, oct.NumClasses-1)
			}
		}
	}
	return targets, nil
}
