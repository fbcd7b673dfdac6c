package metrics

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/oct"
)

var nan = math.NaN()

// assertPerLesion compares figure by figure, NaN matching NaN only.
func assertPerLesion(t *testing.T, want, got PerLesion, msgAndArgs ...any) {
	t.Helper()
	for c := range want {
		if math.IsNaN(want[c]) {
			assert.True(t, math.IsNaN(got[c]), "class %s: want NaN, got %v %v", oct.LesionNames[c], got[c], msgAndArgs)
			continue
		}
		assert.InDelta(t, want[c], got[c], 1e-12, "class %s %v", oct.LesionNames[c], msgAndArgs)
	}
}

func TestDice(t *testing.T) {
	tests := []struct {
		name        string
		pred, truth []uint8
		want        PerLesion
	}{{
		name:  "partial overlap, class 3 only predicted",
		truth: []uint8{0, 1, 1, 2, 0, 0},
		pred:  []uint8{0, 1, 0, 2, 2, 3},
		// class 1: |G|=2 |P|=1 |G∩P|=1; class 2: |G|=1 |P|=2 |G∩P|=1;
		// class 3 absent from the truth.
		want: PerLesion{2.0 / 3, 2.0 / 3, nan},
	}, {
		name:  "perfect",
		truth: []uint8{3, 2, 1, 0},
		pred:  []uint8{3, 2, 1, 0},
		want:  PerLesion{1, 1, 1},
	}, {
		name:  "class present but missed entirely",
		truth: []uint8{0, 3, 3, 1},
		pred:  []uint8{0, 0, 0, 1},
		want:  PerLesion{1, nan, 0},
	}, {
		name:  "empty truth and prediction",
		truth: []uint8{0, 0},
		pred:  []uint8{0, 0},
		want:  PerLesion{nan, nan, nan},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Dice(tt.pred, tt.truth)
			require.NoError(t, err)
			assertPerLesion(t, tt.want, got)
		})
	}
}

func TestConfusionCounts(t *testing.T) {
	var c Confusion
	require.NoError(t, c.Add([]uint8{0, 1, 0, 2, 2, 3}, []uint8{0, 1, 1, 2, 0, 0}))
	require.NoError(t, c.Add([]uint8{3}, []uint8{3}))
	var want Confusion
	want[0][0], want[0][2], want[0][3] = 1, 1, 1
	want[1][1], want[1][0] = 1, 1
	want[2][2] = 1
	want[3][3] = 1
	assert.Equal(t, want, c)
	// Accumulating two volumes is the Dice of their concatenation.
	assertPerLesion(t, PerLesion{2.0 / 3, 2.0 / 3, 2.0 / 3}, c.Dice())
}

func TestDiceBadInput(t *testing.T) {
	tests := []struct {
		name        string
		pred, truth []uint8
		want        string
	}{
		{"length", []uint8{0, 1}, []uint8{0}, "prediction has 2 voxels, ground truth 1"},
		{"prediction label", []uint8{0, 4, 0}, []uint8{0, 0, 0}, "prediction voxel 1 has label 4"},
		{"truth label", []uint8{0, 0, 0}, []uint8{0, 0, 255}, "ground-truth voxel 2 has label 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Confusion
			err := c.Add(tt.pred, tt.truth)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, Confusion{}, c, "a failed Add leaves the counts unchanged")
		})
	}
}

func TestMeans(t *testing.T) {
	cubes := []PerLesion{
		{0.5, nan, nan},
		{1.0, 0.25, nan},
		{nan, 0.75, nan},
	}
	mean := MeanOverCubes(cubes)
	assertPerLesion(t, PerLesion{0.75, 0.5, nan}, mean)
	// A class without any defined cube is left out of the final mean.
	assert.InDelta(t, 0.625, mean.Mean(), 1e-12)
	assert.True(t, math.IsNaN(PerLesion{nan, nan, nan}.Mean()))
	assertPerLesion(t, PerLesion{nan, nan, nan}, MeanOverCubes(nil))
}

func TestSliceTargets(t *testing.T) {
	// Three slices of 2×2.
	truth := []uint8{
		0, 1, 1, 3,
		0, 0, 0, 0,
		2, 2, 0, 0,
	}
	got, err := SliceTargets(truth, 3)
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 0, 1, 0, 0, 0, 0, 1, 0}, got)

	_, err = SliceTargets(truth, 5)
	assert.ErrorContains(t, err, "does not split into 5 slices")
	_, err = SliceTargets([]uint8{0, 7}, 2)
	assert.ErrorContains(t, err, "slice 1 has label 7")
}

func BenchmarkConfusion(b *testing.B) {
	const n = 1 << 24
	pred, truth := make([]uint8, n), make([]uint8, n)
	for i := range pred {
		pred[i] = uint8(i*7>>3) & 3
		truth[i] = uint8(i*5>>2) & 3
	}
	b.SetBytes(2 * n)
	for b.Loop() {
		var c Confusion
		if err := c.Add(pred, truth); err != nil {
			b.Fatal(err)
		}
	}
}
