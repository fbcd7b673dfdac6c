package torch

/*
#include "edema_torch.h"
*/
import "C"

type binaryC func(C.et_tensor, C.et_tensor, *C.et_tensor) C.et_error
type scalarC func(C.et_tensor, C.double, *C.et_tensor) C.et_error

func (t *Tensor) binary(op string, f binaryC, u *Tensor) *Tensor {
	var out C.et_tensor
	check(op, f(t.handle(op), u.handle(op), &out))
	return wrap(out)
}

func (t *Tensor) scalar(op string, f scalarC, s float64) *Tensor {
	var out C.et_tensor
	check(op, f(t.handle(op), C.double(s), &out))
	return wrap(out)
}

// Add returns t + u (broadcasting).
func (t *Tensor) Add(u *Tensor) *Tensor { return t.AddScaled(u, 1) }

// AddScaled returns t + alpha·u.
func (t *Tensor) AddScaled(u *Tensor, alpha float64) *Tensor {
	var out C.et_tensor
	check("add", C.et_add(t.handle("add"), u.handle("add"), C.double(alpha), &out))
	return wrap(out)
}

// Sub returns t − u.
func (t *Tensor) Sub(u *Tensor) *Tensor {
	var out C.et_tensor
	check("sub", C.et_sub(t.handle("sub"), u.handle("sub"), 1, &out))
	return wrap(out)
}

func mulC(a, b C.et_tensor, o *C.et_tensor) C.et_error     { return C.et_mul(a, b, o) }
func divC(a, b C.et_tensor, o *C.et_tensor) C.et_error     { return C.et_div(a, b, o) }
func powC(a, b C.et_tensor, o *C.et_tensor) C.et_error     { return C.et_pow(a, b, o) }
func maximumC(a, b C.et_tensor, o *C.et_tensor) C.et_error { return C.et_maximum(a, b, o) }
func matmulC(a, b C.et_tensor, o *C.et_tensor) C.et_error  { return C.et_matmul(a, b, o) }

// Mul returns t·u element-wise.
func (t *Tensor) Mul(u *Tensor) *Tensor { return t.binary("mul", mulC, u) }

// Div returns t / u element-wise (true division).
func (t *Tensor) Div(u *Tensor) *Tensor { return t.binary("div", divC, u) }

// Maximum returns the element-wise maximum of t and u.
func (t *Tensor) Maximum(u *Tensor) *Tensor { return t.binary("maximum", maximumC, u) }

// Matmul returns the matrix product (with numpy-style batching).
func (t *Tensor) Matmul(u *Tensor) *Tensor { return t.binary("matmul", matmulC, u) }

// PowTensor returns t raised element-wise to the powers in u.
func (t *Tensor) PowTensor(u *Tensor) *Tensor { return t.binary("pow", powC, u) }

func addScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error {
	return C.et_add_scalar(a, s, o)
}
func subScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error {
	return C.et_sub_scalar(a, s, o)
}
func mulScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error {
	return C.et_mul_scalar(a, s, o)
}
func divScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error {
	return C.et_div_scalar(a, s, o)
}
func rsubScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error {
	return C.et_rsub_scalar(a, s, o)
}
func powScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error {
	return C.et_pow_scalar(a, s, o)
}
func clampMinC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_clamp_min(a, s, o) }
func clampMaxC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_clamp_max(a, s, o) }

// AddScalar returns t + s.
func (t *Tensor) AddScalar(s float64) *Tensor { return t.scalar("add", addScalarC, s) }

// SubScalar returns t − s.
func (t *Tensor) SubScalar(s float64) *Tensor { return t.scalar("sub", subScalarC, s) }

// MulScalar returns t·s.
func (t *Tensor) MulScalar(s float64) *Tensor { return t.scalar("mul", mulScalarC, s) }

// DivScalar returns t / s.
func (t *Tensor) DivScalar(s float64) *Tensor { return t.scalar("div", divScalarC, s) }

// RSubScalar returns s − t.
func (t *Tensor) RSubScalar(s float64) *Tensor { return t.scalar("rsub", rsubScalarC, s) }

// Pow returns t raised element-wise to the power e.
func (t *Tensor) Pow(e float64) *Tensor { return t.scalar("pow", powScalarC, e) }

// ClampMin returns max(t, min) element-wise.
func (t *Tensor) ClampMin(min float64) *Tensor { return t.scalar("clamp_min", clampMinC, min) }

// ClampMax returns min(t, max) element-wise.
func (t *Tensor) ClampMax(max float64) *Tensor { return t.scalar("clamp_max", clampMaxC, max) }

// Clamp limits every element to [min, max].
func (t *Tensor) Clamp(min, max float64) *Tensor {
	var out C.et_tensor
	check("clamp", C.et_clamp(t.handle("clamp"), C.double(min), C.double(max), &out))
	return wrap(out)
}

func expC(a C.et_tensor, o *C.et_tensor) C.et_error        { return C.et_exp(a, o) }
func logC(a C.et_tensor, o *C.et_tensor) C.et_error        { return C.et_log(a, o) }
func sqrtC(a C.et_tensor, o *C.et_tensor) C.et_error       { return C.et_sqrt(a, o) }
func negC(a C.et_tensor, o *C.et_tensor) C.et_error        { return C.et_neg(a, o) }
func absC(a C.et_tensor, o *C.et_tensor) C.et_error        { return C.et_abs(a, o) }
func reluC(a C.et_tensor, o *C.et_tensor) C.et_error       { return C.et_relu(a, o) }
func sigmoidC(a C.et_tensor, o *C.et_tensor) C.et_error    { return C.et_sigmoid(a, o) }
func sumC(a C.et_tensor, o *C.et_tensor) C.et_error        { return C.et_sum(a, o) }
func meanC(a C.et_tensor, o *C.et_tensor) C.et_error       { return C.et_mean(a, o) }
func maxAllC(a C.et_tensor, o *C.et_tensor) C.et_error     { return C.et_max_all(a, o) }
func minAllC(a C.et_tensor, o *C.et_tensor) C.et_error     { return C.et_min_all(a, o) }
func logicalNotC(a C.et_tensor, o *C.et_tensor) C.et_error { return C.et_logical_not(a, o) }
func squeezeC(a C.et_tensor, o *C.et_tensor) C.et_error    { return C.et_squeeze(a, o) }

// Exp returns e^t element-wise.
func (t *Tensor) Exp() *Tensor { return t.unary("exp", expC) }

// Log returns the natural logarithm element-wise.
func (t *Tensor) Log() *Tensor { return t.unary("log", logC) }

// Sqrt returns the square root element-wise.
func (t *Tensor) Sqrt() *Tensor { return t.unary("sqrt", sqrtC) }

// Neg returns −t.
func (t *Tensor) Neg() *Tensor { return t.unary("neg", negC) }

// Abs returns |t| element-wise.
func (t *Tensor) Abs() *Tensor { return t.unary("abs", absC) }

// Relu returns max(t, 0) element-wise.
func (t *Tensor) Relu() *Tensor { return t.unary("relu", reluC) }

// Sigmoid returns 1/(1+e^−t) element-wise.
func (t *Tensor) Sigmoid() *Tensor { return t.unary("sigmoid", sigmoidC) }

// Sum returns the sum of all elements as a zero-dimensional tensor.
func (t *Tensor) Sum() *Tensor { return t.unary("sum", sumC) }

// Mean returns the mean of all elements as a zero-dimensional tensor.
func (t *Tensor) Mean() *Tensor { return t.unary("mean", meanC) }

// Max returns the largest element as a zero-dimensional tensor.
func (t *Tensor) Max() *Tensor { return t.unary("max", maxAllC) }

// Min returns the smallest element as a zero-dimensional tensor.
func (t *Tensor) Min() *Tensor { return t.unary("min", minAllC) }

type dimsC func(C.et_tensor, *C.int64_t, C.int64_t, C.int, *C.et_tensor) C.et_error

func (t *Tensor) reduceDims(op string, f dimsC, dims []int64, keepdim bool) *Tensor {
	dp, nd := shapePtr(dims)
	var out C.et_tensor
	check(op, f(t.handle(op), dp, nd, cbool(keepdim), &out))
	return wrap(out)
}

func sumDimsC(a C.et_tensor, d *C.int64_t, n C.int64_t, k C.int, o *C.et_tensor) C.et_error {
	return C.et_sum_dims(a, d, n, k, o)
}
func meanDimsC(a C.et_tensor, d *C.int64_t, n C.int64_t, k C.int, o *C.et_tensor) C.et_error {
	return C.et_mean_dims(a, d, n, k, o)
}

// SumDims sums over the given dimensions.
func (t *Tensor) SumDims(dims []int64, keepdim bool) *Tensor {
	return t.reduceDims("sum", sumDimsC, dims, keepdim)
}

// MeanDims averages over the given dimensions.
func (t *Tensor) MeanDims(dims []int64, keepdim bool) *Tensor {
	return t.reduceDims("mean", meanDimsC, dims, keepdim)
}

// MaxDim returns the largest values along dim and their indices.
func (t *Tensor) MaxDim(dim int64, keepdim bool) (values, indices *Tensor) {
	var v, i C.et_tensor
	check("max", C.et_max_dim(t.handle("max"), C.int64_t(dim), cbool(keepdim), &v, &i))
	return wrap(v), wrap(i)
}

// Argmax returns the indices of the largest values along dim.
func (t *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	var out C.et_tensor
	check("argmax", C.et_argmax(t.handle("argmax"), C.int64_t(dim), cbool(keepdim), &out))
	return wrap(out)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func eqC(a, b C.et_tensor, o *C.et_tensor) C.et_error         { return C.et_eq(a, b, o) }
func neC(a, b C.et_tensor, o *C.et_tensor) C.et_error         { return C.et_ne(a, b, o) }
func ltC(a, b C.et_tensor, o *C.et_tensor) C.et_error         { return C.et_lt(a, b, o) }
func leC(a, b C.et_tensor, o *C.et_tensor) C.et_error         { return C.et_le(a, b, o) }
func gtC(a, b C.et_tensor, o *C.et_tensor) C.et_error         { return C.et_gt(a, b, o) }
func geC(a, b C.et_tensor, o *C.et_tensor) C.et_error         { return C.et_ge(a, b, o) }
func logicalAndC(a, b C.et_tensor, o *C.et_tensor) C.et_error { return C.et_logical_and(a, b, o) }
func logicalOrC(a, b C.et_tensor, o *C.et_tensor) C.et_error  { return C.et_logical_or(a, b, o) }

func eqScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_eq_scalar(a, s, o) }
func neScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_ne_scalar(a, s, o) }
func ltScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_lt_scalar(a, s, o) }
func leScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_le_scalar(a, s, o) }
func gtScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_gt_scalar(a, s, o) }
func geScalarC(a C.et_tensor, s C.double, o *C.et_tensor) C.et_error { return C.et_ge_scalar(a, s, o) }

// Eq returns the bool tensor t == u.
func (t *Tensor) Eq(u *Tensor) *Tensor { return t.binary("eq", eqC, u) }

// Ne returns the bool tensor t != u.
func (t *Tensor) Ne(u *Tensor) *Tensor { return t.binary("ne", neC, u) }

// Lt returns the bool tensor t < u.
func (t *Tensor) Lt(u *Tensor) *Tensor { return t.binary("lt", ltC, u) }

// Le returns the bool tensor t <= u.
func (t *Tensor) Le(u *Tensor) *Tensor { return t.binary("le", leC, u) }

// Gt returns the bool tensor t > u.
func (t *Tensor) Gt(u *Tensor) *Tensor { return t.binary("gt", gtC, u) }

// Ge returns the bool tensor t >= u.
func (t *Tensor) Ge(u *Tensor) *Tensor { return t.binary("ge", geC, u) }

// EqScalar returns the bool tensor t == s.
func (t *Tensor) EqScalar(s float64) *Tensor { return t.scalar("eq", eqScalarC, s) }

// NeScalar returns the bool tensor t != s.
func (t *Tensor) NeScalar(s float64) *Tensor { return t.scalar("ne", neScalarC, s) }

// LtScalar returns the bool tensor t < s.
func (t *Tensor) LtScalar(s float64) *Tensor { return t.scalar("lt", ltScalarC, s) }

// LeScalar returns the bool tensor t <= s.
func (t *Tensor) LeScalar(s float64) *Tensor { return t.scalar("le", leScalarC, s) }

// GtScalar returns the bool tensor t > s.
func (t *Tensor) GtScalar(s float64) *Tensor { return t.scalar("gt", gtScalarC, s) }

// GeScalar returns the bool tensor t >= s.
func (t *Tensor) GeScalar(s float64) *Tensor { return t.scalar("ge", geScalarC, s) }

// LogicalAnd returns t && u element-wise.
func (t *Tensor) LogicalAnd(u *Tensor) *Tensor { return t.binary("logical_and", logicalAndC, u) }

// LogicalOr returns t || u element-wise.
func (t *Tensor) LogicalOr(u *Tensor) *Tensor { return t.binary("logical_or", logicalOrC, u) }

// LogicalNot returns !t element-wise.
func (t *Tensor) LogicalNot() *Tensor { return t.unary("logical_not", logicalNotC) }

// Where picks a where cond is true and b elsewhere.
func Where(cond, a, b *Tensor) *Tensor {
	var out C.et_tensor
	check("where", C.et_where(cond.handle("where"), a.handle("where"), b.handle("where"), &out))
	return wrap(out)
}

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
	check("cat", C.et_cat(&hs[0], C.int64_t(len(hs)), C.int64_t(dim), &out))
	return wrap(out)
}

// Stack joins tensors of equal shape along a new dimension dim.
func Stack(ts []*Tensor, dim int64) *Tensor {
	hs := handles("stack", ts)
	var out C.et_tensor
	check("stack", C.et_stack(&hs[0], C.int64_t(len(hs)), C.int64_t(dim), &out))
	return wrap(out)
}

// Narrow returns the view of length elements from start along dim.
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	var out C.et_tensor
	check("narrow", C.et_narrow(t.handle("narrow"), C.int64_t(dim), C.int64_t(start), C.int64_t(length), &out))
	return wrap(out)
}

// Select returns the view at index along dim, without that dimension.
func (t *Tensor) Select(dim, index int64) *Tensor {
	var out C.et_tensor
	check("select", C.et_select(t.handle("select"), C.int64_t(dim), C.int64_t(index), &out))
	return wrap(out)
}

// IndexSelect gathers the entries of an int64 index tensor along dim.
func (t *Tensor) IndexSelect(dim int64, index *Tensor) *Tensor {
	var out C.et_tensor
	check("index_select", C.et_index_select(t.handle("index_select"), C.int64_t(dim), index.handle("index_select"), &out))
	return wrap(out)
}

type shapeC func(C.et_tensor, *C.int64_t, C.int64_t, *C.et_tensor) C.et_error

func (t *Tensor) withShape(op string, f shapeC, shape []int64) *Tensor {
	sp, nd := shapePtr(shape)
	var out C.et_tensor
	check(op, f(t.handle(op), sp, nd, &out))
	return wrap(out)
}

func flipC(a C.et_tensor, s *C.int64_t, n C.int64_t, o *C.et_tensor) C.et_error {
	return C.et_flip(a, s, n, o)
}
func reshapeC(a C.et_tensor, s *C.int64_t, n C.int64_t, o *C.et_tensor) C.et_error {
	return C.et_reshape(a, s, n, o)
}
func viewC(a C.et_tensor, s *C.int64_t, n C.int64_t, o *C.et_tensor) C.et_error {
	return C.et_view(a, s, n, o)
}
func permuteC(a C.et_tensor, s *C.int64_t, n C.int64_t, o *C.et_tensor) C.et_error {
	return C.et_permute(a, s, n, o)
}
func expandC(a C.et_tensor, s *C.int64_t, n C.int64_t, o *C.et_tensor) C.et_error {
	return C.et_expand(a, s, n, o)
}

// Flip reverses the order of elements along the given dimensions.
func (t *Tensor) Flip(dims ...int64) *Tensor { return t.withShape("flip", flipC, dims) }

// Reshape returns the elements in a new shape (a view when possible); one
// dimension may be −1.
func (t *Tensor) Reshape(shape ...int64) *Tensor { return t.withShape("reshape", reshapeC, shape) }

// View returns a view with a new shape; the layout must allow it.
func (t *Tensor) View(shape ...int64) *Tensor { return t.withShape("view", viewC, shape) }

// Permute reorders the dimensions.
func (t *Tensor) Permute(dims ...int64) *Tensor { return t.withShape("permute", permuteC, dims) }

// Expand broadcasts size-1 dimensions to shape without copying (−1 keeps a size).
func (t *Tensor) Expand(shape ...int64) *Tensor { return t.withShape("expand", expandC, shape) }

// Transpose swaps two dimensions.
func (t *Tensor) Transpose(dim0, dim1 int64) *Tensor {
	var out C.et_tensor
	check("transpose", C.et_transpose(t.handle("transpose"), C.int64_t(dim0), C.int64_t(dim1), &out))
	return wrap(out)
}

// Squeeze removes every dimension of size 1.
func (t *Tensor) Squeeze() *Tensor { return t.unary("squeeze", squeezeC) }

// SqueezeDim removes dimension dim if its size is 1.
func (t *Tensor) SqueezeDim(dim int64) *Tensor {
	var out C.et_tensor
	check("squeeze", C.et_squeeze_dim(t.handle("squeeze"), C.int64_t(dim), &out))
	return wrap(out)
}

// Unsqueeze inserts a dimension of size 1 at dim.
func (t *Tensor) Unsqueeze(dim int64) *Tensor {
	var out C.et_tensor
	check("unsqueeze", C.et_unsqueeze(t.handle("unsqueeze"), C.int64_t(dim), &out))
	return wrap(out)
}

// In-place forms, for optimizers and initialisation. They return t.

// AddInPlace sets t = t + alpha·u.
func (t *Tensor) AddInPlace(u *Tensor, alpha float64) *Tensor {
	check("add_", C.et_add_(t.handle("add_"), u.handle("add_"), C.double(alpha)))
	return t
}

// SubInPlace sets t = t − alpha·u.
func (t *Tensor) SubInPlace(u *Tensor, alpha float64) *Tensor {
	check("sub_", C.et_sub_(t.handle("sub_"), u.handle("sub_"), C.double(alpha)))
	return t
}

// MulInPlace sets t = t·u.
func (t *Tensor) MulInPlace(u *Tensor) *Tensor {
	check("mul_", C.et_mul_(t.handle("mul_"), u.handle("mul_")))
	return t
}

// DivInPlace sets t = t / u.
func (t *Tensor) DivInPlace(u *Tensor) *Tensor {
	check("div_", C.et_div_(t.handle("div_"), u.handle("div_")))
	return t
}

// AddScalarInPlace sets t = t + s.
func (t *Tensor) AddScalarInPlace(s float64) *Tensor {
	check("add_", C.et_add_scalar_(t.handle("add_"), C.double(s)))
	return t
}

// MulScalarInPlace sets t = t·s.
func (t *Tensor) MulScalarInPlace(s float64) *Tensor {
	check("mul_", C.et_mul_scalar_(t.handle("mul_"), C.double(s)))
	return t
}

// DivScalarInPlace sets t = t / s.
func (t *Tensor) DivScalarInPlace(s float64) *Tensor {
	check("div_", C.et_div_scalar_(t.handle("div_"), C.double(s)))
	return t
}

// AddcmulInPlace sets t = t + value·a·b.
func (t *Tensor) AddcmulInPlace(a, b *Tensor, value float64) *Tensor {
	check("addcmul_", C.et_addcmul_(t.handle("addcmul_"), a.handle("addcmul_"), b.handle("addcmul_"), C.double(value)))
	return t
}

// AddcdivInPlace sets t = t + value·a/b.
func (t *Tensor) AddcdivInPlace(a, b *Tensor, value float64) *Tensor {
	check("addcdiv_", C.et_addcdiv_(t.handle("addcdiv_"), a.handle("addcdiv_"), b.handle("addcdiv_"), C.double(value)))
	return t
}

// LerpInPlace sets t = t + weight·(end − t).
func (t *Tensor) LerpInPlace(end *Tensor, weight float64) *Tensor {
	check("lerp_", C.et_lerp_(t.handle("lerp_"), end.handle("lerp_"), C.double(weight)))
	return t
}

// MaximumInPlace sets t = max(t, u) element-wise.
func (t *Tensor) MaximumInPlace(u *Tensor) *Tensor {
	check("maximum_", C.et_maximum_(t.handle("maximum_"), u.handle("maximum_")))
	return t
}

// SqrtInPlace sets t = √t.
func (t *Tensor) SqrtInPlace() *Tensor {
	check("sqrt_", C.et_sqrt_(t.handle("sqrt_")))
	return t
}

// ReluInPlace sets t = max(t, 0).
func (t *Tensor) ReluInPlace() *Tensor {
	check("relu_", C.et_relu_(t.handle("relu_")))
	return t
}
