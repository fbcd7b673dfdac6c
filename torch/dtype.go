package torch

import "fmt"

// DType is a tensor element type. Its values are libtorch's ScalarType codes.
type DType int

const (
	Uint8    DType = 0
	Int8     DType = 1
	Int16    DType = 2
	Int32    DType = 3
	Int64    DType = 4
	Float16  DType = 5
	Float32  DType = 6
	Float64  DType = 7
	Bool     DType = 11
	BFloat16 DType = 15
)

var dtypeNames = map[DType]string{
	Uint8: "uint8", Int8: "int8", Int16: "int16", Int32: "int32", Int64: "int64",
	Float16: "float16", Float32: "float32", Float64: "float64", Bool: "bool", BFloat16: "bfloat16",
}

var dtypeSizes = map[DType]int{
	Uint8: 1, Int8: 1, Int16: 2, Int32: 4, Int64: 8,
	Float16: 2, Float32: 4, Float64: 8, Bool: 1, BFloat16: 2,
}

// String returns PyTorch's name of the dtype without the "torch." prefix.
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// valid reports whether d is one of the dtypes this package supports.
func (d DType) valid() bool {
	_, ok := dtypeNames[d]
	return ok
}

// Size is the number of bytes of one element.
func (d DType) Size() int { return dtypeSizes[d] }

// IsFloatingPoint reports whether d is one of the floating-point dtypes.
func (d DType) IsFloatingPoint() bool {
	return d == Float16 || d == Float32 || d == Float64 || d == BFloat16
}

// ParseDType reads a dtype name such as "float32" (or "torch.float32").
func ParseDType(s string) (DType, error) {
	if len(s) > 6 && s[:6] == "torch." {
		s = s[6:]
	}
	for d, name := range dtypeNames {
		if name == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q", s)
}

// Element is the set of Go types that map one-to-one onto a dtype.
type Element interface {
	uint8 | int8 | int16 | int32 | int64 | float32 | float64 | bool
}

// DTypeOf returns the dtype whose elements have the Go type T.
func DTypeOf[T Element]() DType {
	var zero T
	switch any(zero).(type) {
	case uint8:
		return Uint8
	case int8:
		return Int8
	case int16:
		return Int16
	case int32:
		return Int32
	case int64:
		return Int64
	case float32:
		return Float32
	case float64:
		return Float64
	case bool:
		return Bool
	}
	panic("unreachable")
}
