// Neural-network functions: one ATen call each.
#include "shim.hpp"

extern "C" {

et_error et_conv2d(et_tensor x, et_tensor w, et_tensor b, const int64_t *stride, const int64_t *padding,
                   const int64_t *dilation, int64_t groups, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::conv2d(x->t, w->t, et_opt(b), et_dims(stride, 2), et_dims(padding, 2),
                                   et_dims(dilation, 2), groups)))
}

et_error et_conv_transpose2d(et_tensor x, et_tensor w, et_tensor b, const int64_t *stride, const int64_t *padding,
                             const int64_t *output_padding, int64_t groups, const int64_t *dilation,
                             et_tensor *out) {
  ET_TRY(*out = et_wrap(at::conv_transpose2d(x->t, w->t, et_opt(b), et_dims(stride, 2), et_dims(padding, 2),
                                             et_dims(output_padding, 2), groups, et_dims(dilation, 2))))
}

et_error et_batch_norm(et_tensor x, et_tensor weight, et_tensor bias, et_tensor running_mean, et_tensor running_var,
                       int training, double momentum, double eps, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::batch_norm(x->t, et_opt(weight), et_opt(bias), et_opt(running_mean), et_opt(running_var),
                                       training != 0, momentum, eps, at::globalContext().userEnabledCuDNN())))
}

et_error et_max_pool2d(et_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                       const int64_t *dilation, int ceil_mode, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::max_pool2d(x->t, et_dims(kernel, 2), et_dims(stride, 2), et_dims(padding, 2),
                                       et_dims(dilation, 2), ceil_mode != 0)))
}

et_error et_adaptive_max_pool2d(et_tensor x, const int64_t *output_size, et_tensor *out) {
  ET_TRY(*out = et_wrap(std::get<0>(at::adaptive_max_pool2d(x->t, et_dims(output_size, 2)))))
}

et_error et_adaptive_avg_pool2d(et_tensor x, const int64_t *output_size, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::adaptive_avg_pool2d(x->t, et_dims(output_size, 2))))
}

et_error et_linear(et_tensor x, et_tensor w, et_tensor b, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::linear(x->t, w->t, et_opt(b))))
}

et_error et_avg_pool2d(et_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding, int ceil_mode,
                       int count_include_pad, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::avg_pool2d(x->t, et_dims(kernel, 2), et_dims(stride, 2), et_dims(padding, 2),
                                       ceil_mode != 0, count_include_pad != 0)))
}

// A scale of 0 or less stands for none: the sizes alone place the samples.
static c10::optional<double> et_scale(double s) { return s > 0 ? c10::optional<double>(s) : c10::nullopt; }

et_error et_upsample_nearest2d(et_tensor x, const int64_t *size, double scale_h, double scale_w, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::upsample_nearest2d(x->t, et_dims(size, 2), et_scale(scale_h), et_scale(scale_w))))
}

et_error et_upsample_bilinear2d(et_tensor x, const int64_t *size, int align_corners, double scale_h, double scale_w,
                                et_tensor *out) {
  ET_TRY(*out = et_wrap(at::upsample_bilinear2d(x->t, et_dims(size, 2), align_corners != 0, et_scale(scale_h),
                                                et_scale(scale_w))))
}

et_error et_group_norm(et_tensor x, int64_t groups, et_tensor weight, et_tensor bias, double eps, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::group_norm(x->t, groups, et_opt(weight), et_opt(bias), eps,
                                       at::globalContext().userEnabledCuDNN())))
}

et_error et_layer_norm(et_tensor x, const int64_t *shape, int64_t ndim, et_tensor weight, et_tensor bias, double eps,
                       et_tensor *out) {
  ET_TRY(*out = et_wrap(at::layer_norm(x->t, et_dims(shape, ndim), et_opt(weight), et_opt(bias), eps,
                                       at::globalContext().userEnabledCuDNN())))
}

et_error et_leaky_relu(et_tensor x, double slope, et_tensor *out) { ET_TRY(*out = et_wrap(at::leaky_relu(x->t, slope))) }

et_error et_gelu(et_tensor x, int tanh_approximation, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::gelu(x->t, tanh_approximation != 0 ? "tanh" : "none")))
}

et_error et_dropout(et_tensor x, double p, int training, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::dropout(x->t, p, training != 0)))
}

et_error et_softmax(et_tensor x, int64_t dim, et_tensor *out) { ET_TRY(*out = et_wrap(at::softmax(x->t, dim))) }

et_error et_log_softmax(et_tensor x, int64_t dim, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::log_softmax(x->t, dim)))
}

et_error et_nll_loss(et_tensor logp, et_tensor target, et_tensor weight, int64_t reduction, int64_t ignore_index,
                     et_tensor *out) {
  ET_TRY(*out = et_wrap(at::nll_loss_nd(logp->t, target->t, et_opt(weight), reduction, ignore_index)))
}

et_error et_binary_cross_entropy(et_tensor p, et_tensor target, et_tensor weight, int64_t reduction, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::binary_cross_entropy(p->t, target->t, et_opt(weight), reduction)))
}

et_error et_cross_entropy(et_tensor logits, et_tensor target, et_tensor weight, int64_t reduction,
                          int64_t ignore_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::cross_entropy_loss(logits->t, target->t, et_opt(weight), reduction, ignore_index)))
}

}  // extern "C"
