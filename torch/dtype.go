package torch

import "fmt"

// DType is a tensor element type. The zero value is Float32, PyTorch's
// default, so that Options{Device: d} means float32 on d.
type DType int

const (
	Float32 DType = iota
	Float64
	Float16
	BFloat16
	Int64
	Int32
	Int16
	Int8
	Uint8
	Bool
)

var dtypeNames = map[DType]string{
	Uint8: "uint8", Int8: "int8", Int16: "int16", Int32: "int32", Int64: "int64",
	Float16: "float16", Float32: "float32", Float64: "float64", Bool: "bool", BFloat16: "bfloat16",
}

var dtypeSizes = map[DType]int{
	Uint8: 1, Int8: 1, Int16: 2, Int32: 4, Int64: 8,
	Float16: 2, Float32: 4, Float64: 8, Bool: 1, BFloat16: 2,
}

// scalarTypes are libtorch's codes (c10::ScalarType) of the dtypes.
var scalarTypes = map[DType]int{
	Uint8: 0, Int8: 1, Int16: 2, Int32: 3, Int64: 4,
	Float16: 5, Float32: 6, Float64: 7, Bool: 11, BFloat16: 15,
}

// code returns libtorch's code of d, or -1 for an unsupported d (which the
// shim rejects).
func (d DType) code() int {
	if c, ok := scalarTypes[d]; ok {
		return c
	}
	return -1
}

// dtypeOfCode is the DType of a libtorch code. Codes of dtypes this package
// does not support (complex numbers, ...) map to invalid DTypes that print
// as "dtype(ScalarType N)".
func dtypeOfCode(c int) DType {
	for d, code := range scalarTypes {
		if code == c {
			return d
		}
	}
	return DType(-1000 - c)
}

// String returns PyTorch's name of the dtype without the "torch." prefix.
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	if d <= -1000 {
		return fmt.Sprintf("dtype(ScalarType %d)", -1000-int(d))
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
