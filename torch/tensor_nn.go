package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// What module stores (package torch/nn) need beyond plain operations.

// SetData makes t use src's data in place, like PyTorch's `t.data = src`:
// t takes src's dtype, device, shape and storage, and keeps its identity,
// its requires-grad flag and every handle to it. Moving a model's
// parameters this way leaves optimizers and layers that hold them valid.
func (t *Tensor) SetData(src *Tensor) {
	check("set_data", C.et_set_data(t.handle("set_data"), src.handle("set_data")))
	runtime.KeepAlive(t)
	runtime.KeepAlive(src)
}

// Unscope takes t out of the scope that would free it, so that only Free,
// or the runtime cleanup once t is unreachable, releases it. Stores of model
// parameters use it: a model built inside a scope outlives the scope.
func (t *Tensor) Unscope() *Tensor {
	t.handle("unscope")
	if t.scope != nil {
		t.scope = nil
		t.manage()
	}
	return t
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

// AddIntInPlace sets t = t + v. Unlike AddScalarInPlace it works on integer
// tensors, such as the batch counter of batch normalisation.
func (t *Tensor) AddIntInPlace(v int64) *Tensor {
	check("add_", C.et_add_int_(t.handle("add_"), C.int64_t(v)))
	runtime.KeepAlive(t)
	return t
}
