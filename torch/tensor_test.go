package torch

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromSliceAndDataRoundTrip(t *testing.T) {
	check := func(t *testing.T, x *Tensor, dtype DType, shape []int64) {
		t.Helper()
		assert.Equal(t, dtype, x.DType())
		assert.Equal(t, shape, x.Shape())
		assert.Equal(t, CPU, x.Device())
		assert.True(t, x.IsContiguous())
	}
	t.Run("float32", func(t *testing.T) {
		x := FromSlice([]float32{1.5, -2, 3.25, 0, float32(math.Inf(1)), 7}, 2, 3)
		check(t, x, Float32, []int64{2, 3})
		assert.Equal(t, []float32{1.5, -2, 3.25, 0, float32(math.Inf(1)), 7}, x.Float32s())
	})
	t.Run("float64", func(t *testing.T) {
		x := FromSlice([]float64{math.Pi, -1e300, 5e-324})
		check(t, x, Float64, []int64{3})
		assert.Equal(t, []float64{math.Pi, -1e300, 5e-324}, x.Float64s())
	})
	t.Run("int64", func(t *testing.T) {
		x := FromSlice([]int64{math.MinInt64, -1, 0, math.MaxInt64}, 4, 1)
		check(t, x, Int64, []int64{4, 1})
		assert.Equal(t, []int64{math.MinInt64, -1, 0, math.MaxInt64}, x.Int64s())
	})
	t.Run("int32", func(t *testing.T) {
		x := FromSlice([]int32{math.MinInt32, 7, math.MaxInt32}, 1, 3)
		check(t, x, Int32, []int64{1, 3})
		assert.Equal(t, []int32{math.MinInt32, 7, math.MaxInt32}, Data[int32](x))
	})
	t.Run("uint8", func(t *testing.T) {
		x := FromSlice([]uint8{0, 128, 255})
		check(t, x, Uint8, []int64{3})
		assert.Equal(t, []uint8{0, 128, 255}, Data[uint8](x))
	})
	t.Run("bool", func(t *testing.T) {
		x := FromSlice([]bool{true, false, true, true}, 2, 2)
		check(t, x, Bool, []int64{2, 2})
		assert.Equal(t, []bool{true, false, true, true}, Data[bool](x))
	})
	t.Run("float16 and bfloat16 from bytes", func(t *testing.T) {
		// 1.0, -2.0, 0.5 in IEEE half precision and in bfloat16.
		half := []uint16{0x3c00, 0xc000, 0x3800}
		bf := []uint16{0x3f80, 0xc000, 0x3f00}
		for _, c := range []struct {
			dtype DType
			bits  []uint16
		}{{Float16, half}, {BFloat16, bf}} {
			raw := make([]byte, 2*len(c.bits))
			for i, b := range c.bits {
				binary.LittleEndian.PutUint16(raw[2*i:], b)
			}
			x := FromBytes(raw, c.dtype, 3)
			check(t, x, c.dtype, []int64{3})
			assert.Equal(t, raw, x.Bytes(), "%s", c.dtype)
			assert.Equal(t, []float32{1, -2, 0.5}, x.To(Float32).Float32s(), "%s", c.dtype)
			assert.Equal(t, raw, FromSlice([]float32{1, -2, 0.5}).To(c.dtype).Bytes(), "%s", c.dtype)
		}
	})
	t.Run("empty and scalar", func(t *testing.T) {
		e := FromSlice([]float32{}, 0, 3)
		check(t, e, Float32, []int64{0, 3})
		assert.Empty(t, e.Float32s())
		s := Scalar(int64(42))
		check(t, s, Int64, []int64{})
		assert.Equal(t, 0, s.Dim())
		assert.Equal(t, int64(1), s.Numel())
		assert.Equal(t, 42.0, s.Item())
	})
	t.Run("copy is independent", func(t *testing.T) {
		data := []float32{1, 2}
		x := FromSlice(data)
		data[0] = 9
		assert.Equal(t, []float32{1, 2}, x.Float32s())
	})
}

func TestCreation(t *testing.T) {
	assert.Equal(t, []float32{0, 0, 0, 0}, Zeros([]int64{2, 2}, Float32CPU).Float32s())
	assert.Equal(t, []int64{1, 1, 1}, Ones([]int64{3}, Options{DType: Int64}).Int64s())
	assert.Equal(t, []float64{2.5, 2.5}, Full([]int64{2}, 2.5, Options{DType: Float64}).Float64s())
	assert.Equal(t, []int64{2, 3, 4}, Empty([]int64{2, 3, 4}, Float32CPU).Shape())
	assert.Equal(t, []float32{0, 0.5, 1, 1.5}, Arange(0, 2, 0.5, Float32CPU).Float32s())
	r := Rand([]int64{1000}, Float32CPU).Float32s()
	for _, v := range r {
		require.True(t, v >= 0 && v < 1, "rand gave %v", v)
	}
	n := Randn([]int64{10000}, Options{DType: Float64})
	assert.InDelta(t, 0, n.Mean().Item(), 0.05)
	assert.InDelta(t, 1, n.Mul(n).Mean().Item(), 0.05)
}

func TestProperties(t *testing.T) {
	x := Arange(0, 24, 1, Float32CPU).Reshape(2, 3, 4)
	assert.Equal(t, 3, x.Dim())
	assert.Equal(t, int64(24), x.Numel())
	assert.Equal(t, int64(4), x.Size(-1))
	assert.Equal(t, int64(2), x.Size(0))
	assert.False(t, x.Transpose(0, 2).IsContiguous())
	assert.True(t, x.Transpose(0, 2).Contiguous().IsContiguous())
	err := Try(func() { x.Size(3) })
	assert.ErrorContains(t, err, "dimension 3 out of range for a 3-d tensor")

	// Shapes longer than Shape's stack buffer.
	long := []int64{1, 2, 1, 3, 1, 1, 2, 1, 1, 2}
	assert.Equal(t, long, Zeros(long, Float32CPU).Shape())

	s := FromSlice([]float32{1.5, 2}).String()
	assert.Contains(t, s, "1.5000")
	assert.Contains(t, s, "CPUFloatType{2}")

	assert.Equal(t, 3.0, FromSlice([]bool{true}).To(Int32).AddScalar(2).Item())
	assert.Equal(t, 1.0, FromSlice([]bool{true}).Item())
}

func TestDTypesAndDevices(t *testing.T) {
	for _, d := range []DType{Uint8, Int8, Int16, Int32, Int64, Float16, Float32, Float64, Bool, BFloat16} {
		p, err := ParseDType("torch." + d.String())
		require.NoError(t, err)
		assert.Equal(t, d, p)
		assert.Equal(t, d, Zeros([]int64{1}, Options{DType: d}).DType(), "%s", d)
		assert.Equal(t, d.Size(), len(Zeros([]int64{1}, Options{DType: d}).Bytes()), "%s", d)
	}
	assert.Equal(t, Float32, Zeros([]int64{1}, Options{Device: CPU}).DType(), "the zero DType is float32")
	_, err := ParseDType("float8")
	assert.ErrorContains(t, err, `unknown dtype "float8"`)
	assert.True(t, BFloat16.IsFloatingPoint())
	assert.False(t, Int64.IsFloatingPoint())
	assert.Equal(t, "dtype(99)", DType(99).String())
	assert.ErrorContains(t, Try(func() { Zeros([]int64{1}, Options{DType: 99}) }), "unsupported dtype dtype(99)")

	for s, want := range map[string]Device{"cpu": CPU, "cuda": CUDA(0), "cuda:3": CUDA(3)} {
		d, err := ParseDevice(s)
		require.NoError(t, err)
		assert.Equal(t, want, d)
	}
	assert.Equal(t, "cuda:1", CUDA(1).String())
	for _, bad := range []string{"gpu", "cuda:", "cuda:-1", "cuda:x"} {
		_, err := ParseDevice(bad)
		assert.Error(t, err, bad)
	}
	assert.NoError(t, CheckDevice(CPU))
	if !CUDAIsAvailable() {
		assert.ErrorContains(t, CheckDevice(CUDA(0)), "CUDA is not available")
	}
	assert.ErrorContains(t, CheckDevice(CUDA(1000)), "cuda:1000")
	assert.NotEmpty(t, Version())
}

func TestConversions(t *testing.T) {
	x := FromSlice([]float32{1.7, -2.2, 300})
	assert.Equal(t, []int64{1, -2, 300}, x.To(Int64).Int64s())
	assert.Equal(t, []uint8{1, 254, 44}, Data[uint8](x.To(Int64).To(Uint8)))
	assert.Equal(t, []bool{true, true, true}, Data[bool](x.To(Bool)))
	same := x.ToOptions(Options{DType: Float32, Device: CPU})
	same.MulScalarInPlace(2)
	assert.Equal(t, []float32{3.4, -4.4, 600}, x.Float32s(), "to() with nothing to change shares memory")

	c := x.Clone()
	c.AddScalarInPlace(1)
	assert.Equal(t, []float32{3.4, -4.4, 600}, x.Float32s(), "clone owns its memory")

	y := Zeros([]int64{2, 3}, Float32CPU)
	y.CopyFrom(FromSlice([]int64{1, 2, 3}))
	assert.Equal(t, []float32{1, 2, 3, 1, 2, 3}, y.Float32s())

	dst := make([]float32, 3)
	CopyInto(dst, x)
	assert.Equal(t, x.Float32s(), dst)
}

// Whole-number scalars keep integer tensors integer, as Python's int
// literals do; fractional ones promote to float.
func TestScalarsOnIntegerTensors(t *testing.T) {
	x := FromSlice([]int64{1, 2, 3})
	assert.Equal(t, Int64, x.AddScalar(2).DType())
	assert.Equal(t, []int64{2, 4, 6}, x.MulScalar(2).Int64s())
	assert.Equal(t, Float32, x.AddScalar(0.5).DType())
	assert.Equal(t, []int64{1, 4, 9}, x.Pow(2).Int64s())
	assert.Equal(t, []int64{2, 2, 3}, x.Clamp(2, 5).Int64s())
	x.AddScalarInPlace(10)
	x.MulScalarInPlace(-1)
	assert.Equal(t, []int64{-11, -12, -13}, x.Int64s())
	assert.Equal(t, []float32{-0.5, 1.5}, FromSlice([]float32{0, 2}).AddScalar(-0.5).Float32s())
}

func TestErrors(t *testing.T) {
	t.Run("libtorch's message", func(t *testing.T) {
		a := Ones([]int64{2, 3}, Float32CPU)
		err := Try(func() { a.Matmul(Ones([]int64{4, 5}, Float32CPU)) })
		var te *Error
		require.True(t, errors.As(err, &te))
		assert.Equal(t, "matmul", te.Op)
		assert.Equal(t, "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", te.Msg)
		assert.Equal(t, "torch: matmul: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", err.Error())
		assert.NotContains(t, te.Msg, "Exception raised from", "no C++ backtrace")
	})
	t.Run("use after free", func(t *testing.T) {
		a := Ones([]int64{2}, Float32CPU)
		a.Free()
		a.Free() // harmless
		assert.True(t, a.IsFreed())
		for name, f := range map[string]func(){
			"op":       func() { a.Exp() },
			"argument": func() { Ones([]int64{2}, Float32CPU).Add(a) },
			"data":     func() { a.Float32s() },
			"shape":    func() { a.Shape() },
			"backward": func() { a.Backward() },
			"in place": func() { a.AddScalarInPlace(1) },
			"list":     func() { Cat([]*Tensor{Ones([]int64{1}, Float32CPU), a}, 0) },
		} {
			err := Try(f)
			assert.ErrorContains(t, err, "use of freed tensor", name)
		}
		assert.Equal(t, "Tensor(freed)", a.String())
	})
	t.Run("nil tensor", func(t *testing.T) {
		var a *Tensor
		assert.ErrorContains(t, Try(func() { a.Sum() }), "torch: sum: nil tensor")
		assert.ErrorContains(t, Try(func() { Ones([]int64{1}, Float32CPU).Mul(nil) }), "torch: mul: nil tensor")
		assert.ErrorContains(t, Try(func() { Cat(nil, 0) }), "torch: cat: no tensors given")
	})
	t.Run("bad data", func(t *testing.T) {
		assert.ErrorContains(t, Try(func() { FromSlice([]float32{1, 2, 3}, 2, 2) }), "data holds 12 bytes, shape needs 16")
		assert.ErrorContains(t, Try(func() { FromSlice([]float32{1}, -1) }), "from_slice")
		assert.ErrorContains(t, Try(func() { Data[int64](Ones([]int64{1}, Float32CPU)) }), "tensor has dtype float32, not int64")
		assert.ErrorContains(t, Try(func() { CopyInto(make([]float32, 3), Ones([]int64{2}, Float32CPU)) }), "destination holds 3")
		assert.ErrorContains(t, Try(func() { Ones([]int64{2}, Float32CPU).Item() }), "a Tensor with 2 elements cannot be converted to Scalar")
	})
	t.Run("nothing aborts", func(t *testing.T) {
		for name, f := range map[string]func(){
			"huge allocation":    func() { Empty([]int64{1 << 40, 1 << 20}, Float32CPU) },
			"negative dimension": func() { Zeros([]int64{-2}, Float32CPU) },
			"reshape":            func() { Ones([]int64{6}, Float32CPU).Reshape(4, -1) },
			"cuda without cuda":  func() { Ones([]int64{1}, Options{DType: Float32, Device: CUDA(1000)}) },
			"to cuda":            func() { Ones([]int64{1}, Float32CPU).ToDevice(CUDA(1000)) },
			"backward non-scalar": func() {
				Ones([]int64{3}, Float32CPU).SetRequiresGrad(true).MulScalar(2).Backward()
			},
			"set num threads": func() { SetNumThreads(0) },
			"bad synchronize": func() { CUDASynchronize(1000) },
			"conv2d rank": func() {
				Conv2d(Ones([]int64{3, 3}, Float32CPU), Ones([]int64{1, 1, 1, 1}, Float32CPU), nil, Conv2dOptions{})
			},
			"max_pool2d": func() {
				MaxPool2d(Ones([]int64{1, 1, 2, 2}, Float32CPU), [2]int64{3, 3}, [2]int64{}, [2]int64{}, false)
			},
			"softmax dim": func() { Softmax(Ones([]int64{2, 2}, Float32CPU), 5) },
		} {
			var te *Error
			err := Try(f)
			require.True(t, errors.As(err, &te), "%s: got %v", name, err)
			assert.NotEmpty(t, te.Msg, name)
		}
	})
	t.Run("Recover and Try", func(t *testing.T) {
		assert.NoError(t, Try(func() {}))
		forward := func() (out *Tensor, err error) {
			defer Recover(&err)
			return Ones([]int64{2}, Float32CPU).Add(Ones([]int64{3}, Float32CPU)), nil
		}
		out, err := forward()
		assert.Nil(t, out)
		assert.ErrorContains(t, err, "torch: add: The size of tensor a (2) must match the size of tensor b (3)")
		// Panics that are not *Error keep unwinding.
		assert.PanicsWithValue(t, "not a tensor error", func() { _ = Try(func() { panic("not a tensor error") }) })
		assert.Panics(t, func() {
			_ = Try(func() {
				var s []int
				_ = s[1]
			})
		})
	})
}

func TestDropoutStatistics(t *testing.T) {
	ManualSeed(3)
	const n, p = 200000, 0.3
	x := Full([]int64{n}, 2, Float32CPU)
	y := Dropout(x, p, true).Float32s()
	zeros, kept := 0, float32(2/(1-p))
	for _, v := range y {
		switch v {
		case 0:
			zeros++
		case kept:
		default:
			t.Fatalf("dropout gave %v, want 0 or %v", v, kept)
		}
	}
	// The fraction dropped is p within 5 standard deviations.
	assert.InDelta(t, p, float64(zeros)/n, 5*math.Sqrt(p*(1-p)/n))
	assert.Equal(t, x.Float32s(), Dropout(x, p, false).Float32s())
	assert.Equal(t, make([]float32, n), Dropout(x, 1, true).Float32s())

	// The same seed gives the same mask.
	ManualSeed(3)
	assert.Equal(t, y, Dropout(x, p, true).Float32s())
}

func TestAutograd(t *testing.T) {
	w := FromSlice([]float32{1, 2, 3}).SetRequiresGrad(true)
	assert.True(t, w.RequiresGrad())
	assert.Nil(t, w.Grad())
	loss := w.Mul(w).Sum()
	loss.Backward()
	assert.Equal(t, []float32{2, 4, 6}, w.Grad().Float32s())
	w.Mul(w).Sum().Backward() // gradients accumulate
	assert.Equal(t, []float32{4, 8, 12}, w.Grad().Float32s())
	w.ZeroGrad()
	assert.Nil(t, w.Grad())

	y := w.MulScalar(3)
	y.BackwardWith(FromSlice([]float32{1, 0, -1}), true)
	y.BackwardWith(FromSlice([]float32{1, 1, 1}), false)
	assert.Equal(t, []float32{6, 3, 0}, w.Grad().Float32s())

	assert.False(t, w.Detach().RequiresGrad())
	w.SetRequiresGrad(false)
	assert.False(t, w.MulScalar(2).RequiresGrad())
}

func TestInitFormulas(t *testing.T) {
	fanIn, fanOut := Fans([]int64{16, 8, 3, 3})
	assert.Equal(t, int64(72), fanIn)
	assert.Equal(t, int64(144), fanOut)
	assert.ErrorContains(t, Try(func() { Fans([]int64{5}) }), "at least 2 dimensions")
	assert.InDelta(t, math.Sqrt(2), Gain("relu", 0), 1e-15)
	assert.InDelta(t, math.Sqrt(2/1.04), Gain("leaky_relu", 0.2), 1e-15)
	assert.ErrorContains(t, Try(func() { Gain("swish", 0) }), `unsupported nonlinearity "swish"`)

	// Initialisation applies to leaves that require grad and records nothing.
	w := Empty([]int64{64, 32, 3, 3}, Float32CPU).SetRequiresGrad(true)
	w.KaimingNormalInPlace(0, FanIn, "relu")
	std := math.Sqrt(w.Mul(w).Mean().Item())
	assert.InDelta(t, math.Sqrt(2.0/(32*9)), std, 0.01*math.Sqrt(2.0/(32*9))*5)
	w.KaimingUniformInPlace(0, FanOut, "relu")
	bound := math.Sqrt(3) * math.Sqrt(2.0/(64*9))
	assert.LessOrEqual(t, w.Abs().Max().Item(), bound)
	assert.Greater(t, w.Abs().Max().Item(), 0.99*bound)
	assert.True(t, w.RequiresGrad())
	assert.Nil(t, w.Grad())
	assert.Equal(t, 0.0, w.ZeroInPlace().Abs().Sum().Item())
	assert.Equal(t, 1.5, w.FillInPlace(1.5).Mean().Item())
	assert.True(t, strings.HasPrefix(Try(func() { w.AddScalarInPlace(1) }).Error(), "torch: add_: a leaf Variable that requires grad"))
}

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

// A whole-number scalar keeps an integer tensor integer, as batch
// normalisation's batch counter needs.
func TestAddScalarInPlaceOnIntegers(t *testing.T) {
	n := Scalar[int64](7)
	n.AddScalarInPlace(1)
	assert.Equal(t, Int64, n.DType())
	assert.Equal(t, []int64{8}, n.Int64s())
	f := FromSlice([]float32{0.5})
	f.AddScalarInPlace(2)
	assert.Equal(t, []float32{2.5}, f.Float32s())
}
