// Tensor math, comparisons and shape operations: one libtorch call each.
#include <vector>

#include "shim.hpp"

#define ET_BINARY(name, expr) \
  et_error name(et_tensor a, et_tensor b, et_tensor *out) { ET_TRY(*out = et_wrap(expr)) }
#define ET_SCALAR(name, expr) \
  et_error name(et_tensor a, double s, et_tensor *out) { ET_TRY(*out = et_wrap(expr)) }
#define ET_UNARY(name, expr) \
  et_error name(et_tensor a, et_tensor *out) { ET_TRY(*out = et_wrap(expr)) }

extern "C" {

ET_BINARY(et_add, at::add(a->t, b->t))
et_error et_add_scaled(et_tensor a, et_tensor b, double alpha, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::add(a->t, b->t, et_scalar(alpha))))
}
ET_BINARY(et_sub, at::sub(a->t, b->t))
ET_BINARY(et_mul, at::mul(a->t, b->t))
ET_BINARY(et_div, at::div(a->t, b->t))
ET_SCALAR(et_add_scalar, at::add(a->t, et_scalar(s)))
ET_SCALAR(et_sub_scalar, at::sub(a->t, et_scalar(s)))
ET_SCALAR(et_mul_scalar, at::mul(a->t, et_scalar(s)))
ET_SCALAR(et_div_scalar, at::div(a->t, et_scalar(s)))
ET_SCALAR(et_rsub_scalar, at::rsub(a->t, et_scalar(s)))

et_error et_add_(et_tensor a, et_tensor b, double alpha) { ET_TRY(a->t.add_(b->t, et_scalar(alpha))) }
et_error et_sub_(et_tensor a, et_tensor b, double alpha) { ET_TRY(a->t.sub_(b->t, et_scalar(alpha))) }
et_error et_mul_(et_tensor a, et_tensor b) { ET_TRY(a->t.mul_(b->t)) }
et_error et_div_(et_tensor a, et_tensor b) { ET_TRY(a->t.div_(b->t)) }
et_error et_add_scalar_(et_tensor a, double s) { ET_TRY(a->t.add_(et_scalar(s))) }
et_error et_mul_scalar_(et_tensor a, double s) { ET_TRY(a->t.mul_(et_scalar(s))) }
et_error et_div_scalar_(et_tensor a, double s) { ET_TRY(a->t.div_(et_scalar(s))) }
et_error et_addcmul_(et_tensor a, et_tensor b, et_tensor c, double value) { ET_TRY(a->t.addcmul_(b->t, c->t, et_scalar(value))) }
et_error et_addcdiv_(et_tensor a, et_tensor b, et_tensor c, double value) { ET_TRY(a->t.addcdiv_(b->t, c->t, et_scalar(value))) }
et_error et_lerp_(et_tensor a, et_tensor end, double weight) { ET_TRY(a->t.lerp_(end->t, weight)) }
ET_BINARY(et_maximum, at::maximum(a->t, b->t))
et_error et_maximum_(et_tensor a, et_tensor b) { ET_TRY(at::maximum_out(a->t, a->t, b->t)) }

ET_UNARY(et_exp, at::exp(a->t))
ET_UNARY(et_log, at::log(a->t))
ET_SCALAR(et_pow_scalar, at::pow(a->t, et_scalar(s)))
ET_BINARY(et_pow, at::pow(a->t, b->t))
ET_UNARY(et_sqrt, at::sqrt(a->t))
et_error et_sqrt_(et_tensor a) { ET_TRY(a->t.sqrt_()) }
ET_UNARY(et_neg, at::neg(a->t))
ET_UNARY(et_abs, at::abs(a->t))
et_error et_clamp(et_tensor a, double min, double max, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::clamp(a->t, et_scalar(min), et_scalar(max))))
}
ET_SCALAR(et_clamp_min, at::clamp_min(a->t, et_scalar(s)))
ET_SCALAR(et_clamp_max, at::clamp_max(a->t, et_scalar(s)))
ET_UNARY(et_relu, at::relu(a->t))
et_error et_relu_(et_tensor a) { ET_TRY(at::relu_(a->t)) }
ET_UNARY(et_sigmoid, at::sigmoid(a->t))

ET_UNARY(et_sum, at::sum(a->t))
et_error et_sum_dims(et_tensor a, const int64_t *dims, int64_t ndims, int keepdim, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::sum(a->t, et_dims(dims, ndims), keepdim != 0)))
}
ET_UNARY(et_mean, at::mean(a->t))
et_error et_mean_dims(et_tensor a, const int64_t *dims, int64_t ndims, int keepdim, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::mean(a->t, et_dims(dims, ndims), keepdim != 0)))
}
ET_UNARY(et_max_all, at::max(a->t))
ET_UNARY(et_min_all, at::min(a->t))
et_error et_max_dim(et_tensor a, int64_t dim, int keepdim, et_tensor *values, et_tensor *indices) {
  ET_TRY(auto r = at::max(a->t, dim, keepdim != 0); *values = et_wrap(std::get<0>(r));
         *indices = et_wrap(std::get<1>(r)))
}
et_error et_argmax(et_tensor a, int64_t dim, int keepdim, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::argmax(a->t, dim, keepdim != 0)))
}

ET_BINARY(et_eq, at::eq(a->t, b->t))
ET_BINARY(et_ne, at::ne(a->t, b->t))
ET_BINARY(et_lt, at::lt(a->t, b->t))
ET_BINARY(et_le, at::le(a->t, b->t))
ET_BINARY(et_gt, at::gt(a->t, b->t))
ET_BINARY(et_ge, at::ge(a->t, b->t))
ET_SCALAR(et_eq_scalar, at::eq(a->t, et_scalar(s)))
ET_SCALAR(et_ne_scalar, at::ne(a->t, et_scalar(s)))
ET_SCALAR(et_lt_scalar, at::lt(a->t, et_scalar(s)))
ET_SCALAR(et_le_scalar, at::le(a->t, et_scalar(s)))
ET_SCALAR(et_gt_scalar, at::gt(a->t, et_scalar(s)))
ET_SCALAR(et_ge_scalar, at::ge(a->t, et_scalar(s)))
ET_BINARY(et_logical_and, at::logical_and(a->t, b->t))
ET_BINARY(et_logical_or, at::logical_or(a->t, b->t))
ET_UNARY(et_logical_not, at::logical_not(a->t))
et_error et_where(et_tensor cond, et_tensor a, et_tensor b, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::where(cond->t, a->t, b->t)))
}

static std::vector<at::Tensor> et_list(const et_tensor *ts, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v.push_back(ts[i]->t);
  return v;
}

et_error et_cat(const et_tensor *ts, int64_t n, int64_t dim, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::cat(et_list(ts, n), dim)))
}
et_error et_stack(const et_tensor *ts, int64_t n, int64_t dim, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::stack(et_list(ts, n), dim)))
}
et_error et_narrow(et_tensor a, int64_t dim, int64_t start, int64_t length, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.narrow(dim, start, length)))
}

et_error et_slice(et_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.slice(dim, start, end, step)))
}
et_error et_as_strided(et_tensor a, const int64_t *shape, const int64_t *strides, int64_t ndim, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.as_strided(et_dims(shape, ndim), et_dims(strides, ndim))))
}
et_error et_select(et_tensor a, int64_t dim, int64_t index, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.select(dim, index)))
}
et_error et_index_select(et_tensor a, int64_t dim, et_tensor index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::index_select(a->t, dim, index->t)))
}
et_error et_flip(et_tensor a, const int64_t *dims, int64_t ndims, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::flip(a->t, et_dims(dims, ndims))))
}
et_error et_reshape(et_tensor a, const int64_t *shape, int64_t ndim, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.reshape(et_dims(shape, ndim))))
}
et_error et_view(et_tensor a, const int64_t *shape, int64_t ndim, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.view(et_dims(shape, ndim))))
}
et_error et_permute(et_tensor a, const int64_t *dims, int64_t ndims, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.permute(et_dims(dims, ndims))))
}
et_error et_transpose(et_tensor a, int64_t dim0, int64_t dim1, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.transpose(dim0, dim1)))
}
ET_UNARY(et_squeeze, a->t.squeeze())
et_error et_squeeze_dim(et_tensor a, int64_t dim, et_tensor *out) { ET_TRY(*out = et_wrap(a->t.squeeze(dim))) }
et_error et_unsqueeze(et_tensor a, int64_t dim, et_tensor *out) { ET_TRY(*out = et_wrap(a->t.unsqueeze(dim))) }
et_error et_expand(et_tensor a, const int64_t *shape, int64_t ndim, et_tensor *out) {
  ET_TRY(*out = et_wrap(a->t.expand(et_dims(shape, ndim))))
}
ET_BINARY(et_matmul, at::matmul(a->t, b->t))

}  // extern "C"
