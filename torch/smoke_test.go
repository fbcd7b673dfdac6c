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
