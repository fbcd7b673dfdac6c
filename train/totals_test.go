package train

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/losses"
)

func TestTotals(t *testing.T) {
	var tot totals
	assert.True(t, math.IsNaN(tot.meanLoss()))
	tot.add(losses.Values{Total: 1.5}, counts{Inter: [3]float64{2, 0, 0}, Pred: [3]float64{3, 1, 0}, Truth: [3]float64{5, 0, 0}})
	tot.add(losses.Values{Total: 0.5}, counts{Inter: [3]float64{1, 0, 4}, Pred: [3]float64{1, 0, 4}, Truth: [3]float64{1, 0, 6}})
	assert.Equal(t, 2, tot.Steps)
	assert.Equal(t, 1.0, tot.meanLoss())
	d := tot.dice()
	assert.Equal(t, 2*3.0/(4+6), d[0])
	assert.True(t, math.IsNaN(d[1]), "SRF never occurred in the labels")
	assert.Equal(t, 2*4.0/(4+6), d[2])

	back, err := decodeTotals(tot.encode())
	require.NoError(t, err)
	assert.Equal(t, tot, back)

	for _, bad := range []any{nil, []any{1.0}, append(tot.encode()[:10:10], "x"), append([]any{-1.0}, tot.encode()[1:]...), append([]any{1.5}, tot.encode()[1:]...)} {
		_, err := decodeTotals(bad)
		assert.Error(t, err, "%v", bad)
	}
}

func TestStepSeedsDiffer(t *testing.T) {
	seen := map[uint64]bool{}
	for _, seed := range []uint64{0, 1, 1234} {
		for epoch := range 3 {
			for step := range 100 {
				s := stepSeed(seed, epoch, step)
				assert.False(t, seen[s], "seed %d epoch %d step %d", seed, epoch, step)
				seen[s] = true
			}
		}
	}
	assert.Equal(t, stepSeed(7, 2, 3), stepSeed(7, 2, 3))
}
