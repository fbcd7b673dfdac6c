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
	// Pooled: all pixels of the epoch together.
	d := tot.pooledDice()
	assert.Equal(t, 2*3.0/(4+6), d[0])
	assert.True(t, math.IsNaN(d[1]), "SRF never occurred in the labels")
	assert.Equal(t, 2*4.0/(4+6), d[2])
	// The original's: per batch, smoothed by 0.001, then the mean.
	const e = 0.001
	d = tot.dice()
	assert.InDelta(t, ((2*2+e)/(3+5+e)+(2*1+e)/(1+1+e))/2, d[0], 1e-15)
	assert.InDelta(t, ((0+e)/(1+0+e)+1)/2, d[1], 1e-15, "a batch with SRF in neither scores 1")
	assert.InDelta(t, (1+(2*4+e)/(4+6+e))/2, d[2], 1e-15)
	var none totals
	assert.True(t, math.IsNaN(none.dice()[0]))

	back, err := decodeTotals(tot.encode())
	require.NoError(t, err)
	assert.Equal(t, tot, back)

	// A checkpoint written before the per-batch Dice was kept: the counts
	// carry on, the original's figure is unknown for this epoch.
	older, err := decodeTotals(tot.encode()[:totalsLenCounts])
	require.NoError(t, err)
	assert.Equal(t, tot.counts, older.counts)
	assert.True(t, math.IsNaN(older.dice()[0]))

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
	// splitmix64's finaliser of seed ^ mix(epoch<<32 | step), computed
	// independently; changing the mix would change every run's dropout.
	assert.Equal(t, uint64(0x21cfde3cec7448be), stepSeed(7, 2, 3))
	assert.Equal(t, uint64(0x0d1825ae31e9066d), stepSeed(1234, 0, 0))
}
