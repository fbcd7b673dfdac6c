package oct

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trainingData prepares 3 training cubes of 5 slices (15 samples) and returns
// the data folder, the samples and their statistics.
func trainingData(t *testing.T) (string, []Sample, Info) {
	t.Helper()
	data := t.TempDir()
	writePatternSet(t, data, Training, 3, 5, 16, 16, true)
	_, err := Prep(data, 2, nil)
	require.NoError(t, err)
	lists := t.TempDir()
	stats, err := WriteLists(data, lists, 2, nil)
	require.NoError(t, err)
	samples, err := ReadTrainList(lists)
	require.NoError(t, err)
	return data, samples, *stats.Info
}

func collectEpoch(t *testing.T, l *TrainLoader, epoch int) []*Batch {
	t.Helper()
	var batches []*Batch
	for b, err := range l.Epoch(context.Background(), epoch) {
		require.NoError(t, err)
		batches = append(batches, b)
	}
	return batches
}

func TestTrainLoaderBatches(t *testing.T) {
	data, samples, info := trainingData(t)
	l, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 4, Workers: 3, Seed: 1234})
	require.NoError(t, err)
	assert.Equal(t, 15, l.Len())
	assert.Equal(t, 3, l.BatchesPerEpoch())
	norm, err := NewNormalizer(info)
	require.NoError(t, err)
	byPath := map[string]Sample{}
	for _, s := range samples {
		byPath[s.Image] = s
	}

	order, flips := l.Plan(0)
	batches := collectEpoch(t, l, 0)
	require.Len(t, batches, 3, "15 samples in batches of 4: the last 3 are dropped")
	seen := map[string]bool{}
	flipped := 0
	for bi, b := range batches {
		require.Equal(t, 4, b.N)
		require.Equal(t, 16, b.H)
		require.Equal(t, 16, b.W)
		require.Len(t, b.Images, 4*3*16*16)
		require.Len(t, b.Labels, 4*16*16)
		require.Len(t, b.Targets, 4*3)
		for k := range b.N {
			pos := bi*4 + k
			s := samples[order[pos]]
			require.Equal(t, s.Image, b.Paths[k], "batch %d slot %d follows the plan", bi, k)
			assert.False(t, seen[s.Image], "no slice twice in an epoch")
			seen[s.Image] = true

			// Image and label are mirrored together, as planned.
			stack, err := ReadStack(inData(data, s.Image), 16, 16)
			require.NoError(t, err)
			label, err := ReadLabel(inData(data, s.Label), 16, 16)
			require.NoError(t, err)
			want := make([]float32, 3*16*16)
			norm.Fill(want, stack, flips[pos])
			assert.Equal(t, want, b.Image(k))
			for y := range 16 {
				for x := range 16 {
					sx := x
					if flips[pos] {
						sx = 15 - x
					}
					require.Equal(t, int64(label.Class[y*16+sx]), b.Label(k)[y*16+x])
				}
			}
			tg := label.Targets()
			assert.Equal(t, tg[:], b.Target(k))
			if flips[pos] {
				flipped++
			}
		}
	}
	assert.Positive(t, flipped, "some slices flipped")
	assert.Less(t, flipped, 12, "not every slice flipped")
}

func TestTrainLoaderDeterminism(t *testing.T) {
	data, samples, info := trainingData(t)
	load := func(seed uint64, workers int, epoch int) []*Batch {
		l, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 2, Workers: workers, Seed: seed})
		require.NoError(t, err)
		return collectEpoch(t, l, epoch)
	}
	ref := load(7, 1, 0)
	require.Len(t, ref, 7)
	assert.Equal(t, ref, load(7, 1, 0), "same seed, same batches")
	assert.Equal(t, ref, load(7, 4, 0), "the number of workers changes nothing")
	assert.Equal(t, ref, load(7, 16, 0), "more workers than slices")
	assert.NotEqual(t, ref, load(8, 1, 0), "another seed, another order")
	assert.NotEqual(t, ref, load(7, 1, 1), "another epoch, another order")

	// Resuming at epoch 2 gives the third epoch of an uninterrupted run.
	l, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 2, Workers: 2, Seed: 7})
	require.NoError(t, err)
	var straight [][]*Batch
	for e := range 3 {
		straight = append(straight, collectEpoch(t, l, e))
	}
	assert.Equal(t, straight[2], load(7, 3, 2))

	// The plan is a permutation with both flipped and unflipped slices.
	order, flips := l.Plan(5)
	sorted := slices.Sorted(slices.Values(order))
	for i := range sorted {
		require.Equal(t, i, sorted[i])
	}
	assert.Contains(t, flips, true)
	assert.Contains(t, flips, false)

	noFlip, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 2, Seed: 7, NoFlip: true})
	require.NoError(t, err)
	order2, flips2 := noFlip.Plan(5)
	assert.Equal(t, order, order2)
	assert.NotContains(t, flips2, true)
}

// waitGoroutines waits until the number of goroutines is back to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left running, want ≤ %d\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTrainLoaderStopsCleanly(t *testing.T) {
	data, samples, info := trainingData(t)
	l, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 1, Workers: 4, Prefetch: 3, Seed: 1})
	require.NoError(t, err)

	t.Run("break", func(t *testing.T) {
		before := runtime.NumGoroutine()
		n := 0
		for _, err := range l.Epoch(context.Background(), 0) {
			require.NoError(t, err)
			if n++; n == 2 {
				break
			}
		}
		waitGoroutines(t, before)
	})
	t.Run("cancel", func(t *testing.T) {
		before := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		var last error
		for b, err := range l.Epoch(ctx, 0) {
			if err != nil {
				last = err
				break
			}
			require.NotNil(t, b)
			if n++; n == 3 {
				cancel()
			}
		}
		assert.ErrorIs(t, last, context.Canceled)
		assert.Less(t, n, 15)
		waitGoroutines(t, before)
	})
	t.Run("bad file", func(t *testing.T) {
		before := runtime.NumGoroutine()
		order, _ := l.Plan(0)
		bad := inData(data, samples[order[6]].Label)
		writeFile(t, bad, []byte("not a bmp"))
		var last error
		n := 0
		for _, err := range l.Epoch(context.Background(), 0) {
			if err != nil {
				last = err
				continue
			}
			n++
		}
		require.Error(t, last)
		assert.Contains(t, last.Error(), bad)
		assert.Equal(t, 6, n, "the batches before the bad one arrive")
		waitGoroutines(t, before)
	})
}

func TestTrainLoaderErrors(t *testing.T) {
	data, samples, info := trainingData(t)
	_, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 0})
	assert.ErrorContains(t, err, "batch size")
	_, err = NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 16})
	assert.ErrorContains(t, err, "15 training slices do not fill one batch of 16")
	_, err = NewTrainLoader(data, samples, Info{}, TrainOptions{BatchSize: 2})
	assert.ErrorContains(t, err, "std")

	// A slice of another size is named.
	bad := inData(data, samples[3].Image)
	require.NoError(t, WriteStack(bad, NewStack(32, 16)))
	l, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 15, Workers: 2})
	require.NoError(t, err)
	for _, err := range l.Epoch(context.Background(), 0) {
		require.Error(t, err)
		assert.Contains(t, err.Error(), bad)
		assert.Contains(t, err.Error(), "want 16×16")
	}

	// Sizes that the networks cannot take are refused up front.
	odd := t.TempDir()
	writePatternSet(t, odd, Training, 1, 2, 24, 16, true)
	_, err = Prep(odd, 1, nil)
	require.NoError(t, err)
	lists := t.TempDir()
	stats, err := WriteLists(odd, lists, 1, nil)
	require.NoError(t, err)
	oddSamples, err := ReadTrainList(lists)
	require.NoError(t, err)
	_, err = NewTrainLoader(odd, oddSamples, *stats.Info, TrainOptions{BatchSize: 1})
	assert.ErrorContains(t, err, "multiples of 16")
	assert.ErrorContains(t, err, filepath.Join(odd, filepath.FromSlash(oddSamples[0].Image)))
}

// TestTrainLoaderShards: the shards of a data-parallel job split each
// epoch's order as DistributedSampler does (15 slices over 2 ranks: 8
// positions each, the 16th wrapping to the first), and each slice keeps
// the image, label and flip it has at its position in one process's order.
func TestTrainLoaderShards(t *testing.T) {
	data, samples, info := trainingData(t)
	whole, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 1, Seed: 3})
	require.NoError(t, err)
	one := collectEpoch(t, whole, 2)
	order, _ := whole.Plan(2)
	for rank := range 2 {
		l, err := NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 2, Seed: 3, Rank: rank, World: 2})
		require.NoError(t, err)
		assert.Equal(t, 15, l.Len())
		assert.Equal(t, 4, l.BatchesPerEpoch(), "8 positions in batches of 2")
		for bi, b := range collectEpoch(t, l, 2) {
			for k := range b.N {
				pos := (rank + (bi*2+k)*2) % 15
				require.Equal(t, samples[order[pos]].Image, b.Paths[k])
				assert.Equal(t, one[pos].Image(0), b.Image(k), "rank %d, batch %d, slot %d", rank, bi, k)
				assert.Equal(t, one[pos].Label(0), b.Label(k))
			}
		}
	}
	_, err = NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 9, Seed: 3, World: 2})
	assert.ErrorContains(t, err, "15 training slices split over 2 processes (8 each) do not fill one batch of 9")
	_, err = NewTrainLoader(data, samples, info, TrainOptions{BatchSize: 1, Rank: 2, World: 2})
	assert.ErrorContains(t, err, "rank 2 is not in [0, 2)")
}
