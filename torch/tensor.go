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
//
// Every method that hands t's handle to libtorch ends with
// runtime.KeepAlive(t): without it, a tensor that the caller no longer
// references (x in FromSlice(...).Exp(), say) could be collected, and its
// handle freed by the runtime cleanup, while libtorch is still using it.
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

// result turns the outcome of a shim call that makes one tensor into that
// tensor, or a *Error panic.
func result(op string, err C.et_error, out C.et_tensor) *Tensor {
	check(op, err)
	return wrap(out)
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

// IsFreed reports whether Free has been called on the tensor (or a scope
// that owned it has closed).
func (t *Tensor) IsFreed() bool { return t == nil || t.c == nil }

// Dim returns the number of dimensions.
func (t *Tensor) Dim() int {
	var out C.int64_t
	err := C.et_dim(t.handle("dim"), &out)
	runtime.KeepAlive(t)
	check("dim", err)
	return int(out)
}

// Shape returns the size of every dimension.
func (t *Tensor) Shape() []int64 {
	h := t.handle("shape")
	var buf [8]int64
	var n C.int64_t
	err := C.et_shape(h, (*C.int64_t)(unsafe.Pointer(&buf[0])), C.int64_t(len(buf)), &n)
	if err == nil && int(n) > len(buf) {
		shape := make([]int64, int(n))
		err = C.et_shape(h, (*C.int64_t)(unsafe.Pointer(&shape[0])), n, &n)
		runtime.KeepAlive(t)
		check("shape", err)
		return shape
	}
	runtime.KeepAlive(t)
	check("shape", err)
	shape := make([]int64, n)
	copy(shape, buf[:n])
	return shape
}

// Strides returns the step in elements between neighbours along every
// dimension.
func (t *Tensor) Strides() []int64 {
	strides := make([]int64, t.Dim())
	var n C.int64_t
	err := C.et_strides(t.handle("strides"), (*C.int64_t)(unsafe.Pointer(unsafe.SliceData(strides))), C.int64_t(len(strides)), &n)
	runtime.KeepAlive(t)
	check("strides", err)
	return strides[:n]
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
	err := C.et_numel(t.handle("numel"), &out)
	runtime.KeepAlive(t)
	check("numel", err)
	return int64(out)
}

// DType returns the element type.
func (t *Tensor) DType() DType {
	var out C.int
	err := C.et_dtype(t.handle("dtype"), &out)
	runtime.KeepAlive(t)
	check("dtype", err)
	return dtypeOfCode(int(out))
}

// Device returns where the tensor lives.
func (t *Tensor) Device() Device {
	var typ, idx C.int
	err := C.et_device(t.handle("device"), &typ, &idx)
	runtime.KeepAlive(t)
	check("device", err)
	return Device{Type: DeviceType(typ), Index: int(idx)}
}

// IsContiguous reports whether the elements are laid out densely in row-major order.
func (t *Tensor) IsContiguous() bool {
	var out C.int
	err := C.et_is_contiguous(t.handle("is_contiguous"), &out)
	runtime.KeepAlive(t)
	check("is_contiguous", err)
	return out != 0
}

// String prints the tensor the way libtorch does.
func (t *Tensor) String() string {
	if t.IsFreed() {
		return "Tensor(freed)"
	}
	var out *C.char
	err := C.et_to_string(t.c, &out)
	runtime.KeepAlive(t)
	check("to_string", err)
	return takeString(out)
}

func takeString(s *C.char) string {
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s)
}

// int64s passes a Go []int64 (a shape, a list of dimensions) to the shim.
func int64s(v []int64) (*C.int64_t, C.int64_t) {
	if len(v) == 0 {
		return nil, 0
	}
	return (*C.int64_t)(unsafe.Pointer(&v[0])), C.int64_t(len(v))
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
	if !dtype.valid() {
		fail(op, fmt.Sprintf("unsupported dtype %s", dtype))
	}
	sp, nd := int64s(shape)
	var out C.et_tensor
	return result(op, C.et_from_data(p, C.size_t(n), sp, nd, C.int(dtype.code()), &out), out)
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

func (o Options) check(op string) {
	if !o.DType.valid() {
		fail(op, fmt.Sprintf("unsupported dtype %s", o.DType))
	}
}

// Zeros makes a tensor of zeros.
func Zeros(shape []int64, o Options) *Tensor {
	o.check("zeros")
	sp, nd := int64s(shape)
	var out C.et_tensor
	err := C.et_zeros(sp, nd, C.int(o.DType.code()), C.int(o.Device.Type), C.int(o.Device.Index), &out)
	return result("zeros", err, out)
}

// Ones makes a tensor of ones.
func Ones(shape []int64, o Options) *Tensor {
	o.check("ones")
	sp, nd := int64s(shape)
	var out C.et_tensor
	err := C.et_ones(sp, nd, C.int(o.DType.code()), C.int(o.Device.Type), C.int(o.Device.Index), &out)
	return result("ones", err, out)
}

// Empty makes a tensor whose elements are not initialised.
func Empty(shape []int64, o Options) *Tensor {
	o.check("empty")
	sp, nd := int64s(shape)
	var out C.et_tensor
	err := C.et_empty(sp, nd, C.int(o.DType.code()), C.int(o.Device.Type), C.int(o.Device.Index), &out)
	return result("empty", err, out)
}

// Rand makes a tensor of numbers drawn uniformly from [0, 1), like torch.rand.
func Rand(shape []int64, o Options) *Tensor {
	o.check("rand")
	sp, nd := int64s(shape)
	var out C.et_tensor
	err := C.et_rand(sp, nd, C.int(o.DType.code()), C.int(o.Device.Type), C.int(o.Device.Index), &out)
	return result("rand", err, out)
}

// Randn makes a tensor of standard normal numbers, like torch.randn.
func Randn(shape []int64, o Options) *Tensor {
	o.check("randn")
	sp, nd := int64s(shape)
	var out C.et_tensor
	err := C.et_randn(sp, nd, C.int(o.DType.code()), C.int(o.Device.Type), C.int(o.Device.Index), &out)
	return result("randn", err, out)
}

// Full makes a tensor filled with value.
func Full(shape []int64, value float64, o Options) *Tensor {
	o.check("full")
	sp, nd := int64s(shape)
	var out C.et_tensor
	err := C.et_full(sp, nd, C.double(value), C.int(o.DType.code()), C.int(o.Device.Type), C.int(o.Device.Index), &out)
	return result("full", err, out)
}

// Arange makes the one-dimensional tensor start, start+step, ... below end.
func Arange(start, end, step float64, o Options) *Tensor {
	o.check("arange")
	var out C.et_tensor
	err := C.et_arange(C.double(start), C.double(end), C.double(step), C.int(o.DType.code()), C.int(o.Device.Type),
		C.int(o.Device.Index), &out)
	return result("arange", err, out)
}

// copyOut copies the elements (row-major, on the CPU) into dst.
func (t *Tensor) copyOut(op string, dst unsafe.Pointer, n uintptr) {
	err := C.et_copy_data(t.handle(op), dst, C.size_t(n))
	runtime.KeepAlive(t)
	check(op, err)
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
	var out C.double
	err := C.et_item(t.handle("item"), &out)
	runtime.KeepAlive(t)
	check("item", err)
	return float64(out)
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
	o.check("to")
	var out C.et_tensor
	err := C.et_to(t.handle("to"), C.int(o.DType.code()), C.int(o.Device.Type), C.int(o.Device.Index), &out)
	runtime.KeepAlive(t)
	return result("to", err, out)
}

// ToDeviceAsync moves the tensor to another device without waiting for
// the copy, when that can be: from pinned memory (PinMemory) to a GPU,
// the copy is queued on the current stream, ahead of the work queued
// after it, and the host goes on; libtorch keeps the pinned block until
// the copy is done even if the tensor is freed first. Otherwise it is
// ToDevice.
func (t *Tensor) ToDeviceAsync(d Device) *Tensor {
	var out C.et_tensor
	err := C.et_to_device_async(t.handle("to"), C.int(d.Type), C.int(d.Index), &out)
	runtime.KeepAlive(t)
	return result("to", err, out)
}

// PinMemory returns a copy of the CPU tensor t in page-locked (pinned)
// host memory, from libtorch's cache of such blocks, which a GPU reads
// without the driver staging it: the source of ToDeviceAsync. It needs a
// CUDA device, and panics with a *Error without one.
func (t *Tensor) PinMemory() *Tensor {
	var out C.et_tensor
	err := C.et_pin_memory(t.handle("pin_memory"), &out)
	runtime.KeepAlive(t)
	return result("pin_memory", err, out)
}

// IsPinned reports whether t is in pinned host memory.
func (t *Tensor) IsPinned() bool {
	var out C.int
	err := C.et_is_pinned(t.handle("is_pinned"), &out)
	runtime.KeepAlive(t)
	check("is_pinned", err)
	return out != 0
}

// Contiguous returns the tensor with a dense row-major layout.
func (t *Tensor) Contiguous() *Tensor {
	var out C.et_tensor
	err := C.et_contiguous(t.handle("contiguous"), &out)
	runtime.KeepAlive(t)
	return result("contiguous", err, out)
}

// MemoryFormat is the order of a 4-D tensor's elements in memory.
type MemoryFormat int

const (
	// ContiguousFormat is N×C×H×W order, PyTorch's default.
	ContiguousFormat MemoryFormat = 0
	// ChannelsLast is N×H×W×C order, torch.channels_last: the channels
	// of a pixel side by side, which oneDNN's and cuDNN's fastest
	// convolutions (tensor cores among them) read directly. The shape
	// stays N×C×H×W.
	ChannelsLast MemoryFormat = 2
)

// ContiguousAs returns t laid out in format f (t itself, another handle
// to it, when it already is), as t.contiguous(memory_format=f) does.
// ChannelsLast needs a 4-D tensor.
func (t *Tensor) ContiguousAs(f MemoryFormat) *Tensor {
	var out C.et_tensor
	err := C.et_contiguous_as(t.handle("contiguous"), C.int(f), &out)
	runtime.KeepAlive(t)
	return result("contiguous", err, out)
}

// IsContiguousAs reports whether t is laid out in format f.
func (t *Tensor) IsContiguousAs(f MemoryFormat) bool {
	var out C.int
	err := C.et_is_contiguous_as(t.handle("is_contiguous"), C.int(f), &out)
	runtime.KeepAlive(t)
	check("is_contiguous", err)
	return out != 0
}

// Clone returns a copy with its own memory (recorded by autograd).
func (t *Tensor) Clone() *Tensor {
	var out C.et_tensor
	err := C.et_clone(t.handle("clone"), &out)
	runtime.KeepAlive(t)
	return result("clone", err, out)
}

// Detach returns a tensor sharing memory but cut from the autograd graph.
func (t *Tensor) Detach() *Tensor {
	var out C.et_tensor
	err := C.et_detach(t.handle("detach"), &out)
	runtime.KeepAlive(t)
	return result("detach", err, out)
}

// CopyFrom copies src's elements into t in place (broadcasting, converting).
func (t *Tensor) CopyFrom(src *Tensor) {
	err := C.et_copy_(t.handle("copy_"), src.handle("copy_"))
	runtime.KeepAlive(t)
	runtime.KeepAlive(src)
	check("copy_", err)
}

// CopyInto copies t's elements, in row-major order, into dst, which must
// have exactly t's number of elements; T must match t's dtype. It fills
// preallocated outputs without an intermediate Go slice.
func CopyInto[T Element](dst []T, t *Tensor) {
	if want, got := DTypeOf[T](), t.DType(); want != got {
		fail("copy_into", fmt.Sprintf("tensor has dtype %s, not %s", got, want))
	}
	if n := t.Numel(); int64(len(dst)) != n {
		fail("copy_into", fmt.Sprintf("destination holds %d elements, the tensor %d", len(dst), n))
	}
	if len(dst) > 0 {
		var zero T
		t.copyOut("copy_into", unsafe.Pointer(&dst[0]), uintptr(len(dst))*unsafe.Sizeof(zero))
	}
	runtime.KeepAlive(t)
}

// SetData makes t use src's data in place, like PyTorch's `t.data = src`:
// t takes src's dtype, device, shape and storage, and keeps its identity,
// its requires-grad flag and every handle to it. Moving a model's
// parameters this way leaves optimizers and layers that hold them valid.
func (t *Tensor) SetData(src *Tensor) {
	check("set_data", C.et_set_data(t.handle("set_data"), src.handle("set_data")))
	runtime.KeepAlive(t)
	runtime.KeepAlive(src)
}
