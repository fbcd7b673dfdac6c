package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// Every operation calls its shim function directly, rather than through a
// helper taking a function value: only a direct call lets the compiler keep
// the out-parameter on the stack (see cgo.go), and this call is the whole
// per-operation cost that small tensors pay.

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Add returns t + u (broadcasting).
func (t *Tensor) Add(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_add(t.handle("add"), u.handle("add"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("add", err, out)
}

// AddScaled returns t + alpha·u.
func (t *Tensor) AddScaled(u *Tensor, alpha float64) *Tensor {
	var out C.et_tensor
	err := C.et_add_scaled(t.handle("add"), u.handle("add"), C.double(alpha), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("add", err, out)
}

// Sub returns t − u.
func (t *Tensor) Sub(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_sub(t.handle("sub"), u.handle("sub"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("sub", err, out)
}

// Mul returns t·u element-wise.
func (t *Tensor) Mul(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_mul(t.handle("mul"), u.handle("mul"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("mul", err, out)
}

// Div returns t / u element-wise (true division).
func (t *Tensor) Div(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_div(t.handle("div"), u.handle("div"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("div", err, out)
}

// Maximum returns the element-wise maximum of t and u.
func (t *Tensor) Maximum(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_maximum(t.handle("maximum"), u.handle("maximum"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("maximum", err, out)
}

// Matmul returns the matrix product (with numpy-style batching).
func (t *Tensor) Matmul(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_matmul(t.handle("matmul"), u.handle("matmul"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("matmul", err, out)
}

// PowTensor returns t raised element-wise to the powers in u.
func (t *Tensor) PowTensor(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_pow(t.handle("pow"), u.handle("pow"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("pow", err, out)
}

// AddScalar returns t + s.
func (t *Tensor) AddScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_add_scalar(t.handle("add"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("add", err, out)
}

// SubScalar returns t − s.
func (t *Tensor) SubScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_sub_scalar(t.handle("sub"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("sub", err, out)
}

// MulScalar returns t·s.
func (t *Tensor) MulScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_mul_scalar(t.handle("mul"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("mul", err, out)
}

// DivScalar returns t / s.
func (t *Tensor) DivScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_div_scalar(t.handle("div"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("div", err, out)
}

// RSubScalar returns s − t.
func (t *Tensor) RSubScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_rsub_scalar(t.handle("rsub"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("rsub", err, out)
}

// Pow returns t raised element-wise to the power e.
func (t *Tensor) Pow(e float64) *Tensor {
	var out C.et_tensor
	err := C.et_pow_scalar(t.handle("pow"), C.double(e), &out)
	runtime.KeepAlive(t)
	return result("pow", err, out)
}

// ClampMin returns max(t, min) element-wise.
func (t *Tensor) ClampMin(min float64) *Tensor {
	var out C.et_tensor
	err := C.et_clamp_min(t.handle("clamp_min"), C.double(min), &out)
	runtime.KeepAlive(t)
	return result("clamp_min", err, out)
}

// ClampMax returns min(t, max) element-wise.
func (t *Tensor) ClampMax(max float64) *Tensor {
	var out C.et_tensor
	err := C.et_clamp_max(t.handle("clamp_max"), C.double(max), &out)
	runtime.KeepAlive(t)
	return result("clamp_max", err, out)
}

// EqScalar returns the bool tensor t == s.
func (t *Tensor) EqScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_eq_scalar(t.handle("eq"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("eq", err, out)
}

// NeScalar returns the bool tensor t != s.
func (t *Tensor) NeScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_ne_scalar(t.handle("ne"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("ne", err, out)
}

// LtScalar returns the bool tensor t < s.
func (t *Tensor) LtScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_lt_scalar(t.handle("lt"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("lt", err, out)
}

// LeScalar returns the bool tensor t <= s.
func (t *Tensor) LeScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_le_scalar(t.handle("le"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("le", err, out)
}

// GtScalar returns the bool tensor t > s.
func (t *Tensor) GtScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_gt_scalar(t.handle("gt"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("gt", err, out)
}

// GeScalar returns the bool tensor t >= s.
func (t *Tensor) GeScalar(s float64) *Tensor {
	var out C.et_tensor
	err := C.et_ge_scalar(t.handle("ge"), C.double(s), &out)
	runtime.KeepAlive(t)
	return result("ge", err, out)
}

// Clamp limits every element to [min, max].
func (t *Tensor) Clamp(min, max float64) *Tensor {
	var out C.et_tensor
	err := C.et_clamp(t.handle("clamp"), C.double(min), C.double(max), &out)
	runtime.KeepAlive(t)
	return result("clamp", err, out)
}

// Exp returns e^t element-wise.
func (t *Tensor) Exp() *Tensor {
	var out C.et_tensor
	err := C.et_exp(t.handle("exp"), &out)
	runtime.KeepAlive(t)
	return result("exp", err, out)
}

// Log returns the natural logarithm element-wise.
func (t *Tensor) Log() *Tensor {
	var out C.et_tensor
	err := C.et_log(t.handle("log"), &out)
	runtime.KeepAlive(t)
	return result("log", err, out)
}

// Sqrt returns the square root element-wise.
func (t *Tensor) Sqrt() *Tensor {
	var out C.et_tensor
	err := C.et_sqrt(t.handle("sqrt"), &out)
	runtime.KeepAlive(t)
	return result("sqrt", err, out)
}

// Neg returns −t.
func (t *Tensor) Neg() *Tensor {
	var out C.et_tensor
	err := C.et_neg(t.handle("neg"), &out)
	runtime.KeepAlive(t)
	return result("neg", err, out)
}

// Abs returns |t| element-wise.
func (t *Tensor) Abs() *Tensor {
	var out C.et_tensor
	err := C.et_abs(t.handle("abs"), &out)
	runtime.KeepAlive(t)
	return result("abs", err, out)
}

// Relu returns max(t, 0) element-wise.
func (t *Tensor) Relu() *Tensor {
	var out C.et_tensor
	err := C.et_relu(t.handle("relu"), &out)
	runtime.KeepAlive(t)
	return result("relu", err, out)
}

// Sigmoid returns 1/(1+e^−t) element-wise.
func (t *Tensor) Sigmoid() *Tensor {
	var out C.et_tensor
	err := C.et_sigmoid(t.handle("sigmoid"), &out)
	runtime.KeepAlive(t)
	return result("sigmoid", err, out)
}

// Sum returns the sum of all elements as a zero-dimensional tensor.
func (t *Tensor) Sum() *Tensor {
	var out C.et_tensor
	err := C.et_sum(t.handle("sum"), &out)
	runtime.KeepAlive(t)
	return result("sum", err, out)
}

// Mean returns the mean of all elements as a zero-dimensional tensor.
func (t *Tensor) Mean() *Tensor {
	var out C.et_tensor
	err := C.et_mean(t.handle("mean"), &out)
	runtime.KeepAlive(t)
	return result("mean", err, out)
}

// Max returns the largest element as a zero-dimensional tensor.
func (t *Tensor) Max() *Tensor {
	var out C.et_tensor
	err := C.et_max_all(t.handle("max"), &out)
	runtime.KeepAlive(t)
	return result("max", err, out)
}

// Min returns the smallest element as a zero-dimensional tensor.
func (t *Tensor) Min() *Tensor {
	var out C.et_tensor
	err := C.et_min_all(t.handle("min"), &out)
	runtime.KeepAlive(t)
	return result("min", err, out)
}

// LogicalNot returns !t element-wise.
func (t *Tensor) LogicalNot() *Tensor {
	var out C.et_tensor
	err := C.et_logical_not(t.handle("logical_not"), &out)
	runtime.KeepAlive(t)
	return result("logical_not", err, out)
}

// Squeeze removes every dimension of size 1.
func (t *Tensor) Squeeze() *Tensor {
	var out C.et_tensor
	err := C.et_squeeze(t.handle("squeeze"), &out)
	runtime.KeepAlive(t)
	return result("squeeze", err, out)
}

// SumDims sums over the given dimensions.
func (t *Tensor) SumDims(dims []int64, keepdim bool) *Tensor {
	dp, nd := int64s(dims)
	var out C.et_tensor
	err := C.et_sum_dims(t.handle("sum"), dp, nd, cbool(keepdim), &out)
	runtime.KeepAlive(t)
	return result("sum", err, out)
}

// MeanDims averages over the given dimensions.
func (t *Tensor) MeanDims(dims []int64, keepdim bool) *Tensor {
	dp, nd := int64s(dims)
	var out C.et_tensor
	err := C.et_mean_dims(t.handle("mean"), dp, nd, cbool(keepdim), &out)
	runtime.KeepAlive(t)
	return result("mean", err, out)
}

// MaxDim returns the largest values along dim and their indices.
func (t *Tensor) MaxDim(dim int64, keepdim bool) (values, indices *Tensor) {
	var v, i C.et_tensor
	err := C.et_max_dim(t.handle("max"), C.int64_t(dim), cbool(keepdim), &v, &i)
	runtime.KeepAlive(t)
	check("max", err)
	return wrap(v), wrap(i)
}

// Argmax returns the indices of the largest values along dim.
func (t *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	var out C.et_tensor
	err := C.et_argmax(t.handle("argmax"), C.int64_t(dim), cbool(keepdim), &out)
	runtime.KeepAlive(t)
	return result("argmax", err, out)
}

// Eq returns the bool tensor t == u.
func (t *Tensor) Eq(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_eq(t.handle("eq"), u.handle("eq"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("eq", err, out)
}

// Ne returns the bool tensor t != u.
func (t *Tensor) Ne(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_ne(t.handle("ne"), u.handle("ne"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("ne", err, out)
}

// Lt returns the bool tensor t < u.
func (t *Tensor) Lt(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_lt(t.handle("lt"), u.handle("lt"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("lt", err, out)
}

// Le returns the bool tensor t <= u.
func (t *Tensor) Le(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_le(t.handle("le"), u.handle("le"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("le", err, out)
}

// Gt returns the bool tensor t > u.
func (t *Tensor) Gt(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_gt(t.handle("gt"), u.handle("gt"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("gt", err, out)
}

// Ge returns the bool tensor t >= u.
func (t *Tensor) Ge(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_ge(t.handle("ge"), u.handle("ge"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("ge", err, out)
}

// LogicalAnd returns t && u element-wise.
func (t *Tensor) LogicalAnd(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_logical_and(t.handle("logical_and"), u.handle("logical_and"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("logical_and", err, out)
}

// LogicalOr returns t || u element-wise.
func (t *Tensor) LogicalOr(u *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_logical_or(t.handle("logical_or"), u.handle("logical_or"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	return result("logical_or", err, out)
}

// Where picks a where cond is true and b elsewhere.
func Where(cond, a, b *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_where(cond.handle("where"), a.handle("where"), b.handle("where"), &out)
	runtime.KeepAlive(cond)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	return result("where", err, out)
}

// handles collects the shim handles of a list of tensors; the caller keeps
// ts alive across the call that uses them.
func handles(op string, ts []*Tensor) []C.et_tensor {
	if len(ts) == 0 {
		fail(op, "no tensors given")
	}
	hs := make([]C.et_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.handle(op)
	}
	return hs
}

// Cat concatenates tensors along dim.
func Cat(ts []*Tensor, dim int64) *Tensor {
	hs := handles("cat", ts)
	var out C.et_tensor
	err := C.et_cat(&hs[0], C.int64_t(len(hs)), C.int64_t(dim), &out)
	runtime.KeepAlive(ts)
	return result("cat", err, out)
}

// Stack joins tensors of equal shape along a new dimension dim.
func Stack(ts []*Tensor, dim int64) *Tensor {
	hs := handles("stack", ts)
	var out C.et_tensor
	err := C.et_stack(&hs[0], C.int64_t(len(hs)), C.int64_t(dim), &out)
	runtime.KeepAlive(ts)
	return result("stack", err, out)
}

// Narrow returns the view of length elements from start along dim.
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	var out C.et_tensor
	err := C.et_narrow(t.handle("narrow"), C.int64_t(dim), C.int64_t(start), C.int64_t(length), &out)
	runtime.KeepAlive(t)
	return result("narrow", err, out)
}

// Slice returns the view of every step-th element along dim from start
// up to, not including, end (t[..., start:end:step] in Python); end past
// the dimension's size stops at its end.
func (t *Tensor) Slice(dim, start, end, step int64) *Tensor {
	var out C.et_tensor
	err := C.et_slice(t.handle("slice"), C.int64_t(dim), C.int64_t(start), C.int64_t(end), C.int64_t(step), &out)
	runtime.KeepAlive(t)
	return result("slice", err, out)
}

// AsStrided returns the view of t's storage with the given sizes and
// strides (in elements), from t's own storage offset: torch.as_strided.
// The caller keeps it within the storage; autograd differentiates it.
func (t *Tensor) AsStrided(shape, strides []int64) *Tensor {
	if len(shape) != len(strides) {
		fail("as_strided", fmt.Sprintf("%d sizes but %d strides", len(shape), len(strides)))
	}
	p, n := int64s(shape)
	q, _ := int64s(strides)
	var out C.et_tensor
	err := C.et_as_strided(t.handle("as_strided"), p, q, n, &out)
	runtime.KeepAlive(t)
	return result("as_strided", err, out)
}

// Select returns the view at index along dim, without that dimension.
func (t *Tensor) Select(dim, index int64) *Tensor {
	var out C.et_tensor
	err := C.et_select(t.handle("select"), C.int64_t(dim), C.int64_t(index), &out)
	runtime.KeepAlive(t)
	return result("select", err, out)
}

// IndexSelect gathers the entries of an int64 index tensor along dim.
func (t *Tensor) IndexSelect(dim int64, index *Tensor) *Tensor {
	var out C.et_tensor
	err := C.et_index_select(t.handle("index_select"), C.int64_t(dim), index.handle("index_select"), &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(index)
	return result("index_select", err, out)
}

// Flip reverses the order of elements along the given dimensions.
func (t *Tensor) Flip(dims ...int64) *Tensor {
	p, n := int64s(dims)
	var out C.et_tensor
	err := C.et_flip(t.handle("flip"), p, n, &out)
	runtime.KeepAlive(t)
	return result("flip", err, out)
}

// Reshape returns the elements in a new shape (a view when possible); one
// dimension may be −1.
func (t *Tensor) Reshape(shape ...int64) *Tensor {
	p, n := int64s(shape)
	var out C.et_tensor
	err := C.et_reshape(t.handle("reshape"), p, n, &out)
	runtime.KeepAlive(t)
	return result("reshape", err, out)
}

// View returns a view with a new shape; the layout must allow it.
func (t *Tensor) View(shape ...int64) *Tensor {
	p, n := int64s(shape)
	var out C.et_tensor
	err := C.et_view(t.handle("view"), p, n, &out)
	runtime.KeepAlive(t)
	return result("view", err, out)
}

// Permute reorders the dimensions.
func (t *Tensor) Permute(dims ...int64) *Tensor {
	p, n := int64s(dims)
	var out C.et_tensor
	err := C.et_permute(t.handle("permute"), p, n, &out)
	runtime.KeepAlive(t)
	return result("permute", err, out)
}

// Expand broadcasts size-1 dimensions to shape without copying (−1 keeps a size).
func (t *Tensor) Expand(shape ...int64) *Tensor {
	p, n := int64s(shape)
	var out C.et_tensor
	err := C.et_expand(t.handle("expand"), p, n, &out)
	runtime.KeepAlive(t)
	return result("expand", err, out)
}

// Transpose swaps two dimensions.
func (t *Tensor) Transpose(dim0, dim1 int64) *Tensor {
	var out C.et_tensor
	err := C.et_transpose(t.handle("transpose"), C.int64_t(dim0), C.int64_t(dim1), &out)
	runtime.KeepAlive(t)
	return result("transpose", err, out)
}

// SqueezeDim removes dimension dim if its size is 1.
func (t *Tensor) SqueezeDim(dim int64) *Tensor {
	var out C.et_tensor
	err := C.et_squeeze_dim(t.handle("squeeze"), C.int64_t(dim), &out)
	runtime.KeepAlive(t)
	return result("squeeze", err, out)
}

// Unsqueeze inserts a dimension of size 1 at dim.
func (t *Tensor) Unsqueeze(dim int64) *Tensor {
	var out C.et_tensor
	err := C.et_unsqueeze(t.handle("unsqueeze"), C.int64_t(dim), &out)
	runtime.KeepAlive(t)
	return result("unsqueeze", err, out)
}

// In-place forms, for optimizers and initialisation. They return t.

// AddInPlace sets t = t + alpha·u.
func (t *Tensor) AddInPlace(u *Tensor, alpha float64) *Tensor {
	err := C.et_add_(t.handle("add_"), u.handle("add_"), C.double(alpha))
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	check("add_", err)
	return t
}

// SubInPlace sets t = t − alpha·u.
func (t *Tensor) SubInPlace(u *Tensor, alpha float64) *Tensor {
	err := C.et_sub_(t.handle("sub_"), u.handle("sub_"), C.double(alpha))
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	check("sub_", err)
	return t
}

// MulInPlace sets t = t·u.
func (t *Tensor) MulInPlace(u *Tensor) *Tensor {
	err := C.et_mul_(t.handle("mul_"), u.handle("mul_"))
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	check("mul_", err)
	return t
}

// DivInPlace sets t = t / u.
func (t *Tensor) DivInPlace(u *Tensor) *Tensor {
	err := C.et_div_(t.handle("div_"), u.handle("div_"))
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	check("div_", err)
	return t
}

// AddScalarInPlace sets t = t + s.
func (t *Tensor) AddScalarInPlace(s float64) *Tensor {
	err := C.et_add_scalar_(t.handle("add_"), C.double(s))
	runtime.KeepAlive(t)
	check("add_", err)
	return t
}

// MulScalarInPlace sets t = t·s.
func (t *Tensor) MulScalarInPlace(s float64) *Tensor {
	err := C.et_mul_scalar_(t.handle("mul_"), C.double(s))
	runtime.KeepAlive(t)
	check("mul_", err)
	return t
}

// DivScalarInPlace sets t = t / s.
func (t *Tensor) DivScalarInPlace(s float64) *Tensor {
	err := C.et_div_scalar_(t.handle("div_"), C.double(s))
	runtime.KeepAlive(t)
	check("div_", err)
	return t
}

// AddcmulInPlace sets t = t + value·a·b.
func (t *Tensor) AddcmulInPlace(a, b *Tensor, value float64) *Tensor {
	err := C.et_addcmul_(t.handle("addcmul_"), a.handle("addcmul_"), b.handle("addcmul_"), C.double(value))
	runtime.KeepAlive(t)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	check("addcmul_", err)
	return t
}

// AddcdivInPlace sets t = t + value·a/b.
func (t *Tensor) AddcdivInPlace(a, b *Tensor, value float64) *Tensor {
	err := C.et_addcdiv_(t.handle("addcdiv_"), a.handle("addcdiv_"), b.handle("addcdiv_"), C.double(value))
	runtime.KeepAlive(t)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	check("addcdiv_", err)
	return t
}

// LerpInPlace sets t = t + weight·(end − t).
func (t *Tensor) LerpInPlace(end *Tensor, weight float64) *Tensor {
	err := C.et_lerp_(t.handle("lerp_"), end.handle("lerp_"), C.double(weight))
	runtime.KeepAlive(t)
	runtime.KeepAlive(end)
	check("lerp_", err)
	return t
}

// MaximumInPlace sets t = max(t, u) element-wise.
func (t *Tensor) MaximumInPlace(u *Tensor) *Tensor {
	err := C.et_maximum_(t.handle("maximum_"), u.handle("maximum_"))
	runtime.KeepAlive(t)
	runtime.KeepAlive(u)
	check("maximum_", err)
	return t
}

// SqrtInPlace sets t = √t.
func (t *Tensor) SqrtInPlace() *Tensor {
	err := C.et_sqrt_(t.handle("sqrt_"))
	runtime.KeepAlive(t)
	check("sqrt_", err)
	return t
}

// ReluInPlace sets t = max(t, 0).
func (t *Tensor) ReluInPlace() *Tensor {
	err := C.et_relu_(t.handle("relu_"))
	runtime.KeepAlive(t)
	check("relu_", err)
	return t
}
