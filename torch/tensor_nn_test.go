package torch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetDataKeepsIdentity(t *testing.T) {
	p := Ones([]int64{2, 2}, Float32CPU).SetRequiresGrad(true)
	defer p.Free()
	view := p.Detach() // another handle on the same tensor's data
	defer view.Free()
	p.SetData(FromSlice([]float64{1, 2, 3}))
	assert.Equal(t, Float64, p.DType())
	assert.Equal(t, []int64{3}, p.Shape())
	assert.True(t, p.RequiresGrad())
	assert.Equal(t, []float64{1, 2, 3}, p.Float64s())
	assert.Equal(t, []float32{1, 1, 1, 1}, view.Float32s(), "earlier views keep the old data")

	err := Try(func() { p.SetData(nil) })
	assert.Error(t, err)
}

func TestUnscopeOutlivesTheScope(t *testing.T) {
	var kept, dropped *Tensor
	Scoped(func(*Scope) {
		kept = Ones([]int64{2}, Float32CPU).Unscope()
		dropped = Ones([]int64{2}, Float32CPU)
	})
	assert.True(t, dropped.IsFreed())
	require.False(t, kept.IsFreed())
	assert.Equal(t, []float32{1, 1}, kept.Float32s())
	kept.Free()
	assert.Error(t, Try(func() { kept.Unscope() }))
}

func TestCopyInto(t *testing.T) {
	x := FromSlice([]int64{1, 2, 3, 4, 5, 6}, 2, 3).Transpose(0, 1)
	dst := make([]int64, 6)
	CopyInto(dst, x)
	assert.Equal(t, []int64{1, 4, 2, 5, 3, 6}, dst)
	assert.ErrorContains(t, Try(func() { CopyInto(make([]int64, 5), x) }), "destination holds 5 elements, the tensor 6")
	assert.ErrorContains(t, Try(func() { CopyInto(make([]float32, 6), x) }), "tensor has dtype int64, not float32")
}

func TestAddIntInPlace(t *testing.T) {
	n := Scalar[int64](7)
	n.AddIntInPlace(1)
	assert.Equal(t, []int64{8}, n.Int64s())
	f := FromSlice([]float32{0.5})
	f.AddIntInPlace(2)
	assert.Equal(t, []float32{2.5}, f.Float32s())
}
