package pth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Tensor is a dense tensor as it is stored in a checkpoint: element type,
// shape and the elements in row-major order.
//
// Views, strides and shared storages of the file are resolved on loading:
// every Tensor owns a contiguous copy of its elements.
type Tensor struct {
	DType DType
	Shape []int64
	// Data holds the elements, contiguous, row-major and little-endian;
	// its length is Numel()*DType.ElemSize().
	Data []byte
}

// Numel returns the number of elements, 1 for a scalar (zero-dimensional)
// tensor. It is -1 when a dimension is negative or the product overflows.
func (t *Tensor) Numel() int64 {
	n, err := numel(t.Shape)
	if err != nil {
		return -1
	}
	return n
}

// Validate checks that the shape is well formed and Data has exactly the
// bytes the shape and type call for.
func (t *Tensor) Validate() error {
	if !t.DType.valid() {
		return fmt.Errorf("invalid dtype %d", int(t.DType))
	}
	n, err := checkShape(t.Shape)
	if err != nil {
		return err
	}
	want, ok := mulInt64(n, int64(t.DType.ElemSize()))
	if !ok || int64(len(t.Data)) != want {
		return fmt.Errorf("%s tensor of shape %v needs %d bytes of data, has %d", t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// Equal reports whether t and u have the same type, shape and bytes.
func (t *Tensor) Equal(u *Tensor) bool {
	if t.DType != u.DType || len(t.Shape) != len(u.Shape) {
		return false
	}
	for i := range t.Shape {
		if t.Shape[i] != u.Shape[i] {
			return false
		}
	}
	return bytes.Equal(t.Data, u.Data)
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{
		DType: t.DType,
		Shape: append([]int64(nil), t.Shape...),
		Data:  append([]byte(nil), t.Data...),
	}
}

// FromFloat32 returns a float32 tensor of the given shape holding values.
func FromFloat32(shape []int64, values []float32) (*Tensor, error) {
	data := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	t := &Tensor{DType: Float32, Shape: append([]int64(nil), shape...), Data: data}
	return t, t.Validate()
}

// FromInt64 returns an int64 tensor of the given shape holding values.
func FromInt64(shape []int64, values []int64) (*Tensor, error) {
	data := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(v))
	}
	t := &Tensor{DType: Int64, Shape: append([]int64(nil), shape...), Data: data}
	return t, t.Validate()
}

// Float32s returns the elements of a float32 tensor.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.DType != Float32 {
		return nil, fmt.Errorf("tensor is %s, not float32", t.DType)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := make([]float32, len(t.Data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// Int64s returns the elements of an int64 tensor.
func (t *Tensor) Int64s() ([]int64, error) {
	if t.DType != Int64 {
		return nil, fmt.Errorf("tensor is %s, not int64", t.DType)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := make([]int64, len(t.Data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

// Float64s returns the elements of a tensor of any type converted to
// float64, which holds every value of every supported type exactly.
func (t *Tensor) Float64s() ([]float64, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	size := t.DType.ElemSize()
	out := make([]float64, len(t.Data)/size)
	le := binary.LittleEndian
	for i := range out {
		b := t.Data[i*size:]
		switch t.DType {
		case Float32:
			out[i] = float64(math.Float32frombits(le.Uint32(b)))
		case Float64:
			out[i] = math.Float64frombits(le.Uint64(b))
		case Float16:
			out[i] = float16ToFloat64(le.Uint16(b))
		case BFloat16:
			out[i] = bfloat16ToFloat64(le.Uint16(b))
		case Int64:
			out[i] = float64(int64(le.Uint64(b)))
		case Int32:
			out[i] = float64(int32(le.Uint32(b)))
		case Int16:
			out[i] = float64(int16(le.Uint16(b)))
		case Int8:
			out[i] = float64(int8(b[0]))
		case Uint8:
			out[i] = float64(b[0])
		case Bool:
			if b[0] != 0 {
				out[i] = 1
			}
		}
	}
	return out, nil
}

var errNegativeDim = errors.New("negative dimension in shape")

// numel multiplies out a shape, refusing negative sizes and overflow.
func numel(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w %v", errNegativeDim, shape)
		}
		var ok bool
		if n, ok = mulInt64(n, d); !ok {
			return 0, fmt.Errorf("shape %v has more elements than an int64 counts", shape)
		}
	}
	return n, nil
}

// checkShape returns the number of elements of a shape after checking
// that no size is negative and that neither the number of elements nor the
// strides of a contiguous tensor (sizes multiplied with zeros counted as
// ones) overflow an int64.
func checkShape(shape []int64) (int64, error) {
	n, err := numel(shape)
	if err != nil {
		return 0, err
	}
	span := int64(1)
	for _, d := range shape {
		var ok bool
		if span, ok = mulInt64(span, max(d, 1)); !ok {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
	}
	return n, nil
}

// mulInt64 multiplies non-negative a and b, reporting overflow.
func mulInt64(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// addInt64 adds non-negative a and b, reporting overflow.
func addInt64(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

// contiguousStrides returns the row-major strides PyTorch gives a new
// tensor of the shape (a dimension of size 0 counts as 1).
func contiguousStrides(shape []int64) []int64 {
	strides := make([]int64, len(shape))
	s := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= max(shape[i], 1)
	}
	return strides
}
