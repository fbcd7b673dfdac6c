package torch

/*
#include <stdlib.h>
#include "edema_torch.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Tensor is a libtorch tensor. The zero value is not usable; tensors come
// from the constructors in this package and from operations.
type Tensor struct {
	c       C.et_tensor
	scope   *Scope          // the scope that frees it, if any
	cleanup runtime.Cleanup // the backstop, when no scope owns it
	managed bool            // whether cleanup is registered
}

// wrap takes ownership of a shim handle: the current goroutine's scope
// frees it, or else the runtime cleanup does once it is unreachable.
func wrap(c C.et_tensor) *Tensor {
	t := &Tensor{c: c}
	if s := currentScope(); s != nil {
		s.add(t)
	} else {
		t.manage()
	}
	return t
}

func (t *Tensor) manage() {
	t.cleanup = runtime.AddCleanup(t, freeHandle, t.c)
	t.managed = true
}

func (t *Tensor) unmanage() {
	if t.managed {
		t.cleanup.Stop()
		t.managed = false
	}
}

func freeHandle(c C.et_tensor) { C.et_free(c) }

// Free releases the tensor's memory now. Freeing twice is harmless; any
// other use after Free panics with a *Error.
func (t *Tensor) Free() {
	if t == nil || t.c == nil {
		return
	}
	t.unmanage()
	C.et_free(t.c)
	t.c = nil
}

// handle returns the shim handle, or panics when the tensor is nil or freed.
func (t *Tensor) handle(op string) C.et_tensor {
	if t == nil {
		fail(op, "nil tensor")
	}
	if t.c == nil {
		fail(op, "use of freed tensor")
	}
	return t.c
}

// optHandle is handle for optional arguments: nil stands for None.
func optHandle(op string, t *Tensor) C.et_tensor {
	if t == nil {
		return nil
	}
	return t.handle(op)
}

// IsFreed reports whether Free has been called on the tensor.
func (t *Tensor) IsFreed() bool { return t == nil || t.c == nil }

// Dim returns the number of dimensions.
func (t *Tensor) Dim() int {
	var out C.int64_t
	check("dim", C.et_dim(t.handle("dim"), &out))
	return int(out)
}

// Shape returns the size of every dimension.
func (t *Tensor) Shape() []int64 {
	h := t.handle("shape")
	var n C.int64_t
	check("shape", C.et_dim(h, &n))
	shape := make([]int64, int(n))
	if n > 0 {
		check("shape", C.et_shape(h, (*C.int64_t)(unsafe.Pointer(&shape[0])), n))
	}
	return shape
}

// Size returns the size of dimension dim (negative counts from the end).
func (t *Tensor) Size(dim int) int64 {
	shape := t.Shape()
	if dim < 0 {
		dim += len(shape)
	}
	if dim < 0 || dim >= len(shape) {
		fail("size", fmt.Sprintf("dimension %d out of range for a %d-d tensor", dim, len(shape)))
	}
	return shape[dim]
}

// Numel returns the number of elements.
func (t *Tensor) Numel() int64 {
	var out C.int64_t
	check("numel", C.et_numel(t.handle("numel"), &out))
	return int64(out)
}

// DType returns the element type.
func (t *Tensor) DType() DType {
	var out C.int
	check("dtype", C.et_dtype(t.handle("dtype"), &out))
	return DType(out)
}

// Device returns where the tensor lives.
func (t *Tensor) Device() Device {
	var typ, idx C.int
	check("device", C.et_device(t.handle("device"), &typ, &idx))
	return Device{Type: DeviceType(typ), Index: int(idx)}
}

// IsContiguous reports whether the elements are laid out densely in row-major order.
func (t *Tensor) IsContiguous() bool {
	var out C.int
	check("is_contiguous", C.et_is_contiguous(t.handle("is_contiguous"), &out))
	return out != 0
}

// String prints the tensor the way libtorch does.
func (t *Tensor) String() string {
	if t.IsFreed() {
		return "Tensor(freed)"
	}
	var out *C.char
	check("to_string", C.et_to_string(t.c, &out))
	return takeString(out)
}

func takeString(s *C.char) string {
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s)
}

func shapePtr(shape []int64) (*C.int64_t, C.int64_t) {
	if len(shape) == 0 {
		return nil, 0
	}
	return (*C.int64_t)(unsafe.Pointer(&shape[0])), C.int64_t(len(shape))
}

// FromSlice makes a CPU tensor of the given shape holding a copy of data.
// With no shape it is one-dimensional.
func FromSlice[T Element](data []T, shape ...int64) *Tensor {
	if shape == nil {
		shape = []int64{int64(len(data))}
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	var zero T
	return fromBytes("from_slice", p, uintptr(len(data))*unsafe.Sizeof(zero), DTypeOf[T](), shape)
}

// FromBytes makes a CPU tensor of dtype and shape from raw little-endian
// element bytes (for float16 and bfloat16, which have no Go type).
func FromBytes(data []byte, dtype DType, shape ...int64) *Tensor {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return fromBytes("from_bytes", p, uintptr(len(data)), dtype, shape)
}

func fromBytes(op string, p unsafe.Pointer, n uintptr, dtype DType, shape []int64) *Tensor {
	sp, nd := shapePtr(shape)
	var out C.et_tensor
	check(op, C.et_from_data(p, C.size_t(n), sp, nd, C.int(dtype), &out))
	return wrap(out)
}

// Scalar makes a zero-dimensional CPU tensor.
func Scalar[T Element](v T) *Tensor { return FromSlice([]T{v}, []int64{}...) }

// Options says which dtype and device a new tensor gets.
type Options struct {
	DType  DType
	Device Device
}

// Float32CPU is the default: float32 on the CPU.
var Float32CPU = Options{DType: Float32, Device: CPU}

type factory func(*C.int64_t, C.int64_t, C.int, C.int, C.int, *C.et_tensor) C.et_error

func create(op string, f factory, shape []int64, o Options) *Tensor {
	sp, nd := shapePtr(shape)
	var out C.et_tensor
	check(op, f(sp, nd, C.int(o.DType), C.int(o.Device.Type), C.int(o.Device.Index), &out))
	return wrap(out)
}

func zerosC(s *C.int64_t, n C.int64_t, d, t, i C.int, o *C.et_tensor) C.et_error {
	return C.et_zeros(s, n, d, t, i, o)
}
func onesC(s *C.int64_t, n C.int64_t, d, t, i C.int, o *C.et_tensor) C.et_error {
	return C.et_ones(s, n, d, t, i, o)
}
func emptyC(s *C.int64_t, n C.int64_t, d, t, i C.int, o *C.et_tensor) C.et_error {
	return C.et_empty(s, n, d, t, i, o)
}
func randC(s *C.int64_t, n C.int64_t, d, t, i C.int, o *C.et_tensor) C.et_error {
	return C.et_rand(s, n, d, t, i, o)
}
func randnC(s *C.int64_t, n C.int64_t, d, t, i C.int, o *C.et_tensor) C.et_error {
	return C.et_randn(s, n, d, t, i, o)
}

// Zeros makes a tensor of zeros.
func Zeros(shape []int64, o Options) *Tensor { return create("zeros", zerosC, shape, o) }

// Ones makes a tensor of ones.
func Ones(shape []int64, o Options) *Tensor { return create("ones", onesC, shape, o) }

// Empty makes a tensor whose elements are not initialised.
func Empty(shape []int64, o Options) *Tensor { return create("empty", emptyC, shape, o) }

// Rand makes a tensor of numbers drawn uniformly from [0, 1).
func Rand(shape []int64, o Options) *Tensor { return create("rand", randC, shape, o) }

// Randn makes a tensor of standard normal numbers.
func Randn(shape []int64, o Options) *Tensor { return create("randn", randnC, shape, o) }

// Full makes a tensor filled with value.
func Full(shape []int64, value float64, o Options) *Tensor {
	sp, nd := shapePtr(shape)
	var out C.et_tensor
	check("full", C.et_full(sp, nd, C.double(value), C.int(o.DType), C.int(o.Device.Type), C.int(o.Device.Index), &out))
	return wrap(out)
}

// Arange makes the one-dimensional tensor start, start+step, ... below end.
func Arange(start, end, step float64, o Options) *Tensor {
	var out C.et_tensor
	check("arange", C.et_arange(C.double(start), C.double(end), C.double(step), C.int(o.DType), C.int(o.Device.Type), C.int(o.Device.Index), &out))
	return wrap(out)
}

// copyOut copies the elements (row-major, on the CPU) into dst.
func (t *Tensor) copyOut(op string, dst unsafe.Pointer, n uintptr) {
	check(op, C.et_copy_data(t.handle(op), dst, C.size_t(n)))
}

// Data copies the tensor's elements into a new Go slice in row-major order.
// T must match the tensor's dtype; use To first to convert.
func Data[T Element](t *Tensor) []T {
	if want, got := DTypeOf[T](), t.DType(); want != got {
		fail("data", fmt.Sprintf("tensor has dtype %s, not %s", got, want))
	}
	out := make([]T, t.Numel())
	if len(out) > 0 {
		var zero T
		t.copyOut("data", unsafe.Pointer(&out[0]), uintptr(len(out))*unsafe.Sizeof(zero))
	}
	return out
}

// Bytes copies the tensor's elements as raw little-endian bytes.
func (t *Tensor) Bytes() []byte {
	out := make([]byte, t.Numel()*int64(t.DType().Size()))
	if len(out) > 0 {
		t.copyOut("bytes", unsafe.Pointer(&out[0]), uintptr(len(out)))
	}
	return out
}

// Float32s copies the elements of a float32 tensor.
func (t *Tensor) Float32s() []float32 { return Data[float32](t) }

// Float64s copies the elements of a float64 tensor.
func (t *Tensor) Float64s() []float64 { return Data[float64](t) }

// Int64s copies the elements of an int64 tensor.
func (t *Tensor) Int64s() []int64 { return Data[int64](t) }

// Item returns the value of a one-element tensor as a float64.
func (t *Tensor) Item() float64 {
	if n := t.Numel(); n != 1 {
		fail("item", fmt.Sprintf("tensor has %d elements, not 1", n))
	}
	s := NewScope()
	defer s.Close()
	return Data[float64](t.To(Float64))[0]
}

type unaryC func(C.et_tensor, *C.et_tensor) C.et_error

// unary runs a one-input shim call and wraps its result.
func (t *Tensor) unary(op string, f unaryC) *Tensor {
	var out C.et_tensor
	check(op, f(t.handle(op), &out))
	return wrap(out)
}

// To converts the tensor to another dtype, keeping its device.
func (t *Tensor) To(dtype DType) *Tensor {
	return t.ToOptions(Options{DType: dtype, Device: t.Device()})
}

// ToDevice moves the tensor to another device, keeping its dtype.
func (t *Tensor) ToDevice(d Device) *Tensor { return t.ToOptions(Options{DType: t.DType(), Device: d}) }

// ToOptions converts the tensor's dtype and device at once. Like PyTorch's
// to(), it returns a new handle on the same memory when nothing changes.
func (t *Tensor) ToOptions(o Options) *Tensor {
	var out C.et_tensor
	check("to", C.et_to(t.handle("to"), C.int(o.DType), C.int(o.Device.Type), C.int(o.Device.Index), &out))
	return wrap(out)
}

func contiguousC(a C.et_tensor, o *C.et_tensor) C.et_error { return C.et_contiguous(a, o) }
func cloneC(a C.et_tensor, o *C.et_tensor) C.et_error      { return C.et_clone(a, o) }
func detachC(a C.et_tensor, o *C.et_tensor) C.et_error     { return C.et_detach(a, o) }

// Contiguous returns the tensor with a dense row-major layout.
func (t *Tensor) Contiguous() *Tensor { return t.unary("contiguous", contiguousC) }

// Clone returns a copy with its own memory (recorded by autograd).
func (t *Tensor) Clone() *Tensor { return t.unary("clone", cloneC) }

// Detach returns a tensor sharing memory but cut from the autograd graph.
func (t *Tensor) Detach() *Tensor { return t.unary("detach", detachC) }

// CopyFrom copies src's elements into t in place (broadcasting, converting).
func (t *Tensor) CopyFrom(src *Tensor) {
	check("copy_", C.et_copy_(t.handle("copy_"), src.handle("copy_")))
}
