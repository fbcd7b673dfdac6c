package metrics

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/oct"
)

// Two cubes of two 1×3 slices, scored by hand below.
var (
	truthA = []uint8{1, 1, 0 /* slice 1 */, 2, 0, 0}
	predA  = []uint8{1, 0, 0 /* slice 1 */, 2, 2, 3}
	detA   = []float32{0.9, 0.2, 0.1 /* slice 1 */, 0.3, 0.8, 0.4}

	truthB = []uint8{3, 3, 0 /* slice 1 */, 1, 0, 0}
	predB  = []uint8{3, 0, 0 /* slice 1 */, 0, 0, 0}
	detB   = []float32{0.6, 0.1, 0.7 /* slice 1 */, 0.4, 0.1, 0.2}
)

func TestEvaluation(t *testing.T) {
	var e Evaluation
	require.NoError(t, e.Add("A", predA, truthA, detA, nil))
	// Explicit targets, equal to those derived from truthB.
	require.NoError(t, e.Add("B", predB, truthB, detB, []float32{0, 0, 1, 1, 0, 0}))

	cubes := e.Cubes()
	require.Len(t, cubes, 2)
	assert.Equal(t, "A", cubes[0].Name)
	// A: class 1 |G|=2 |P|=1 |G∩P|=1, class 2 |G|=1 |P|=2 |G∩P|=1, class 3
	// only predicted. B: class 1 missed, class 2 absent, class 3 half found.
	assertPerLesion(t, PerLesion{2.0 / 3, 2.0 / 3, nan}, cubes[0].Dice)
	assertPerLesion(t, PerLesion{0, nan, 2.0 / 3}, cubes[1].Dice)
	// Per cube, two slices each: a class whose targets are one value has no
	// AUC.
	assertPerLesion(t, PerLesion{1, 1, nan}, cubes[0].AUC)
	assertPerLesion(t, PerLesion{0, nan, 1}, cubes[1].AUC)

	s := e.Summary()
	assert.Equal(t, 2, s.Cubes)
	assertPerLesion(t, PerLesion{1.0 / 3, 2.0 / 3, 2.0 / 3}, s.Dice)
	assert.InDelta(t, 5.0/9, s.MeanDice, 1e-12)
	assertPerLesion(t, PerLesion{0.5, 1, 1}, s.CubeAUC)
	assert.InDelta(t, 2.5/3, s.MeanCubeAUC, 1e-12)
	// Pooled class 1: positives 0.9 and 0.4 against negatives 0.3 and 0.6
	// win three pairs out of four.
	assertPerLesion(t, PerLesion{0.75, 1, 1}, s.PooledAUC)
	assert.InDelta(t, 2.75/3, s.MeanPooledAUC, 1e-12)

	curves := e.PooledROC()
	assert.Equal(t, []float64{0, 0, 0.5, 0.5, 1}, curves[0].FPR)
	assert.Equal(t, []float64{0, 0.5, 0.5, 1, 1}, curves[0].TPR)
}

func TestEvaluationFloat64(t *testing.T) {
	// Two slices whose REA probabilities differ below float32's precision.
	truth := []uint8{0, 1}
	detections := []float64{0.1, 0.5, 0.5, 0.1 + 1e-12, 0.5, 0.5}
	var e Evaluation
	require.NoError(t, e.Add64("A", truth, truth, detections, nil))
	assertPerLesion(t, PerLesion{1, nan, nan}, e.Cubes()[0].AUC)

	var e32 Evaluation
	require.NoError(t, e32.Add("A", truth, truth, []float32{0.1, 0.5, 0.5, 0.1 + 1e-12, 0.5, 0.5}, nil))
	assertPerLesion(t, PerLesion{0.5, nan, nan}, e32.Cubes()[0].AUC)
}

func TestEvaluationEmpty(t *testing.T) {
	var e Evaluation
	s := e.Summary()
	assert.Zero(t, s.Cubes)
	assert.True(t, math.IsNaN(s.MeanDice))
	assert.True(t, math.IsNaN(s.MeanPooledAUC))
	assert.True(t, math.IsNaN(s.MeanCubeAUC))
}

func TestEvaluationBadInput(t *testing.T) {
	tests := []struct {
		name        string
		pred, truth []uint8
		det, target []float32
		want        string
	}{
		{"ragged detections", predA, truthA, detA[:5], nil, "5 detection probabilities do not make rows of 3"},
		{"no slices", nil, nil, nil, nil, "0 detection probabilities"},
		{"volume lengths", predA[:5], truthA, detA, nil, "prediction has 5 voxels, ground truth 6"},
		{"slices", predA[:5], truthA[:5], detA, nil, "5 voxels do not split into the 2 slices"},
		{"target count", predA, truthA, detA, []float32{0, 1, 0}, "3 detection targets for 6 probabilities"},
		{"target value", predA, truthA, detA, []float32{0, 1, 0, 0.5, 0, 0}, "slice 1, class REA is 0.5"},
		{"NaN detection", predA, truthA, []float32{0, 0, 0, 0, float32(math.NaN()), 0}, nil, "slice 1, class SRF is NaN"},
		{"label", []uint8{0, 0, 9, 0, 0, 0}, truthA, detA, nil, "prediction voxel 2 has label 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Evaluation
			err := e.Add("P0001", tt.pred, tt.truth, tt.det, tt.target)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "cube P0001: ")
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, e.Cubes())
			assert.False(t, e.PooledROC()[0].Defined())
		})
	}
}

// TestEvaluationShards: two shards, each encoded and decoded as the
// processes of a sharded evaluation send them, appended in order, give the
// evaluation of one process, NaN figures included.
func TestEvaluationShards(t *testing.T) {
	var whole, a, b Evaluation
	require.NoError(t, whole.Add("A", predA, truthA, detA, nil))
	require.NoError(t, whole.Add("B", predB, truthB, detB, nil))
	require.NoError(t, a.Add("A", predA, truthA, detA, nil))
	require.NoError(t, b.Add("B", predB, truthB, detB, nil))
	var merged Evaluation
	for _, part := range []*Evaluation{&a, &b} {
		data, err := part.MarshalBinary()
		require.NoError(t, err)
		var back Evaluation
		require.NoError(t, back.UnmarshalBinary(data))
		merged.Append(&back)
	}
	assert.Equal(t, fmt.Sprint(whole.Summary()), fmt.Sprint(merged.Summary()))
	assert.Equal(t, fmt.Sprint(whole.Cubes()), fmt.Sprint(merged.Cubes()))
	assert.Error(t, merged.UnmarshalBinary([]byte("not gob")))
}

// TestEvaluationAbsentTask: the figures of a task the network does not do
// are NaN in every view, those of the other task unchanged, and the
// encoding keeps which task is absent.
func TestEvaluationAbsentTask(t *testing.T) {
	var full Evaluation
	require.NoError(t, full.Add("A", predA, truthA, detA, nil))
	require.NoError(t, full.Add("B", predB, truthB, detB, nil))
	want := full.Summary()
	for _, tc := range []struct {
		absent  oct.Tasks
		dice    bool // Dice figures kept
		auc     bool // AUC figures kept
		summary string
	}{
		{oct.Segmentation, false, true, "detection"},
		{oct.Detection, true, false, "segmentation"},
	} {
		t.Run(tc.summary, func(t *testing.T) {
			e := Evaluation{Absent: tc.absent}
			require.NoError(t, e.Add("A", predA, truthA, detA, nil))
			require.NoError(t, e.Add("B", predB, truthB, detB, nil))
			data, err := e.MarshalBinary()
			require.NoError(t, err)
			var back Evaluation
			require.NoError(t, back.UnmarshalBinary(data))
			s := back.Summary()
			assert.Equal(t, tc.absent, s.Absent)
			pick := func(keep bool, v PerLesion) PerLesion {
				if keep {
					return v
				}
				return PerLesion{nan, nan, nan}
			}
			assertPerLesion(t, pick(tc.dice, want.Dice), s.Dice)
			assertPerLesion(t, pick(tc.auc, want.PooledAUC), s.PooledAUC)
			assertPerLesion(t, pick(tc.auc, want.CubeAUC), s.CubeAUC)
			assert.Equal(t, !tc.dice, math.IsNaN(s.MeanDice))
			assert.Equal(t, !tc.auc, math.IsNaN(s.MeanPooledAUC))
			for i, c := range back.Cubes() {
				assertPerLesion(t, pick(tc.dice, full.Cubes()[i].Dice), c.Dice)
				assertPerLesion(t, pick(tc.auc, full.Cubes()[i].AUC), c.AUC)
			}
		})
	}
}
