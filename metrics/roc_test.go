package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
)

func TestROCHandMade(t *testing.T) {
	tests := []struct {
		name     string
		scores   []float64
		positive []bool
		fpr, tpr []float64
		auc      float64
	}{{
		name:     "separable",
		scores:   []float64{0.1, 0.9, 0.8, 0.3},
		positive: []bool{false, true, true, false},
		fpr:      []float64{0, 0, 0, 0.5, 1},
		tpr:      []float64{0, 0.5, 1, 1, 1},
		auc:      1,
	}, {
		name:     "one tie across the classes",
		scores:   []float64{0.2, 0.5, 0.5, 0.7},
		positive: []bool{false, false, true, true},
		// The tied pair is one point: (0.5, 1) straight from (0, 0.5).
		fpr: []float64{0, 0, 0.5, 1},
		tpr: []float64{0, 0.5, 1, 1},
		auc: 0.875,
	}, {
		name:     "all scores tied",
		scores:   []float64{0.4, 0.4, 0.4},
		positive: []bool{true, false, true},
		fpr:      []float64{0, 1},
		tpr:      []float64{0, 1},
		auc:      0.5,
	}, {
		name:     "infinite scores",
		scores:   []float64{math.Inf(-1), 0, math.Inf(1)},
		positive: []bool{false, true, true},
		fpr:      []float64{0, 0, 0, 1},
		tpr:      []float64{0, 0.5, 1, 1},
		auc:      1,
	}, {
		name:     "inverted",
		scores:   []float64{0.9, 0.1},
		positive: []bool{false, true},
		fpr:      []float64{0, 1, 1},
		tpr:      []float64{0, 0, 1},
		auc:      0,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			curve, err := ROC(tt.scores, tt.positive)
			require.NoError(t, err)
			assert.InDeltaSlice(t, tt.fpr, curve.FPR, 1e-15)
			assert.InDeltaSlice(t, tt.tpr, curve.TPR, 1e-15)
			assert.Len(t, curve.Thresholds, len(tt.fpr))
			assert.True(t, math.IsInf(curve.Thresholds[0], 1))
			assert.InDelta(t, tt.auc, curve.AUC(), 1e-15)
		})
	}
}

func TestROCUndefined(t *testing.T) {
	for name, positive := range map[string][]bool{
		"all negative": {false, false, false},
		"all positive": {true, true, true},
		"empty":        {},
	} {
		t.Run(name, func(t *testing.T) {
			scores := make([]float64, len(positive))
			curve, err := ROC(scores, positive)
			require.NoError(t, err)
			assert.False(t, curve.Defined())
			assert.True(t, math.IsNaN(curve.AUC()))
		})
	}
	_, err := AUC([]float64{0.1, math.NaN()}, []bool{true, false})
	assert.ErrorContains(t, err, "score 1 is NaN")
	_, err = AUC([]float64{0.1}, []bool{true, false})
	assert.ErrorContains(t, err, "1 scores against 2 targets")
}

// rocCase is one set of scores and targets, shared with the scikit-learn
// reference through JSON.
type rocCase struct {
	Scores   []float64 `json:"scores"`
	Positive []bool    `json:"positive"`
}

// rocReference is scikit-learn's answer for a rocCase: AUC is nil where
// roc_auc_score refuses a single target class.
type rocReference struct {
	AUC *float64  `json:"auc"`
	FPR []float64 `json:"fpr"`
	TPR []float64 `json:"tpr"`
}

const sklearnROC = `
import json, sys
import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

out = []
for case in json.load(open(sys.argv[1])):
    y = np.array(case["positive"], dtype=bool)
    s = np.array(case["scores"], dtype=np.float64)
    if y.all() or not y.any():
        out.append({"auc": None, "fpr": [], "tpr": []})
        continue
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    out.append({"auc": float(roc_auc_score(y, s)), "fpr": fpr.tolist(), "tpr": tpr.tolist()})
json.dump(out, sys.stdout)
`

func TestROCMatchesScikitLearn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var cases []rocCase
	for i := range 60 {
		n := 2 + rng.IntN(300)
		// Coarse levels make many ties; some cases have no ties at all.
		levels := []int{3, 10, 50, 0}[i%4]
		prevalence := rng.Float64()
		c := rocCase{Scores: make([]float64, n), Positive: make([]bool, n)}
		for j := range n {
			c.Positive[j] = rng.Float64() < prevalence
			s := rng.Float64()
			if c.Positive[j] {
				s = math.Min(1, s+0.3*rng.Float64())
			}
			if levels > 0 {
				s = math.Round(s*float64(levels)) / float64(levels)
			}
			c.Scores[j] = s
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		rocCase{Scores: []float64{0.1, 0.2, 0.3}, Positive: []bool{true, true, true}},
		rocCase{Scores: []float64{0.1, 0.2, 0.3}, Positive: []bool{false, false, false}},
		rocCase{Scores: []float64{0.5, 0.5, 0.5, 0.5}, Positive: []bool{false, true, false, true}},
	)

	dir := t.TempDir()
	data, err := json.Marshal(cases)
	require.NoError(t, err)
	input := filepath.Join(dir, "cases.json")
	require.NoError(t, os.WriteFile(input, data, 0o644))
	var want []rocReference
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, dir, sklearnROC, input)), &want))
	require.Len(t, want, len(cases))

	for i, c := range cases {
		curve, err := ROC(c.Scores, c.Positive)
		require.NoError(t, err)
		if want[i].AUC == nil {
			assert.True(t, math.IsNaN(curve.AUC()), "case %d: want NaN", i)
			continue
		}
		assert.InDelta(t, *want[i].AUC, curve.AUC(), 1e-12, "case %d AUC", i)
		assert.InDeltaSlice(t, want[i].FPR, curve.FPR, 1e-12, "case %d FPR", i)
		assert.InDeltaSlice(t, want[i].TPR, curve.TPR, 1e-12, "case %d TPR", i)
	}
}

// TestROCAt: the point of a threshold is the rates of "score ≥ threshold",
// counted directly.
func TestROCAt(t *testing.T) {
	scores := []float64{0.9, 0.5, 0.5, 0.3, 0.7, 0.1, 0.5, 0.2}
	positive := []bool{true, true, false, false, true, false, false, true}
	curve, err := ROC(scores, positive)
	require.NoError(t, err)
	for _, threshold := range []float64{0, 0.1, 0.15, 0.3, 0.5, 0.6, 0.9, 1, 2} {
		var tp, fp, p, n float64
		for i, s := range scores {
			if positive[i] {
				p++
			} else {
				n++
			}
			if s >= threshold {
				if positive[i] {
					tp++
				} else {
					fp++
				}
			}
		}
		fpr, tpr := curve.At(threshold)
		assert.Equal(t, [2]float64{fp / n, tp / p}, [2]float64{fpr, tpr}, "threshold %v", threshold)
	}
	fpr, tpr := ROCCurve{}.At(0.5)
	assert.True(t, math.IsNaN(fpr) && math.IsNaN(tpr))
}
