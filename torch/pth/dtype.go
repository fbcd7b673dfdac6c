package pth

import (
	"fmt"
	"math"
)

// DType is the element type of a tensor, named as PyTorch names it.
type DType int

// The element types PyTorch checkpoints of dense CPU/CUDA tensors use.
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

type dtypeInfo struct {
	name    string // torch.<name>, also what String returns
	size    int    // bytes per element
	storage string // torch.<storage> class of the typed storages in pickles
	st      string // safetensors dtype
}

var dtypes = [...]dtypeInfo{
	Float32:  {"float32", 4, "FloatStorage", "F32"},
	Float64:  {"float64", 8, "DoubleStorage", "F64"},
	Float16:  {"float16", 2, "HalfStorage", "F16"},
	BFloat16: {"bfloat16", 2, "BFloat16Storage", "BF16"},
	Int64:    {"int64", 8, "LongStorage", "I64"},
	Int32:    {"int32", 4, "IntStorage", "I32"},
	Int16:    {"int16", 2, "ShortStorage", "I16"},
	Int8:     {"int8", 1, "CharStorage", "I8"},
	Uint8:    {"uint8", 1, "ByteStorage", "U8"},
	Bool:     {"bool", 1, "BoolStorage", "BOOL"},
}

func (d DType) valid() bool { return d >= 0 && int(d) < len(dtypes) }

// String returns PyTorch's name of the type without the "torch." prefix,
// e.g. "float32".
func (d DType) String() string {
	if !d.valid() {
		return fmt.Sprintf("DType(%d)", int(d))
	}
	return dtypes[d].name
}

// ElemSize returns the number of bytes of one element.
func (d DType) ElemSize() int {
	if !d.valid() {
		return 0
	}
	return dtypes[d].size
}

// IsFloat reports whether d is a floating point type.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float64 || d == Float16 || d == BFloat16
}

// ParseDType parses a name as String returns it, also accepting PyTorch's
// aliases ("float", "double", "half", "long", "int", "short") and a
// "torch." prefix.
func ParseDType(s string) (DType, error) {
	if len(s) > 6 && s[:6] == "torch." {
		s = s[6:]
	}
	if d, ok := dtypeByTorchName[s]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("unknown dtype %q", s)
}

var dtypeByTorchName = map[string]DType{
	"float32": Float32, "float": Float32,
	"float64": Float64, "double": Float64,
	"float16": Float16, "half": Float16,
	"bfloat16": BFloat16,
	"int64":    Int64, "long": Int64,
	"int32": Int32, "int": Int32,
	"int16": Int16, "short": Int16,
	"int8":  Int8,
	"uint8": Uint8,
	"bool":  Bool,
}

var dtypeByStorage = func() map[string]DType {
	m := make(map[string]DType, len(dtypes))
	for i, info := range dtypes {
		m[info.storage] = DType(i)
	}
	return m
}()

var dtypeBySafetensors = func() map[string]DType {
	m := make(map[string]DType, len(dtypes))
	for i, info := range dtypes {
		m[info.st] = DType(i)
	}
	return m
}()

// float16ToFloat64 decodes an IEEE 754 half precision number.
func float16ToFloat64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0: // zero and subnormals
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// bfloat16ToFloat64 decodes a bfloat16, the upper half of a float32.
func bfloat16ToFloat64(b uint16) float64 {
	return float64(math.Float32frombits(uint32(b) << 16))
}
