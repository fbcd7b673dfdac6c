package torch

/*
#include "edema_torch.h"
*/
import "C"

// SetRequiresGrad marks the tensor as a leaf whose gradient autograd
// accumulates (or clears the mark). It returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	check("requires_grad_", C.et_set_requires_grad(t.handle("requires_grad_"), cbool(on)))
	return t
}

// RequiresGrad reports whether autograd tracks the tensor.
func (t *Tensor) RequiresGrad() bool {
	var out C.int
	check("requires_grad", C.et_requires_grad(t.handle("requires_grad"), &out))
	return out != 0
}

// Backward computes the gradients of the scalar t with respect to the
// leaves of its graph and accumulates them into their Grad.
func (t *Tensor) Backward() {
	check("backward", C.et_backward(t.handle("backward"), nil, 0))
}

// BackwardWith is Backward for a non-scalar t, seeded with grad (same
// shape); retainGraph keeps the graph for another backward pass.
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph bool) {
	check("backward", C.et_backward(t.handle("backward"), optHandle("backward", grad), cbool(retainGraph)))
}

// Grad returns the accumulated gradient, or nil when there is none yet.
// The result shares memory with the gradient that autograd keeps.
func (t *Tensor) Grad() *Tensor {
	var out C.et_tensor
	check("grad", C.et_grad(t.handle("grad"), &out))
	if out == nil {
		return nil
	}
	return wrap(out)
}

// ZeroGrad drops the accumulated gradient (PyTorch's set_to_none).
func (t *Tensor) ZeroGrad() {
	check("zero_grad", C.et_zero_grad(t.handle("zero_grad")))
}
