package torch

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
)

// The operations are checked against PyTorch at test time: the Go side
// generates every case's inputs, computes the outputs and the gradients of
// sum_k sum(out_k * W_k) with respect to the inputs, and one run of
// testdata/reference.py computes the same from the same bytes with Debian's
// PyTorch. Nothing is committed but the cases and the script.

// refInput describes one input tensor of a case; gen fills it.
type refInput struct {
	dtype  DType
	shape  []int64
	lo, hi float64 // uniform range of float inputs; [lo, hi) of integers
	step   float64 // when positive, values are rounded to multiples of step (for ties)
	grad   bool
}

func f32(shape ...int64) refInput {
	return refInput{dtype: Float32, shape: shape, lo: -2, hi: 2, grad: true}
}

func f64(shape ...int64) refInput { return f32(shape...).as(Float64) }

func ints(lo, hi int64, shape ...int64) refInput {
	return refInput{dtype: Int64, shape: shape, lo: float64(lo), hi: float64(hi)}
}

func bools(shape ...int64) refInput { return refInput{dtype: Bool, shape: shape, lo: 0, hi: 2} }

func (r refInput) in(lo, hi float64) refInput { r.lo, r.hi = lo, hi; return r }
func (r refInput) noGrad() refInput           { r.grad = false; return r }
func (r refInput) steps(s float64) refInput   { r.step = s; return r }
func (r refInput) as(d DType) refInput {
	r.dtype = d
	r.grad = r.grad && d.IsFloatingPoint()
	return r
}

// refCase is one operation to check: run computes in Go what py computes
// in Python from the inputs a, b, c, ... A case with a seed calls
// ManualSeed (torch.manual_seed in Python) right before the operation.
type refCase struct {
	name    string
	inputs  []refInput
	py      string
	run     func(in []*Tensor) []*Tensor
	seed    *uint64
	wantErr bool    // the operation must fail on both sides, with the same message
	rtol    float64 // relative tolerance; 0 picks one for the dtype
}

func one(t *Tensor) []*Tensor { return []*Tensor{t} }

func seed(s uint64) *uint64 { return &s }

func ins(r ...refInput) []refInput { return r }

func refCases() []refCase {
	conv := func(stride, pad, dil, groups int64) Conv2dOptions {
		return Conv2dOptions{Stride: [2]int64{stride, stride}, Padding: [2]int64{pad, pad},
			Dilation: [2]int64{dil, dil}, Groups: groups}
	}
	loss := func(red Reduction, ignore int64, w *Tensor) LossOptions {
		return LossOptions{Weight: w, Reduction: red, IgnoreIndex: ignore}
	}
	return []refCase{
		// Element-wise arithmetic.
		{name: "add", inputs: ins(f32(3, 4), f32(3, 4)), py: "out = a + b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Add(in[1])) }},
		{name: "add_broadcast", inputs: ins(f32(2, 3, 4), f32(4)), py: "out = a + b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Add(in[1])) }},
		{name: "add_scaled", inputs: ins(f32(3, 4), f32(1, 4)), py: "out = torch.add(a, b, alpha=-0.75)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].AddScaled(in[1], -0.75)) }},
		{name: "sub", inputs: ins(f32(5), f32(5)), py: "out = a - b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Sub(in[1])) }},
		{name: "mul", inputs: ins(f32(3, 1), f32(1, 4)), py: "out = a * b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Mul(in[1])) }},
		{name: "div", inputs: ins(f32(3, 4), f32(3, 4).in(0.5, 2)), py: "out = a / b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Div(in[1])) }},
		{name: "div_int", inputs: ins(ints(-9, 9, 6), ints(1, 4, 6)), py: "out = a / b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Div(in[1])) }},
		{name: "maximum", inputs: ins(f32(4, 3), f32(4, 3)), py: "out = torch.maximum(a, b)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Maximum(in[1])) }},
		{name: "pow_tensor", inputs: ins(f32(6).in(0.5, 2), f32(6).in(-1.5, 1.5)), py: "out = torch.pow(a, b)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].PowTensor(in[1])) }},
		{name: "add_scalar", inputs: ins(f32(2, 3)), py: "out = a + 1.5",
			run: func(in []*Tensor) []*Tensor { return one(in[0].AddScalar(1.5)) }},
		{name: "sub_scalar", inputs: ins(f32(2, 3)), py: "out = a - 0.25",
			run: func(in []*Tensor) []*Tensor { return one(in[0].SubScalar(0.25)) }},
		{name: "mul_scalar", inputs: ins(f32(2, 3)), py: "out = a * -3.0",
			run: func(in []*Tensor) []*Tensor { return one(in[0].MulScalar(-3)) }},
		{name: "div_scalar", inputs: ins(f32(2, 3)), py: "out = a / 7.0",
			run: func(in []*Tensor) []*Tensor { return one(in[0].DivScalar(7)) }},
		{name: "rsub_scalar", inputs: ins(f32(2, 3)), py: "out = 1.0 - a",
			run: func(in []*Tensor) []*Tensor { return one(in[0].RSubScalar(1)) }},
		{name: "add_scalar_int", inputs: ins(ints(-5, 5, 4)), py: "out = a + 2",
			run: func(in []*Tensor) []*Tensor { return one(in[0].AddScalar(2)) }},
		{name: "exp", inputs: ins(f32(3, 3)), py: "out = torch.exp(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Exp()) }},
		{name: "log", inputs: ins(f32(3, 3).in(0.1, 3)), py: "out = torch.log(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Log()) }},
		{name: "pow_scalar", inputs: ins(f32(7).in(0.2, 2)), py: "out = a ** 2.5",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Pow(2.5)) }},
		{name: "pow_square", inputs: ins(f32(7)), py: "out = a ** 2",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Pow(2)) }},
		{name: "sqrt", inputs: ins(f32(8).in(0.1, 4)), py: "out = torch.sqrt(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Sqrt()) }},
		{name: "neg", inputs: ins(f32(2, 2)), py: "out = -a",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Neg()) }},
		{name: "abs", inputs: ins(f32(9)), py: "out = torch.abs(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Abs()) }},
		{name: "clamp", inputs: ins(f32(10)), py: "out = torch.clamp(a, -0.5, 1.25)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clamp(-0.5, 1.25)) }},
		{name: "clamp_min", inputs: ins(f32(10)), py: "out = torch.clamp_min(a, 0.3)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].ClampMin(0.3)) }},
		{name: "clamp_max", inputs: ins(f32(10)), py: "out = torch.clamp_max(a, -0.3)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].ClampMax(-0.3)) }},
		{name: "relu", inputs: ins(f32(3, 5)), py: "out = torch.relu(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Relu()) }},
		{name: "sigmoid", inputs: ins(f32(3, 5).in(-6, 6)), py: "out = torch.sigmoid(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Sigmoid()) }},
		{name: "float64_chain", inputs: ins(f64(4, 4), f64(4, 4).in(0.5, 1.5)),
			py:  "out = (a * b).exp() / b.sqrt() - a.abs()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Mul(in[1]).Exp().Div(in[1].Sqrt()).Sub(in[0].Abs())) }},

		// In-place forms, applied to a copy so that autograd can differentiate through them.
		{name: "add_", inputs: ins(f32(3, 4), f32(4)), py: "out = a.clone().add_(b, alpha=0.5)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().AddInPlace(in[1], 0.5)) }},
		{name: "sub_", inputs: ins(f32(3, 4), f32(3, 4)), py: "out = a.clone().sub_(b, alpha=2)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().SubInPlace(in[1], 2)) }},
		{name: "mul_", inputs: ins(f32(3, 4), f32(3, 4)), py: "out = a.clone().mul_(b)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().MulInPlace(in[1])) }},
		{name: "div_", inputs: ins(f32(3, 4), f32(3, 4).in(0.5, 2)), py: "out = a.clone().div_(b)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().DivInPlace(in[1])) }},
		{name: "add_scalar_", inputs: ins(f32(5)), py: "out = a.clone().add_(-1.5)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().AddScalarInPlace(-1.5)) }},
		{name: "mul_scalar_", inputs: ins(f32(5)), py: "out = a.clone().mul_(0.9)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().MulScalarInPlace(0.9)) }},
		{name: "div_scalar_", inputs: ins(f32(5)), py: "out = a.clone().div_(3.0)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().DivScalarInPlace(3)) }},
		{name: "addcmul_", inputs: ins(f32(3, 4), f32(3, 4), f32(3, 4)), py: "out = a.clone().addcmul_(b, c, value=-0.3)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().AddcmulInPlace(in[1], in[2], -0.3)) }},
		{name: "addcdiv_", inputs: ins(f32(3, 4), f32(3, 4), f32(3, 4).in(0.5, 2)),
			py:  "out = a.clone().addcdiv_(b, c, value=0.01)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().AddcdivInPlace(in[1], in[2], 0.01)) }},
		{name: "lerp_", inputs: ins(f32(3, 4), f32(3, 4)), py: "out = a.clone().lerp_(b, 0.1)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().LerpInPlace(in[1], 0.1)) }},
		{name: "maximum_", inputs: ins(f32(6).noGrad(), f32(6).noGrad()), py: "out = torch.maximum(a, b, out=a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].MaximumInPlace(in[1])) }},
		{name: "sqrt_", inputs: ins(f32(6).in(0.1, 3)), py: "out = a.clone().sqrt_()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().SqrtInPlace()) }},
		{name: "relu_", inputs: ins(f32(6)), py: "out = a.clone().relu_()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Clone().ReluInPlace()) }},
		{name: "copy_", inputs: ins(f32(2, 3), f32(3)), py: "out = a.clone().copy_(b)",
			run: func(in []*Tensor) []*Tensor { t := in[0].Clone(); t.CopyFrom(in[1]); return one(t) }},

		// Reductions.
		{name: "sum", inputs: ins(f32(3, 4, 5)), py: "out = a.sum()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Sum()) }},
		{name: "mean", inputs: ins(f32(3, 4, 5)), py: "out = a.mean()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Mean()) }},
		{name: "sum_dims", inputs: ins(f32(3, 4, 5)), py: "out = a.sum(dim=(0, 2))",
			run: func(in []*Tensor) []*Tensor { return one(in[0].SumDims([]int64{0, 2}, false)) }},
		{name: "sum_dims_keepdim", inputs: ins(f32(3, 4, 5)), py: "out = a.sum(dim=(-1,), keepdim=True)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].SumDims([]int64{-1}, true)) }},
		{name: "mean_dims", inputs: ins(f32(3, 4, 5)), py: "out = a.mean(dim=(1,))",
			run: func(in []*Tensor) []*Tensor { return one(in[0].MeanDims([]int64{1}, false)) }},
		{name: "mean_dims_keepdim", inputs: ins(f32(2, 3, 4, 5)), py: "out = a.mean(dim=(0, 2, 3), keepdim=True)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].MeanDims([]int64{0, 2, 3}, true)) }},
		{name: "sum_int", inputs: ins(ints(-100, 100, 4, 5)), py: "out = a.sum()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Sum()) }},
		{name: "max_all", inputs: ins(f32(4, 5)), py: "out = a.max()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Max()) }},
		{name: "min_all", inputs: ins(f32(4, 5)), py: "out = a.min()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Min()) }},
		{name: "max_dim", inputs: ins(f32(3, 4, 5)), py: "out = tuple(a.max(dim=1))",
			run: func(in []*Tensor) []*Tensor { v, i := in[0].MaxDim(1, false); return []*Tensor{v, i} }},
		{name: "max_dim_keepdim", inputs: ins(f32(3, 4, 5)), py: "out = tuple(a.max(dim=-1, keepdim=True))",
			run: func(in []*Tensor) []*Tensor { v, i := in[0].MaxDim(-1, true); return []*Tensor{v, i} }},
		{name: "argmax", inputs: ins(f32(2, 4, 3, 3)), py: "out = a.argmax(dim=1)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Argmax(1, false)) }},
		{name: "argmax_keepdim", inputs: ins(f32(2, 4, 3)), py: "out = a.argmax(dim=2, keepdim=True)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Argmax(2, true)) }},

		// Comparisons, logic and where. Values on a grid make ties.
		{name: "eq", inputs: ins(f32(4, 5).steps(1).noGrad(), f32(4, 5).steps(1).noGrad()), py: "out = a == b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Eq(in[1])) }},
		{name: "ne", inputs: ins(f32(4, 5).steps(1).noGrad(), f32(5).steps(1).noGrad()), py: "out = a != b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Ne(in[1])) }},
		{name: "lt", inputs: ins(f32(4, 5).steps(1).noGrad(), f32(4, 5).steps(1).noGrad()), py: "out = a < b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Lt(in[1])) }},
		{name: "le", inputs: ins(f32(4, 5).steps(1).noGrad(), f32(4, 5).steps(1).noGrad()), py: "out = a <= b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Le(in[1])) }},
		{name: "gt", inputs: ins(f32(4, 5).steps(1).noGrad(), f32(4, 5).steps(1).noGrad()), py: "out = a > b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Gt(in[1])) }},
		{name: "ge", inputs: ins(f32(4, 5).steps(1).noGrad(), f32(4, 5).steps(1).noGrad()), py: "out = a >= b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Ge(in[1])) }},
		{name: "eq_int", inputs: ins(ints(0, 3, 10), ints(0, 3, 10)), py: "out = a == b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Eq(in[1])) }},
		{name: "eq_scalar", inputs: ins(ints(0, 4, 12)), py: "out = a == 2",
			run: func(in []*Tensor) []*Tensor { return one(in[0].EqScalar(2)) }},
		{name: "ne_scalar", inputs: ins(f32(12).steps(1).noGrad()), py: "out = a != 1.0",
			run: func(in []*Tensor) []*Tensor { return one(in[0].NeScalar(1)) }},
		{name: "lt_scalar", inputs: ins(f32(12).steps(0.5).noGrad()), py: "out = a < 0.5",
			run: func(in []*Tensor) []*Tensor { return one(in[0].LtScalar(0.5)) }},
		{name: "le_scalar", inputs: ins(f32(12).steps(0.5).noGrad()), py: "out = a <= 0.5",
			run: func(in []*Tensor) []*Tensor { return one(in[0].LeScalar(0.5)) }},
		{name: "gt_scalar", inputs: ins(f32(12).steps(0.5).noGrad()), py: "out = a > -0.5",
			run: func(in []*Tensor) []*Tensor { return one(in[0].GtScalar(-0.5)) }},
		{name: "ge_scalar", inputs: ins(f32(12).steps(0.5).noGrad()), py: "out = a >= -0.5",
			run: func(in []*Tensor) []*Tensor { return one(in[0].GeScalar(-0.5)) }},
		{name: "logical_and", inputs: ins(bools(3, 4), bools(3, 4)), py: "out = torch.logical_and(a, b)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].LogicalAnd(in[1])) }},
		{name: "logical_or", inputs: ins(bools(3, 4), bools(4)), py: "out = torch.logical_or(a, b)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].LogicalOr(in[1])) }},
		{name: "logical_not", inputs: ins(bools(3, 4)), py: "out = torch.logical_not(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].LogicalNot()) }},
		{name: "logical_not_float", inputs: ins(f32(8).steps(1).noGrad()), py: "out = torch.logical_not(a)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].LogicalNot()) }},
		{name: "where", inputs: ins(bools(3, 4), f32(3, 4), f32(4)), py: "out = torch.where(a, b, c)",
			run: func(in []*Tensor) []*Tensor { return one(Where(in[0], in[1], in[2])) }},

		// Shapes and indexing.
		{name: "cat", inputs: ins(f32(2, 3), f32(4, 3), f32(1, 3)), py: "out = torch.cat([a, b, c], 0)",
			run: func(in []*Tensor) []*Tensor { return one(Cat(in, 0)) }},
		{name: "cat_last", inputs: ins(f32(2, 3, 1), f32(2, 3, 2)), py: "out = torch.cat([a, b], -1)",
			run: func(in []*Tensor) []*Tensor { return one(Cat(in, -1)) }},
		{name: "stack", inputs: ins(f32(2, 3), f32(2, 3), f32(2, 3)), py: "out = torch.stack([a, b, c], 1)",
			run: func(in []*Tensor) []*Tensor { return one(Stack(in, 1)) }},
		{name: "narrow", inputs: ins(f32(4, 6)), py: "out = a.narrow(1, 2, 3)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Narrow(1, 2, 3)) }},
		{name: "slice", inputs: ins(f32(4, 7)), py: "out = a[:, 1:6:2]",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Slice(1, 1, 6, 2)) }},
		{name: "slice_past_end", inputs: ins(f32(5, 3)), py: "out = a[3:9:3]",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Slice(0, 3, 9, 3)) }},
		{name: "select", inputs: ins(f32(4, 6, 2)), py: "out = a.select(1, -2)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Select(1, -2)) }},
		{name: "index_select", inputs: ins(f32(5, 3), ints(0, 5, 7)), py: "out = a.index_select(0, b)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].IndexSelect(0, in[1])) }},
		{name: "flip", inputs: ins(f32(2, 3, 4)), py: "out = a.flip(0, 2)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Flip(0, 2)) }},
		{name: "reshape", inputs: ins(f32(2, 3, 4)), py: "out = a.transpose(0, 2).reshape(4, -1)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Transpose(0, 2).Reshape(4, -1)) }},
		{name: "view", inputs: ins(f32(2, 3, 4)), py: "out = a.view(6, 4)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].View(6, 4)) }},
		{name: "permute", inputs: ins(f32(2, 3, 4)), py: "out = a.permute(2, 0, 1).contiguous()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Permute(2, 0, 1).Contiguous()) }},
		{name: "transpose", inputs: ins(f32(2, 3, 4)), py: "out = a.transpose(-1, 0)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Transpose(-1, 0)) }},
		{name: "squeeze", inputs: ins(f32(1, 3, 1, 2)), py: "out = a.squeeze()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Squeeze()) }},
		{name: "squeeze_dim", inputs: ins(f32(1, 3, 1, 2)), py: "out = a.squeeze(2)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].SqueezeDim(2)) }},
		{name: "unsqueeze", inputs: ins(f32(3, 2)), py: "out = a.unsqueeze(-1)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Unsqueeze(-1)) }},
		{name: "expand", inputs: ins(f32(3, 1)), py: "out = a.expand(2, 3, 4)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Expand(2, 3, 4)) }},
		{name: "expand_keep", inputs: ins(f32(1, 3)), py: "out = a.expand(5, -1)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Expand(5, -1)) }},
		{name: "detach", inputs: ins(f32(3), f32(3)), py: "out = a.detach() * b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Detach().Mul(in[1])) }},

		// Matrix products.
		{name: "matmul", inputs: ins(f32(3, 4), f32(4, 5)), py: "out = a @ b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Matmul(in[1])) }},
		{name: "matmul_batched", inputs: ins(f32(2, 3, 4), f32(4, 2)), py: "out = a @ b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Matmul(in[1])) }},
		{name: "matmul_vector", inputs: ins(f32(3, 4), f32(4)), py: "out = a @ b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Matmul(in[1])) }},
		{name: "matmul_float64", inputs: ins(f64(5, 6), f64(2, 6, 3)), py: "out = a @ b",
			run: func(in []*Tensor) []*Tensor { return one(in[0].Matmul(in[1])) }},

		// Convolutions.
		{name: "conv2d", inputs: ins(f32(2, 3, 7, 6), f32(4, 3, 3, 3), f32(4)), py: "out = F.conv2d(a, b, c)",
			run: func(in []*Tensor) []*Tensor { return one(Conv2d(in[0], in[1], in[2], Conv2dOptions{})) }},
		{name: "conv2d_stride_padding", inputs: ins(f32(2, 3, 9, 8), f32(5, 3, 3, 3), f32(5)),
			py:  "out = F.conv2d(a, b, c, stride=2, padding=1)",
			run: func(in []*Tensor) []*Tensor { return one(Conv2d(in[0], in[1], in[2], conv(2, 1, 1, 1))) }},
		{name: "conv2d_dilation_nobias", inputs: ins(f32(1, 2, 11, 10), f32(3, 2, 3, 3)),
			py:  "out = F.conv2d(a, b, None, padding=2, dilation=2)",
			run: func(in []*Tensor) []*Tensor { return one(Conv2d(in[0], in[1], nil, conv(1, 2, 2, 1))) }},
		{name: "conv2d_groups", inputs: ins(f32(2, 4, 6, 6), f32(6, 2, 3, 3), f32(6)),
			py:  "out = F.conv2d(a, b, c, padding=1, groups=2)",
			run: func(in []*Tensor) []*Tensor { return one(Conv2d(in[0], in[1], in[2], conv(1, 1, 1, 2))) }},
		{name: "conv2d_asymmetric", inputs: ins(f32(1, 2, 7, 9), f32(2, 2, 1, 3)),
			py: "out = F.conv2d(a, b, None, stride=(1, 2), padding=(0, 1))",
			run: func(in []*Tensor) []*Tensor {
				return one(Conv2d(in[0], in[1], nil, Conv2dOptions{Stride: [2]int64{1, 2}, Padding: [2]int64{0, 1}}))
			}},
		{name: "conv2d_float64", inputs: ins(f64(1, 2, 5, 5), f64(3, 2, 3, 3), f64(3)),
			py:  "out = F.conv2d(a, b, c, padding=1)",
			run: func(in []*Tensor) []*Tensor { return one(Conv2d(in[0], in[1], in[2], conv(1, 1, 1, 1))) }},
		{name: "conv_transpose2d", inputs: ins(f32(2, 4, 5, 5), f32(4, 3, 2, 2), f32(3)),
			py:  "out = F.conv_transpose2d(a, b, c, stride=2)",
			run: func(in []*Tensor) []*Tensor { return one(ConvTranspose2d(in[0], in[1], in[2], conv(2, 0, 1, 1))) }},
		{name: "conv_transpose2d_padding_output_padding", inputs: ins(f32(1, 3, 4, 5), f32(3, 2, 3, 3), f32(2)),
			py: "out = F.conv_transpose2d(a, b, c, stride=2, padding=1, output_padding=1)",
			run: func(in []*Tensor) []*Tensor {
				o := conv(2, 1, 1, 1)
				o.OutputPadding = [2]int64{1, 1}
				return one(ConvTranspose2d(in[0], in[1], in[2], o))
			}},
		{name: "conv_transpose2d_groups_nobias", inputs: ins(f32(1, 4, 3, 3), f32(4, 1, 3, 3)),
			py:  "out = F.conv_transpose2d(a, b, None, groups=2)",
			run: func(in []*Tensor) []*Tensor { return one(ConvTranspose2d(in[0], in[1], nil, conv(1, 0, 1, 2))) }},

		// Normalisation, pooling, activations.
		{name: "batch_norm_train", inputs: ins(f32(4, 3, 5, 5), f32(3), f32(3), f32(3).noGrad(), f32(3).in(0.5, 2).noGrad()),
			py: "out = (F.batch_norm(a, d, e, b, c, True, 0.3, 1e-3), d, e)",
			run: func(in []*Tensor) []*Tensor {
				return []*Tensor{BatchNorm(in[0], in[1], in[2], in[3], in[4], true, 0.3, 1e-3), in[3], in[4]}
			}},
		{name: "batch_norm_eval", inputs: ins(f32(4, 3, 5, 5), f32(3), f32(3), f32(3).noGrad(), f32(3).in(0.5, 2).noGrad()),
			py: "out = (F.batch_norm(a, d, e, b, c, False, 0.1, 1e-5), d, e)",
			run: func(in []*Tensor) []*Tensor {
				return []*Tensor{BatchNorm(in[0], in[1], in[2], in[3], in[4], false, 0.1, 1e-5), in[3], in[4]}
			}},
		{name: "batch_norm_no_stats", inputs: ins(f32(3, 2, 4, 4), f32(2), f32(2)),
			py:  "out = F.batch_norm(a, None, None, b, c, True, 0.1, 1e-5)",
			run: func(in []*Tensor) []*Tensor { return one(BatchNorm(in[0], in[1], in[2], nil, nil, true, 0.1, 1e-5)) }},
		{name: "batch_norm_no_affine", inputs: ins(f32(3, 2, 4, 4), f32(2).noGrad(), f32(2).in(0.5, 2).noGrad()),
			py: "out = (F.batch_norm(a, b, c, None, None, True, 0.5, 1e-5), b, c)",
			run: func(in []*Tensor) []*Tensor {
				return []*Tensor{BatchNorm(in[0], nil, nil, in[1], in[2], true, 0.5, 1e-5), in[1], in[2]}
			}},
		{name: "max_pool2d", inputs: ins(f32(2, 3, 6, 8)), py: "out = F.max_pool2d(a, 2)",
			run: func(in []*Tensor) []*Tensor {
				return one(MaxPool2d(in[0], [2]int64{2, 2}, [2]int64{}, [2]int64{}, false))
			}},
		{name: "max_pool2d_stride_padding_ceil", inputs: ins(f32(1, 2, 7, 7)),
			py: "out = F.max_pool2d(a, 3, stride=2, padding=1, ceil_mode=True)",
			run: func(in []*Tensor) []*Tensor {
				return one(MaxPool2d(in[0], [2]int64{3, 3}, [2]int64{2, 2}, [2]int64{1, 1}, true))
			}},
		{name: "adaptive_max_pool2d", inputs: ins(f32(2, 3, 7, 9)), py: "out = F.adaptive_max_pool2d(a, (3, 4))",
			run: func(in []*Tensor) []*Tensor { return one(AdaptiveMaxPool2d(in[0], [2]int64{3, 4})) }},
		{name: "adaptive_avg_pool2d", inputs: ins(f32(2, 3, 7, 9)), py: "out = F.adaptive_avg_pool2d(a, (1, 1))",
			run: func(in []*Tensor) []*Tensor { return one(AdaptiveAvgPool2d(in[0], [2]int64{1, 1})) }},
		{name: "adaptive_avg_pool2d_uneven", inputs: ins(f32(1, 2, 7, 5)), py: "out = F.adaptive_avg_pool2d(a, (3, 2))",
			run: func(in []*Tensor) []*Tensor { return one(AdaptiveAvgPool2d(in[0], [2]int64{3, 2})) }},
		{name: "dropout_eval", inputs: ins(f32(4, 5)), py: "out = F.dropout(a, 0.5, False)",
			run: func(in []*Tensor) []*Tensor { return one(Dropout(in[0], 0.5, false)) }},
		{name: "dropout_train", inputs: ins(f32(6, 7)), py: "out = F.dropout(a, 0.4, True)", seed: seed(11),
			run: func(in []*Tensor) []*Tensor { return one(Dropout(in[0], 0.4, true)) }},
		{name: "softmax", inputs: ins(f32(3, 5).in(-4, 4)), py: "out = F.softmax(a, 1)",
			run: func(in []*Tensor) []*Tensor { return one(Softmax(in[0], 1)) }},
		{name: "softmax_dim0", inputs: ins(f32(3, 2, 2).in(-4, 4)), py: "out = F.softmax(a, 0)",
			run: func(in []*Tensor) []*Tensor { return one(Softmax(in[0], 0)) }},
		{name: "log_softmax", inputs: ins(f32(2, 4, 3, 3).in(-4, 4)), py: "out = F.log_softmax(a, 1)",
			run: func(in []*Tensor) []*Tensor { return one(LogSoftmax(in[0], 1)) }},

		// Losses.
		{name: "nll_loss", inputs: ins(f32(5, 4), ints(0, 4, 5)), py: "out = F.nll_loss(F.log_softmax(a, 1), b)",
			run: func(in []*Tensor) []*Tensor { return one(NLLLoss(LogSoftmax(in[0], 1), in[1], DefaultLossOptions())) }},
		{name: "nll_loss_weight_ignore_mean", inputs: ins(f32(6, 4), ints(0, 4, 6), f32(4).in(0.1, 2).noGrad()),
			py:  "out = F.nll_loss(a, b, weight=c, ignore_index=2)",
			run: func(in []*Tensor) []*Tensor { return one(NLLLoss(in[0], in[1], loss(ReductionMean, 2, in[2]))) }},
		{name: "nll_loss_sum", inputs: ins(f32(6, 4), ints(0, 4, 6)), py: "out = F.nll_loss(a, b, reduction='sum', ignore_index=0)",
			run: func(in []*Tensor) []*Tensor { return one(NLLLoss(in[0], in[1], loss(ReductionSum, 0, nil))) }},
		{name: "nll_loss_none", inputs: ins(f32(6, 4), ints(0, 4, 6), f32(4).in(0.1, 2).noGrad()),
			py:  "out = F.nll_loss(a, b, weight=c, reduction='none')",
			run: func(in []*Tensor) []*Tensor { return one(NLLLoss(in[0], in[1], loss(ReductionNone, -100, in[2]))) }},
		{name: "nll_loss_2d", inputs: ins(f32(2, 4, 3, 5), ints(0, 4, 2, 3, 5), f32(4).in(0.1, 2).noGrad()),
			py: "out = F.nll_loss(F.log_softmax(a, 1), b, weight=c, ignore_index=3)",
			run: func(in []*Tensor) []*Tensor {
				return one(NLLLoss(LogSoftmax(in[0], 1), in[1], loss(ReductionMean, 3, in[2])))
			}},
		{name: "nll_loss_2d_none", inputs: ins(f32(2, 3, 4, 4), ints(0, 3, 2, 4, 4)),
			py:  "out = F.nll_loss(a, b, reduction='none', ignore_index=1)",
			run: func(in []*Tensor) []*Tensor { return one(NLLLoss(in[0], in[1], loss(ReductionNone, 1, nil))) }},
		{name: "cross_entropy", inputs: ins(f32(5, 3), ints(0, 3, 5)), py: "out = F.cross_entropy(a, b)",
			run: func(in []*Tensor) []*Tensor { return one(CrossEntropy(in[0], in[1], DefaultLossOptions())) }},
		{name: "cross_entropy_2d_weight_ignore", inputs: ins(f32(2, 4, 3, 3), ints(0, 4, 2, 3, 3), f32(4).in(0.1, 2).noGrad()),
			py:  "out = F.cross_entropy(a, b, weight=c, ignore_index=0, reduction='sum')",
			run: func(in []*Tensor) []*Tensor { return one(CrossEntropy(in[0], in[1], loss(ReductionSum, 0, in[2]))) }},
		{name: "binary_cross_entropy", inputs: ins(f32(3, 4).in(0.05, 0.95), f32(3, 4).in(0, 1).noGrad()),
			py:  "out = F.binary_cross_entropy(a, b)",
			run: func(in []*Tensor) []*Tensor { return one(BinaryCrossEntropy(in[0], in[1], nil, ReductionMean)) }},
		{name: "binary_cross_entropy_weight_none", inputs: ins(f32(3, 4).in(0.05, 0.95), f32(3, 4).in(0, 1).noGrad(), f32(3, 4).in(0, 2).noGrad()),
			py:  "out = F.binary_cross_entropy(a, b, weight=c, reduction='none')",
			run: func(in []*Tensor) []*Tensor { return one(BinaryCrossEntropy(in[0], in[1], in[2], ReductionNone)) }},
		{name: "binary_cross_entropy_sum", inputs: ins(f32(7).in(0.05, 0.95), f32(7).in(0, 1).steps(1).noGrad()),
			py:  "out = F.binary_cross_entropy(a, b, reduction='sum')",
			run: func(in []*Tensor) []*Tensor { return one(BinaryCrossEntropy(in[0], in[1], nil, ReductionSum)) }},

		// Dtypes: creation from bytes, conversion, copying out.
		{name: "to_float16", inputs: ins(f32(9).in(-70000, 70000).noGrad()), py: "out = a.to(torch.float16)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Float16)) }},
		{name: "to_bfloat16", inputs: ins(f32(9).in(-1e6, 1e6).noGrad()), py: "out = a.to(torch.bfloat16)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(BFloat16)) }},
		{name: "float16_to_float32", inputs: ins(f32(9).as(Float16).noGrad()), py: "out = a.float()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Float32)) }},
		{name: "bfloat16_to_float64", inputs: ins(f32(9).as(BFloat16).noGrad()), py: "out = a.double()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Float64)) }},
		{name: "to_float64_grad", inputs: ins(f32(2, 3)), py: "out = a.double()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Float64)) }},
		{name: "to_int64", inputs: ins(f32(9).in(-50, 50).noGrad()), py: "out = a.long()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Int64)) }},
		{name: "to_int32", inputs: ins(f64(9).in(-50, 50).noGrad()), py: "out = a.int()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Int32)) }},
		{name: "to_uint8", inputs: ins(f32(9).in(0, 255).noGrad()), py: "out = a.to(torch.uint8)",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Uint8)) }},
		{name: "to_bool", inputs: ins(f32(9).steps(1).noGrad()), py: "out = a.bool()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Bool)) }},
		{name: "int32_to_float32", inputs: ins(ints(-1000, 1000, 9).as(Int32)), py: "out = a.float()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Float32)) }},
		{name: "uint8_to_int64", inputs: ins(ints(0, 256, 9).as(Uint8)), py: "out = a.long()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Int64)) }},
		{name: "bool_to_float32", inputs: ins(bools(9)), py: "out = a.float()",
			run: func(in []*Tensor) []*Tensor { return one(in[0].To(Float32)) }},
		{name: "zeros_ones_full", py: "out = (torch.zeros(2, 3, dtype=torch.int32), torch.ones(4, dtype=torch.bfloat16), " +
			"torch.full((2, 2), 2.5, dtype=torch.float16), torch.full((3,), 7, dtype=torch.uint8), torch.ones(2, dtype=torch.bool))",
			run: func([]*Tensor) []*Tensor {
				return []*Tensor{Zeros([]int64{2, 3}, Options{DType: Int32}), Ones([]int64{4}, Options{DType: BFloat16}),
					Full([]int64{2, 2}, 2.5, Options{DType: Float16}), Full([]int64{3}, 7, Options{DType: Uint8}),
					Ones([]int64{2}, Options{DType: Bool})}
			}},
		{name: "arange", py: "out = (torch.arange(0, 5, 0.5, dtype=torch.float64), torch.arange(-3, 9, 2, dtype=torch.int64), " +
			"torch.arange(0.25, 1.0, 0.125))",
			run: func([]*Tensor) []*Tensor {
				return []*Tensor{Arange(0, 5, 0.5, Options{DType: Float64}), Arange(-3, 9, 2, Options{DType: Int64}),
					Arange(0.25, 1, 0.125, Float32CPU)}
			}},
		{name: "scalar_tensor", py: "out = (torch.tensor(2.5), torch.tensor(-3, dtype=torch.int64))",
			run: func([]*Tensor) []*Tensor { return []*Tensor{Scalar(float32(2.5)), Scalar(int64(-3))} }},

		// Random numbers: the same seed gives PyTorch's numbers.
		{name: "rand", py: "out = torch.rand(3, 5)", seed: seed(1),
			run: func([]*Tensor) []*Tensor { return one(Rand([]int64{3, 5}, Float32CPU)) }},
		{name: "rand_float64", py: "out = torch.rand(40, dtype=torch.float64)", seed: seed(2),
			run: func([]*Tensor) []*Tensor { return one(Rand([]int64{40}, Options{DType: Float64})) }},
		{name: "randn_small", py: "out = torch.randn(7)", seed: seed(3),
			run: func([]*Tensor) []*Tensor { return one(Randn([]int64{7}, Float32CPU)) }},
		{name: "randn", py: "out = torch.randn(4, 33)", seed: seed(4),
			run: func([]*Tensor) []*Tensor { return one(Randn([]int64{4, 33}, Float32CPU)) }},
		{name: "randn_twice", py: "out = (torch.randn(20), torch.randn(3, 3))", seed: seed(1 << 40),
			run: func([]*Tensor) []*Tensor {
				return []*Tensor{Randn([]int64{20}, Float32CPU), Randn([]int64{3, 3}, Float32CPU)}
			}},
		{name: "normal_", py: "t = torch.empty(6, 7); t.normal_(0.5, 2.0); out = t", seed: seed(5),
			run: func([]*Tensor) []*Tensor { return one(Empty([]int64{6, 7}, Float32CPU).NormalInPlace(0.5, 2)) }},
		{name: "uniform_", py: "t = torch.empty(50, dtype=torch.float64); t.uniform_(-1, 3); out = t", seed: seed(6),
			run: func([]*Tensor) []*Tensor {
				return one(Empty([]int64{50}, Options{DType: Float64}).UniformInPlace(-1, 3))
			}},
		{name: "bernoulli_", py: "t = torch.empty(64); t.bernoulli_(0.3); out = t", seed: seed(7),
			run: func([]*Tensor) []*Tensor { return one(Empty([]int64{64}, Float32CPU).BernoulliInPlace(0.3)) }},
		{name: "kaiming_normal_fan_in_relu", py: "t = torch.empty(8, 4, 3, 3); torch.nn.init.kaiming_normal_(t, nonlinearity='relu'); out = t",
			seed: seed(8),
			run: func([]*Tensor) []*Tensor {
				return one(Empty([]int64{8, 4, 3, 3}, Float32CPU).KaimingNormalInPlace(0, FanIn, "relu"))
			}},
		{name: "kaiming_normal_fan_out_leaky", py: "t = torch.empty(6, 5, 3, 3); torch.nn.init.kaiming_normal_(t, a=0.2, mode='fan_out'); out = t",
			seed: seed(9),
			run: func([]*Tensor) []*Tensor {
				return one(Empty([]int64{6, 5, 3, 3}, Float32CPU).KaimingNormalInPlace(0.2, FanOut, "leaky_relu"))
			}},
		{name: "kaiming_uniform_conv_default", py: "t = torch.empty(16, 8, 3, 3); torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5)); out = t",
			seed: seed(10),
			run: func([]*Tensor) []*Tensor {
				return one(Empty([]int64{16, 8, 3, 3}, Float32CPU).KaimingUniformInPlace(math.Sqrt(5), FanIn, "leaky_relu"))
			}},
		{name: "kaiming_uniform_fan_out_relu", py: "t = torch.empty(4, 6, 2, 2); torch.nn.init.kaiming_uniform_(t, mode='fan_out', nonlinearity='relu'); out = t",
			seed: seed(12),
			run: func([]*Tensor) []*Tensor {
				return one(Empty([]int64{4, 6, 2, 2}, Float32CPU).KaimingUniformInPlace(0, FanOut, "relu"))
			}},
		{name: "init_constant_zeros", inputs: ins(f32(2, 3), f32(4)),
			py: "torch.nn.init.constant_(a, 0.25); torch.nn.init.zeros_(b); out = (a.detach().clone(), b.detach().clone())",
			run: func(in []*Tensor) []*Tensor {
				return []*Tensor{in[0].FillInPlace(0.25).Detach().Clone(), in[1].ZeroInPlace().Detach().Clone()}
			}},
		{name: "fans_and_gains", py: "fi, fo = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(8, 4, 3, 5)); " +
			"fi2, fo2 = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(7, 3)); " +
			"g = torch.nn.init.calculate_gain; " +
			"out = torch.tensor([fi, fo, fi2, fo2, g('linear'), g('conv2d'), g('conv_transpose2d'), g('sigmoid'), g('tanh'), " +
			"g('relu'), g('leaky_relu', 0.2), g('leaky_relu', 0), g('selu')], dtype=torch.float64)",
			run: func([]*Tensor) []*Tensor {
				fi, fo := Fans([]int64{8, 4, 3, 5})
				fi2, fo2 := Fans([]int64{7, 3})
				return one(FromSlice([]float64{float64(fi), float64(fo), float64(fi2), float64(fo2),
					Gain("linear", 0), Gain("conv2d", 0), Gain("conv_transpose2d", 0), Gain("sigmoid", 0), Gain("tanh", 0),
					Gain("relu", 0), Gain("leaky_relu", 0.2), Gain("leaky_relu", 0), Gain("selu", 0)}))
			}},

		// Errors: libtorch's message reaches Go as a *Error.
		{name: "error_matmul_shapes", inputs: ins(f32(2, 3), f32(4, 5)), py: "out = a @ b", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(in[0].Matmul(in[1])) }},
		{name: "error_conv2d_channels", inputs: ins(f32(1, 3, 5, 5), f32(4, 2, 3, 3)), py: "out = F.conv2d(a, b)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(Conv2d(in[0], in[1], nil, Conv2dOptions{})) }},
		{name: "error_nll_loss_float_target", inputs: ins(f32(3, 4), f32(3).noGrad()), py: "out = F.nll_loss(a, b)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(NLLLoss(in[0], in[1], DefaultLossOptions())) }},
		{name: "error_nll_loss_target_out_of_range", inputs: ins(f32(3, 4), ints(4, 6, 3)), py: "out = F.nll_loss(a, b)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(NLLLoss(in[0], in[1], DefaultLossOptions())) }},
		{name: "error_index_select_out_of_range", inputs: ins(f32(3, 2), ints(3, 5, 2)), py: "out = a.index_select(0, b)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(in[0].IndexSelect(0, in[1])) }},
		{name: "error_select_out_of_range", inputs: ins(f32(3, 2)), py: "out = a.select(0, 3)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(in[0].Select(0, 3)) }},
		{name: "error_cat_shapes", inputs: ins(f32(2, 3), f32(2, 4)), py: "out = torch.cat([a, b], 0)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(Cat(in, 0)) }},
		{name: "error_view_incompatible", inputs: ins(f32(2, 3, 4)), py: "out = a.transpose(0, 1).view(-1)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(in[0].Transpose(0, 1).View(-1)) }},
		{name: "error_add_shapes", inputs: ins(f32(2, 3), f32(4)), py: "out = a + b", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(in[0].Add(in[1])) }},
		{name: "error_backward_twice", inputs: ins(f32(3)), py: "y = (a * a).sum(); y.backward(); y.backward(); out = y", wantErr: true,
			run: func(in []*Tensor) []*Tensor { y := in[0].Mul(in[0]).Sum(); y.Backward(); y.Backward(); return one(y) }},
		{name: "error_leaf_in_place", inputs: ins(f32(3)), py: "out = a.add_(1.0)", wantErr: true,
			run: func(in []*Tensor) []*Tensor { return one(in[0].AddScalarInPlace(1)) }},
	}
}

// generate fills a case input with deterministic values.
func (r refInput) generate(rng *rand.Rand) *Tensor {
	n := int64(1)
	for _, s := range r.shape {
		n *= s
	}
	vals := make([]float64, n)
	for i := range vals {
		switch {
		case r.dtype == Bool || !r.dtype.IsFloatingPoint():
			vals[i] = math.Floor(r.lo + (r.hi-r.lo)*rng.Float64())
		default:
			vals[i] = r.lo + (r.hi-r.lo)*rng.Float64()
			if r.step > 0 {
				vals[i] = math.Round(vals[i]/r.step) * r.step
			}
		}
	}
	s := NewScope()
	defer s.Close()
	t := FromSlice(vals, r.shape...).To(r.dtype).Contiguous()
	s.Keep(t)
	return t
}

// weights is the fixed output weighting of reference.py: ((7i + 3k) mod 11
// − 5.5) / 4 for element i of output k, exact in every float dtype.
func weights(out *Tensor, k int) *Tensor {
	w := make([]float64, out.Numel())
	for i := range w {
		w[i] = (float64((7*i+3*k)%11) - 5.5) / 4
	}
	return FromSlice(w, out.Shape()...).ToOptions(Options{DType: out.DType(), Device: out.Device()})
}

// refTensor is a tensor as reference.py writes it.
type refTensor struct {
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Data  string  `json:"data"` // base64 of the little-endian elements
}

type refInputJSON struct {
	refTensor
	Grad bool `json:"grad"`
}

type refCaseJSON struct {
	Name   string         `json:"name"`
	Inputs []refInputJSON `json:"inputs"`
	Code   string         `json:"code"`
	Seed   *uint64        `json:"seed"`
}

type refResult struct {
	Outputs []refTensor  `json:"outputs"`
	Grads   []*refTensor `json:"grads"`
	Error   *string      `json:"error"`
}

func encodeTensor(t *Tensor) refTensor {
	return refTensor{DType: t.DType().String(), Shape: t.Shape(), Data: base64.StdEncoding.EncodeToString(t.Bytes())}
}

// goResult is what the Go side computed for a case.
type goResult struct {
	outputs []refTensor
	grads   []*refTensor
	err     error
}

func runGo(c refCase, inputs []*Tensor) (res goResult) {
	s := NewScope()
	defer s.Close()
	res.err = Try(func() {
		if c.seed != nil {
			ManualSeed(*c.seed)
		}
		outs := c.run(inputs)
		var loss *Tensor
		for k, o := range outs {
			if o.RequiresGrad() {
				term := o.Mul(weights(o, k)).Sum()
				if loss == nil {
					loss = term
				} else {
					loss = loss.Add(term)
				}
			}
		}
		if loss != nil {
			loss.Backward()
		}
		for _, o := range outs {
			res.outputs = append(res.outputs, encodeTensor(o))
		}
		for _, in := range inputs {
			var g *refTensor
			if in.RequiresGrad() {
				if gt := in.Grad(); gt != nil {
					e := encodeTensor(gt)
					g = &e
				}
			}
			res.grads = append(res.grads, g)
		}
	})
	return res
}

func TestOpsMatchPyTorch(t *testing.T) {
	pytorchtest.Python(t)
	cases := refCases()
	dir := t.TempDir()

	// Inputs, in Go and for Python.
	var specs []refCaseJSON
	inputs := make([][]*Tensor, len(cases))
	names := map[string]bool{}
	for i, c := range cases {
		require.False(t, names[c.name], "duplicate case %s", c.name)
		names[c.name] = true
		h := fnv.New64a()
		h.Write([]byte(c.name))
		rng := rand.New(rand.NewPCG(h.Sum64(), 2024))
		spec := refCaseJSON{Name: c.name, Code: c.py, Seed: c.seed, Inputs: []refInputJSON{}}
		for _, r := range c.inputs {
			x := r.generate(rng)
			spec.Inputs = append(spec.Inputs, refInputJSON{refTensor: encodeTensor(x), Grad: r.grad})
			if r.grad {
				x.SetRequiresGrad(true)
			}
			inputs[i] = append(inputs[i], x)
		}
		specs = append(specs, spec)
	}
	js, err := json.Marshal(specs)
	require.NoError(t, err)
	casesPath, resultsPath := filepath.Join(dir, "cases.json"), filepath.Join(dir, "results.json")
	require.NoError(t, os.WriteFile(casesPath, js, 0o644))

	// Go's results first: the inputs are modified in place by some cases.
	goResults := make([]goResult, len(cases))
	for i, c := range cases {
		goResults[i] = runGo(c, inputs[i])
	}

	pytorchtest.RunFile(t, "testdata/reference.py", casesPath, resultsPath)
	raw, err := os.ReadFile(resultsPath)
	require.NoError(t, err)
	var pyResults map[string]refResult
	require.NoError(t, json.Unmarshal(raw, &pyResults))

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			py, ok := pyResults[c.name]
			require.True(t, ok, "no PyTorch result")
			g := goResults[i]
			if c.wantErr {
				require.NotNil(t, py.Error, "PyTorch did not fail")
				var te *Error
				require.True(t, errors.As(g.err, &te), "Go did not fail with a *Error: %v", g.err)
				assert.Equal(t, firstLine(*py.Error), firstLine(te.Msg))
				return
			}
			require.Nil(t, py.Error, "PyTorch failed")
			require.NoError(t, g.err)
			require.Len(t, g.outputs, len(py.Outputs))
			for k := range py.Outputs {
				compareTensors(t, fmt.Sprintf("output %d", k), py.Outputs[k], g.outputs[k], c.rtol)
			}
			require.Len(t, g.grads, len(py.Grads))
			for k := range py.Grads {
				if py.Grads[k] == nil {
					assert.Nil(t, g.grads[k], "input %d: Go has a gradient, PyTorch none", k)
					continue
				}
				require.NotNil(t, g.grads[k], "input %d: PyTorch has a gradient, Go none", k)
				compareTensors(t, fmt.Sprintf("grad of input %d", k), *py.Grads[k], *g.grads[k], c.rtol)
			}
		})
	}
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// compareTensors checks dtype, shape and elements: exactly for integers and
// bools, within rtol·(|want| + max|want|) for floats, since Go and Python
// may split reductions differently over threads.
func compareTensors(t *testing.T, what string, want, got refTensor, rtol float64) {
	t.Helper()
	require.Equal(t, want.DType, got.DType, "%s: dtype", what)
	require.Equal(t, want.Shape, got.Shape, "%s: shape", what)
	dtype, err := ParseDType(want.DType)
	require.NoError(t, err)
	wb, err := base64.StdEncoding.DecodeString(want.Data)
	require.NoError(t, err)
	gb, err := base64.StdEncoding.DecodeString(got.Data)
	require.NoError(t, err)
	if !dtype.IsFloatingPoint() {
		require.Equal(t, wb, gb, "%s: elements", what)
		return
	}
	if rtol == 0 {
		rtol = map[DType]float64{Float64: 1e-12, Float32: 1e-5, Float16: 1e-3, BFloat16: 1e-2}[dtype]
	}
	w, g := floats(dtype, wb), floats(dtype, gb)
	require.Len(t, g, len(w))
	scale := 0.0
	for _, v := range w {
		scale = math.Max(scale, math.Abs(v))
	}
	bad := 0
	for i := range w {
		if w[i] == g[i] || math.IsNaN(w[i]) && math.IsNaN(g[i]) {
			continue // also equal infinities
		}
		if d := math.Abs(w[i] - g[i]); !(d <= rtol*(math.Abs(w[i])+scale)) {
			if bad++; bad <= 5 {
				t.Errorf("%s: element %d: got %v, PyTorch %v", what, i, g[i], w[i])
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d elements differ", what, bad, len(w))
	}
}

// floats decodes little-endian elements of a floating-point dtype.
func floats(d DType, b []byte) []float64 {
	size := d.Size()
	out := make([]float64, len(b)/size)
	for i := range out {
		e := b[i*size : (i+1)*size]
		switch d {
		case Float64:
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(e))
		case Float32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(e)))
		case BFloat16:
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(e)) << 16))
		case Float16:
			out[i] = halfToFloat(binary.LittleEndian.Uint16(e))
		}
	}
	return out
}

func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}
