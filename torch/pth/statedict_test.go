package pth

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStateDictKeepsOrder(t *testing.T) {
	sd := NewStateDict()
	a, b, c := &Tensor{}, &Tensor{}, &Tensor{}
	sd.Set("z", a)
	sd.Set("a", b)
	sd.Set("m", c)
	sd.Set("z", c) // replacing keeps the place
	assert.Equal(t, []string{"z", "a", "m"}, sd.Keys())
	got, ok := sd.Get("z")
	assert.True(t, ok)
	assert.Same(t, c, got)
	sd.Delete("a")
	assert.Equal(t, []string{"z", "m"}, sd.Keys())
	assert.Equal(t, 2, sd.Len())
	_, ok = sd.Get("a")
	assert.False(t, ok)
}

func TestStateDictPrefixes(t *testing.T) {
	version := func(n int64) *Dict { d := NewDict(); d.Set("version", n); return d }
	sd := NewStateDict()
	w := &Tensor{DType: Float32, Shape: []int64{2}, Data: make([]byte, 8)}
	sd.Set("conv.weight", w)
	sd.Set("bn.running_var", w)
	sd.Metadata = NewOrderedDict()
	sd.Metadata.Set("", version(1))
	sd.Metadata.Set("conv", version(1))
	sd.Metadata.Set("bn", version(2))

	assert.False(t, sd.HasPrefix(DataParallelPrefix))
	_, stripped := sd.StripPrefix(DataParallelPrefix)
	assert.False(t, stripped)

	wrapped := sd.WithPrefix(DataParallelPrefix)
	assert.Equal(t, []string{"module.conv.weight", "module.bn.running_var"}, wrapped.Keys())
	assert.Equal(t, []any{"", "module", "module.conv", "module.bn"}, wrapped.Metadata.Keys())
	bn, _ := wrapped.Metadata.Get("module.bn")
	assert.Same(t, bn, must(sd.Metadata.Get("bn")))
	assert.True(t, wrapped.HasPrefix(DataParallelPrefix))
	assert.Equal(t, int64(4), wrapped.NumElements())

	plain, ok := wrapped.StripPrefix(DataParallelPrefix)
	require.True(t, ok)
	assert.Equal(t, sd.Keys(), plain.Keys())
	assert.Equal(t, sd.Metadata.Keys(), plain.Metadata.Keys())
	assert.False(t, NewStateDict().HasPrefix(""))
}

func must(v any, ok bool) any {
	if !ok {
		panic("missing")
	}
	return v
}

func TestDict(t *testing.T) {
	d := NewDict()
	d.Set("b", 1.0)
	d.Set(3, "int key") // int keys are stored as int64
	d.Set("b", 2.0)
	assert.Equal(t, []any{"b", int64(3)}, d.Keys())
	v, ok := d.Get(int64(3))
	assert.True(t, ok)
	assert.Equal(t, "int key", v)
	v, _ = d.Get("b")
	assert.Equal(t, 2.0, v)
	d.Delete("b")
	assert.Equal(t, 1, d.Len())
	assert.Panics(t, func() { d.Set(1.5, nil) })
	var none *Dict
	assert.Equal(t, 0, none.Len())
	_, ok = none.Get("x")
	assert.False(t, ok)
}

func TestDTypes(t *testing.T) {
	for d := Float32; d <= Bool; d++ {
		parsed, err := ParseDType("torch." + d.String())
		require.NoError(t, err)
		assert.Equal(t, d, parsed)
		assert.Positive(t, d.ElemSize())
	}
	for name, want := range map[string]DType{"float": Float32, "half": Float16, "long": Int64, "double": Float64} {
		got, err := ParseDType(name)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseDType("complex64")
	assert.Error(t, err)
	assert.Equal(t, 2, BFloat16.ElemSize())
}

var posInf = math.Inf(1)

func TestTensorConversions(t *testing.T) {
	for _, c := range []struct {
		tensor *Tensor
		want   []float64
	}{
		{&Tensor{DType: Float16, Shape: []int64{4}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c}}, []float64{1, -2, 5.960464477539063e-08, posInf}},
		{&Tensor{DType: BFloat16, Shape: []int64{2}, Data: []byte{0x80, 0x3f, 0x40, 0xc0}}, []float64{1, -3}},
		{&Tensor{DType: Int8, Shape: []int64{2}, Data: []byte{0xff, 0x7f}}, []float64{-1, 127}},
		{&Tensor{DType: Bool, Shape: []int64{2}, Data: []byte{0, 1}}, []float64{0, 1}},
	} {
		got, err := c.tensor.Float64s()
		require.NoError(t, err)
		assert.Equal(t, c.want, got, c.tensor.DType.String())
	}
	bad := &Tensor{DType: Float32, Shape: []int64{2}, Data: []byte{1}}
	assert.Error(t, bad.Validate())
	_, err := bad.Float32s()
	assert.Error(t, err)
	assert.Error(t, (&Tensor{DType: Float32, Shape: []int64{-1}}).Validate())
	assert.Error(t, (&Tensor{DType: Float32, Shape: []int64{0, 1 << 40, 1 << 40}}).Validate())
	assert.NoError(t, (&Tensor{DType: Float32, Shape: []int64{0, 1 << 20}}).Validate())
}
