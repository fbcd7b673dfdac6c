package oct

import (
	"context"
	"iter"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadCubeWithLabels(t *testing.T) {
	data, _, val, _ := preparedData(t)
	lists := t.TempDir()
	stats, err := WriteLists(data, lists, 2, nil)
	require.NoError(t, err)
	entries, err := ReadValList(lists)
	require.NoError(t, err)

	c, err := LoadCube(data, entries[1], 3)
	require.NoError(t, err)
	assert.Equal(t, val[1], c.Name)
	assert.Equal(t, 4, c.Slices())
	assert.True(t, c.Labelled())
	require.Len(t, c.Labels, 4*16*16)
	require.Len(t, c.Targets, 4*3)

	label := patternLabel(1) // val[1] was written with the pattern of cube 1
	scan := patternScan(1)
	for k := range 4 {
		assert.Equal(t, entries[1].Images+"/"+StackFile(k), c.Paths[k])
		var classes []uint8
		for y := range 16 {
			for x := range 16 {
				want := ClassOfLabel(label(k, x, y))
				require.Equal(t, want, c.Labels[(k*16+y)*16+x], "slice %d (%d,%d)", k, x, y)
				require.Equal(t, scan(k, x, y), c.Stacks[k].Grey().Pix[y*16+x])
				classes = append(classes, want)
			}
		}
		p := Presence(classes)
		assert.Equal(t, p[:], c.Targets[3*k:3*k+3], "targets of slice %d", k)
	}

	norm, err := NewNormalizer(*stats.Info)
	require.NoError(t, err)
	var sizes []int
	next := 0
	for b := range c.Batches(norm, 3) {
		sizes = append(sizes, b.N)
		for i := range b.N {
			want := make([]float32, 3*16*16)
			norm.Fill(want, c.Stacks[next], false)
			assert.Equal(t, want, b.Image(i))
			assert.Equal(t, c.Paths[next], b.Paths[i])
			for p, v := range b.Label(i) {
				require.Equal(t, int64(c.Labels[next*256+p]), v)
			}
			assert.Equal(t, c.Targets[3*next:3*next+3], b.Target(i))
			next++
		}
	}
	assert.Equal(t, []int{3, 1}, sizes, "4 slices in batches of 3: the last batch holds the rest")
}

func TestCubeLoaderTestSet(t *testing.T) {
	data, _, _, test := preparedData(t)
	lists := t.TempDir()
	stats, err := WriteLists(data, lists, 2, nil)
	require.NoError(t, err)
	entries, err := ReadTestList(lists)
	require.NoError(t, err)
	norm, err := NewNormalizer(*stats.TestInfo)
	require.NoError(t, err)

	l := NewCubeLoader(data, entries, 2)
	assert.Equal(t, 2, l.Len())
	var names []string
	for c, err := range l.Cubes(context.Background()) {
		require.NoError(t, err)
		names = append(names, c.Name)
		assert.False(t, c.Labelled())
		assert.Nil(t, c.Targets)
		for b := range c.Batches(norm, 8) {
			assert.Equal(t, 3, b.N)
			assert.Nil(t, b.Labels)
			assert.Nil(t, b.Targets)
		}
	}
	assert.Equal(t, test, names)
}

func TestCubeLoaderErrors(t *testing.T) {
	data, _, val, _ := preparedData(t)
	lists := t.TempDir()
	_, err := WriteLists(data, lists, 2, nil)
	require.NoError(t, err)
	entries, err := ReadValList(lists)
	require.NoError(t, err)

	missing := inData(data, Validation.LabelDir(val[1])+"/3.bmp")
	require.NoError(t, os.Remove(missing))
	before := runtime.NumGoroutine()
	var got []string
	var last error
	for c, err := range NewCubeLoader(data, entries, 2).Cubes(context.Background()) {
		if err != nil {
			last = err
			continue
		}
		got = append(got, c.Name)
	}
	assert.Equal(t, val[:1], got)
	require.Error(t, last)
	assert.Contains(t, last.Error(), missing)

	wrong := inData(data, Validation.StackDir(val[0])+"/002.png")
	require.NoError(t, WriteStack(wrong, NewStack(16, 32)))
	_, err = LoadCube(data, entries[0], 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), wrong)

	// A cube missing a slice is refused, naming it.
	gone := inData(data, Validation.StackDir(val[1])+"/001.png")
	require.NoError(t, os.Remove(gone))
	_, err = LoadCube(data, entries[1], 1)
	require.ErrorContains(t, err, ": slice 001.png is missing (the files run from 0 to ")

	// Breaking out of the loop leaves nothing running.
	for _, err := range NewCubeLoader(data, entries[1:], 2).Cubes(context.Background()) {
		_ = err
		break
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range NewCubeLoader(data, entries, 2).Cubes(ctx) {
		assert.ErrorIs(t, err, context.Canceled)
	}
	waitGoroutines(t, before)
}

// Batch returns slices [start, end) of the cube as network input: the
// test's oracle of what the loaders give, with
// labels and targets when the cube has them.
func (c *Cube) Batch(norm *Normalizer, start, end int) *Batch {
	b := newBatch(end-start, c.H, c.W, c.Labelled())
	area := c.W * c.H
	for i := start; i < end; i++ {
		k := i - start
		norm.Fill(b.Image(k), c.Stacks[i], false)
		b.Paths[k] = c.Paths[i]
		if c.Labelled() {
			dst := b.Label(k)
			for p, v := range c.Labels[i*area : (i+1)*area] {
				dst[p] = int64(v)
			}
			copy(b.Target(k), c.Targets[i*NumLesions:(i+1)*NumLesions])
		}
	}
	return b
}

// Batches yields the cube's slices in order, size at a time; the last batch
// holds the rest.
func (c *Cube) Batches(norm *Normalizer, size int) iter.Seq[*Batch] {
	return func(yield func(*Batch) bool) {
		for start := 0; start < c.Slices(); start += size {
			if !yield(c.Batch(norm, start, min(start+size, c.Slices()))) {
				return
			}
		}
	}
}
