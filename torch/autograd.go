package torch

/*
#include "edema_torch.h"
*/
import "C"

import "runtime"

// SetRequiresGrad marks the tensor as a leaf whose gradient autograd
// accumulates (or clears the mark). It returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	err := C.et_set_requires_grad(t.handle("requires_grad_"), cbool(on))
	runtime.KeepAlive(t)
	check("requires_grad_", err)
	return t
}

// RequiresGrad reports whether autograd tracks the tensor.
func (t *Tensor) RequiresGrad() bool {
	var out C.int
	err := C.et_requires_grad(t.handle("requires_grad"), &out)
	runtime.KeepAlive(t)
	check("requires_grad", err)
	return out != 0
}

// Backward computes the gradients of the scalar t with respect to the
// leaves of its graph and accumulates them into their Grad.
func (t *Tensor) Backward() {
	err := C.et_backward(t.handle("backward"), nil, 0)
	runtime.KeepAlive(t)
	check("backward", err)
}

// BackwardWith is Backward for a non-scalar t, seeded with grad (same
// shape); retainGraph keeps the graph for another backward pass.
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph bool) {
	err := C.et_backward(t.handle("backward"), optHandle("backward", grad), cbool(retainGraph))
	runtime.KeepAlive(t)
	runtime.KeepAlive(grad)
	check("backward", err)
}

// Grad returns the accumulated gradient, or nil when there is none yet.
// The result shares memory with the gradient that autograd keeps.
func (t *Tensor) Grad() *Tensor {
	var out C.et_tensor
	err := C.et_grad(t.handle("grad"), &out)
	runtime.KeepAlive(t)
	check("grad", err)
	if out == nil {
		return nil
	}
	return wrap(out)
}

// ZeroGrad drops the accumulated gradient (PyTorch's set_to_none).
func (t *Tensor) ZeroGrad() {
	err := C.et_zero_grad(t.handle("zero_grad"))
	runtime.KeepAlive(t)
	check("zero_grad", err)
}
