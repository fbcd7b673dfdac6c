package torch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	a := FromSlice([]float32{1, 2, 3, 4}, 2, 2)
	b := a.MulScalar(2).Add(a)
	assert.Equal(t, []float32{3, 6, 9, 12}, b.Float32s())
	assert.Equal(t, []int64{2, 2}, b.Shape())
	err := Try(func() { a.Matmul(FromSlice([]float32{1, 2, 3}, 3, 1)) })
	require.Error(t, err)
	t.Log(err)
	a.Free()
	err = Try(func() { a.Sum() })
	require.ErrorContains(t, err, "freed")
}

func BenchmarkTinyAdd(b *testing.B) {
	x := FromSlice([]float32{1})
	y := FromSlice([]float32{2})
	// Scopes free their tensors in bulk, as a training step's scope does.
	for b.Loop() {
		s := NewScope()
		for range 100 {
			x.Add(y)
		}
		s.Close()
	}
}

func BenchmarkTinyAddUnscoped(b *testing.B) {
	x := FromSlice([]float32{1})
	y := FromSlice([]float32{2})
	for b.Loop() {
		z := x.Add(y)
		z.Free()
	}
}
