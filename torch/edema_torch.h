/*
 * edema_torch.h: the plain-C interface of the libtorch shim.
 *
 * Every function that can fail returns an et_error: NULL on success, or a
 * message allocated with malloc that the caller releases with free(). The
 * message is libtorch's own (without its C++ backtrace). Results come back
 * through out-parameters, so each call carries its own error and no caller
 * ever reads a thread-local "last error".
 *
 * An et_tensor owns one reference to a libtorch tensor; et_free releases it.
 * Dtypes are c10::ScalarType codes and devices are (type, index) pairs with
 * type 0 for the CPU and 1 for CUDA. No C++ type crosses this header.
 *
 * A function added here also gets its `#cgo noescape` and `#cgo nocallback`
 * lines in torch/cgo.go (TestShimFunctionsAnnotated checks), and Go code
 * that passes a tensor's handle calls runtime.KeepAlive(tensor) after the
 * call (see torch/tensor.go).
 */
#ifndef EDEMA_TORCH_H
#define EDEMA_TORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_tensor_s *et_tensor;
typedef char *et_error;

/* Lifecycle and properties. */
void et_free(et_tensor t);
void et_free_many(const et_tensor *ts, int64_t n);
et_error et_dim(et_tensor t, int64_t *out);
/* et_shape sets *ndim and, when ndim <= cap, copies the sizes into out. */
et_error et_shape(et_tensor t, int64_t *out, int64_t cap, int64_t *ndim);
/* et_strides likewise, with the strides in elements. */
et_error et_strides(et_tensor t, int64_t *out, int64_t cap, int64_t *ndim);
et_error et_dtype(et_tensor t, int *out);
et_error et_device(et_tensor t, int *type, int *index);
et_error et_numel(et_tensor t, int64_t *out);
et_error et_requires_grad(et_tensor t, int *out);
et_error et_is_contiguous(et_tensor t, int *out);
et_error et_to_string(et_tensor t, char **out);

/* Creation. shape has ndim entries. */
et_error et_from_data(const void *data, size_t nbytes, const int64_t *shape, int64_t ndim, int dtype, et_tensor *out);
et_error et_zeros(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out);
et_error et_ones(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out);
et_error et_full(const int64_t *shape, int64_t ndim, double value, int dtype, int dev_type, int dev_index, et_tensor *out);
et_error et_empty(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out);
et_error et_arange(double start, double end, double step, int dtype, int dev_type, int dev_index, et_tensor *out);
et_error et_rand(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out);
et_error et_randn(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out);

/* Data out: copies the tensor's elements, converted to a contiguous CPU
 * layout, into dst (nbytes must equal numel * element size). */
et_error et_copy_data(et_tensor t, void *dst, size_t nbytes);
/* The value of a one-element tensor, converted to double. */
et_error et_item(et_tensor t, double *out);

/* Conversion and copies. */
et_error et_to(et_tensor t, int dtype, int dev_type, int dev_index, et_tensor *out);
et_error et_to_device_async(et_tensor t, int dev_type, int dev_index, et_tensor *out);
et_error et_pin_memory(et_tensor t, et_tensor *out);
et_error et_is_pinned(et_tensor t, int *out);
et_error et_contiguous(et_tensor t, et_tensor *out);
/* t in a memory format (a c10::MemoryFormat code: 0 contiguous, 2 channels
 * last), and whether it is laid out so. */
et_error et_contiguous_as(et_tensor t, int format, et_tensor *out);
et_error et_is_contiguous_as(et_tensor t, int format, int *out);
et_error et_clone(et_tensor t, et_tensor *out);
et_error et_detach(et_tensor t, et_tensor *out);
et_error et_copy_(et_tensor dst, et_tensor src);

/* Element-wise arithmetic. */
et_error et_add(et_tensor a, et_tensor b, et_tensor *out);
et_error et_add_scaled(et_tensor a, et_tensor b, double alpha, et_tensor *out);
et_error et_sub(et_tensor a, et_tensor b, et_tensor *out);
et_error et_mul(et_tensor a, et_tensor b, et_tensor *out);
et_error et_div(et_tensor a, et_tensor b, et_tensor *out);
et_error et_add_scalar(et_tensor a, double s, et_tensor *out);
et_error et_sub_scalar(et_tensor a, double s, et_tensor *out);
et_error et_mul_scalar(et_tensor a, double s, et_tensor *out);
et_error et_div_scalar(et_tensor a, double s, et_tensor *out);
et_error et_rsub_scalar(et_tensor a, double s, et_tensor *out);
et_error et_add_(et_tensor a, et_tensor b, double alpha);
et_error et_sub_(et_tensor a, et_tensor b, double alpha);
et_error et_mul_(et_tensor a, et_tensor b);
et_error et_div_(et_tensor a, et_tensor b);
et_error et_add_scalar_(et_tensor a, double s);
et_error et_mul_scalar_(et_tensor a, double s);
et_error et_div_scalar_(et_tensor a, double s);
et_error et_addcmul_(et_tensor a, et_tensor b, et_tensor c, double value);
et_error et_addcdiv_(et_tensor a, et_tensor b, et_tensor c, double value);
et_error et_lerp_(et_tensor a, et_tensor end, double weight);
et_error et_maximum(et_tensor a, et_tensor b, et_tensor *out);
et_error et_maximum_(et_tensor a, et_tensor b);

/* Unary. */
et_error et_exp(et_tensor a, et_tensor *out);
et_error et_log(et_tensor a, et_tensor *out);
et_error et_pow_scalar(et_tensor a, double exponent, et_tensor *out);
et_error et_pow(et_tensor a, et_tensor exponent, et_tensor *out);
et_error et_sqrt(et_tensor a, et_tensor *out);
et_error et_sqrt_(et_tensor a);
et_error et_neg(et_tensor a, et_tensor *out);
et_error et_abs(et_tensor a, et_tensor *out);
et_error et_clamp(et_tensor a, double min, double max, et_tensor *out);
et_error et_clamp_min(et_tensor a, double min, et_tensor *out);
et_error et_clamp_max(et_tensor a, double max, et_tensor *out);
et_error et_relu(et_tensor a, et_tensor *out);
et_error et_relu_(et_tensor a);
et_error et_sigmoid(et_tensor a, et_tensor *out);

/* Reductions. */
et_error et_sum(et_tensor a, et_tensor *out);
et_error et_sum_dims(et_tensor a, const int64_t *dims, int64_t ndims, int keepdim, et_tensor *out);
et_error et_mean(et_tensor a, et_tensor *out);
et_error et_mean_dims(et_tensor a, const int64_t *dims, int64_t ndims, int keepdim, et_tensor *out);
et_error et_max_all(et_tensor a, et_tensor *out);
et_error et_min_all(et_tensor a, et_tensor *out);
et_error et_max_dim(et_tensor a, int64_t dim, int keepdim, et_tensor *values, et_tensor *indices);
et_error et_argmax(et_tensor a, int64_t dim, int keepdim, et_tensor *out);

/* Comparisons and logic. */
et_error et_eq(et_tensor a, et_tensor b, et_tensor *out);
et_error et_ne(et_tensor a, et_tensor b, et_tensor *out);
et_error et_lt(et_tensor a, et_tensor b, et_tensor *out);
et_error et_le(et_tensor a, et_tensor b, et_tensor *out);
et_error et_gt(et_tensor a, et_tensor b, et_tensor *out);
et_error et_ge(et_tensor a, et_tensor b, et_tensor *out);
et_error et_eq_scalar(et_tensor a, double s, et_tensor *out);
et_error et_ne_scalar(et_tensor a, double s, et_tensor *out);
et_error et_lt_scalar(et_tensor a, double s, et_tensor *out);
et_error et_le_scalar(et_tensor a, double s, et_tensor *out);
et_error et_gt_scalar(et_tensor a, double s, et_tensor *out);
et_error et_ge_scalar(et_tensor a, double s, et_tensor *out);
et_error et_logical_and(et_tensor a, et_tensor b, et_tensor *out);
et_error et_logical_or(et_tensor a, et_tensor b, et_tensor *out);
et_error et_logical_not(et_tensor a, et_tensor *out);
et_error et_where(et_tensor cond, et_tensor a, et_tensor b, et_tensor *out);

/* Shape and indexing. */
et_error et_cat(const et_tensor *ts, int64_t n, int64_t dim, et_tensor *out);
et_error et_stack(const et_tensor *ts, int64_t n, int64_t dim, et_tensor *out);
et_error et_narrow(et_tensor a, int64_t dim, int64_t start, int64_t length, et_tensor *out);
et_error et_slice(et_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, et_tensor *out);
/* et_as_strided views a's storage with the given sizes and strides from a's
   own storage offset. */
et_error et_as_strided(et_tensor a, const int64_t *shape, const int64_t *strides, int64_t ndim, et_tensor *out);
et_error et_select(et_tensor a, int64_t dim, int64_t index, et_tensor *out);
et_error et_index_select(et_tensor a, int64_t dim, et_tensor index, et_tensor *out);
et_error et_flip(et_tensor a, const int64_t *dims, int64_t ndims, et_tensor *out);
et_error et_reshape(et_tensor a, const int64_t *shape, int64_t ndim, et_tensor *out);
et_error et_view(et_tensor a, const int64_t *shape, int64_t ndim, et_tensor *out);
et_error et_permute(et_tensor a, const int64_t *dims, int64_t ndims, et_tensor *out);
et_error et_transpose(et_tensor a, int64_t dim0, int64_t dim1, et_tensor *out);
et_error et_squeeze(et_tensor a, et_tensor *out);
et_error et_squeeze_dim(et_tensor a, int64_t dim, et_tensor *out);
et_error et_unsqueeze(et_tensor a, int64_t dim, et_tensor *out);
et_error et_expand(et_tensor a, const int64_t *shape, int64_t ndim, et_tensor *out);
et_error et_matmul(et_tensor a, et_tensor b, et_tensor *out);

/* Neural-network functions. bias, weight, running stats may be NULL. */
et_error et_conv2d(et_tensor x, et_tensor w, et_tensor b, const int64_t *stride, const int64_t *padding,
                   const int64_t *dilation, int64_t groups, et_tensor *out);
et_error et_conv_transpose2d(et_tensor x, et_tensor w, et_tensor b, const int64_t *stride, const int64_t *padding,
                             const int64_t *output_padding, int64_t groups, const int64_t *dilation, et_tensor *out);
et_error et_batch_norm(et_tensor x, et_tensor weight, et_tensor bias, et_tensor running_mean, et_tensor running_var,
                       int training, double momentum, double eps, et_tensor *out);
et_error et_max_pool2d(et_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                       const int64_t *dilation, int ceil_mode, et_tensor *out);
et_error et_adaptive_max_pool2d(et_tensor x, const int64_t *output_size, et_tensor *out);
et_error et_adaptive_avg_pool2d(et_tensor x, const int64_t *output_size, et_tensor *out);
et_error et_dropout(et_tensor x, double p, int training, et_tensor *out);
et_error et_linear(et_tensor x, et_tensor w, et_tensor b, et_tensor *out);
et_error et_avg_pool2d(et_tensor x, const int64_t *kernel, const int64_t *stride, const int64_t *padding, int ceil_mode,
                       int count_include_pad, et_tensor *out);
/* Upsampling to size (2 entries); scale_h and scale_w, when positive, are
 * the factors that place the samples, as F.interpolate's scale_factor. */
et_error et_upsample_nearest2d(et_tensor x, const int64_t *size, double scale_h, double scale_w, et_tensor *out);
et_error et_upsample_bilinear2d(et_tensor x, const int64_t *size, int align_corners, double scale_h, double scale_w,
                                et_tensor *out);
et_error et_group_norm(et_tensor x, int64_t groups, et_tensor weight, et_tensor bias, double eps, et_tensor *out);
et_error et_layer_norm(et_tensor x, const int64_t *shape, int64_t ndim, et_tensor weight, et_tensor bias, double eps,
                       et_tensor *out);
et_error et_leaky_relu(et_tensor x, double slope, et_tensor *out);
et_error et_gelu(et_tensor x, int tanh_approximation, et_tensor *out);
et_error et_softmax(et_tensor x, int64_t dim, et_tensor *out);
et_error et_log_softmax(et_tensor x, int64_t dim, et_tensor *out);
et_error et_nll_loss(et_tensor logp, et_tensor target, et_tensor weight, int64_t reduction, int64_t ignore_index,
                     et_tensor *out);
et_error et_binary_cross_entropy(et_tensor p, et_tensor target, et_tensor weight, int64_t reduction, et_tensor *out);
et_error et_cross_entropy(et_tensor logits, et_tensor target, et_tensor weight, int64_t reduction,
                          int64_t ignore_index, et_tensor *out);

/* Autograd. et_grad sets *out to NULL when the tensor has no gradient. */
et_error et_set_requires_grad(et_tensor t, int requires_grad);
et_error et_backward(et_tensor t, et_tensor grad, int retain_graph);
et_error et_grad(et_tensor t, et_tensor *out);
et_error et_zero_grad(et_tensor t);
et_error et_grad_enabled(int *out);
et_error et_set_grad_enabled(int enabled);
et_error et_inference_mode_enter(void **guard);
et_error et_inference_mode_exit(void *guard);
/* Autocast (automatic mixed precision), per OS thread: whether it is on for
 * a device type (0 CPU, 1 CUDA) and in which dtype (a ScalarType code); its
 * nesting depth and its cache of casted weights, which torch.autocast clears
 * when its outermost region ends. */
et_error et_autocast_enabled(int device_type, int *out);
et_error et_set_autocast_enabled(int device_type, int enabled);
et_error et_autocast_dtype(int device_type, int *out);
et_error et_set_autocast_dtype(int device_type, int dtype);
et_error et_autocast_increment_nesting(int *out);
et_error et_autocast_decrement_nesting(int *out);
et_error et_autocast_clear_cache(void);

/* In-place initialisation and random numbers. */
et_error et_manual_seed(uint64_t seed);
et_error et_normal_(et_tensor t, double mean, double std);
et_error et_uniform_(et_tensor t, double from, double to);
et_error et_fill_(et_tensor t, double value);
et_error et_zero_(et_tensor t);
et_error et_bernoulli_(et_tensor t, double p);

/* Runtime. */
et_error et_set_num_threads(int n);
et_error et_get_num_threads(int *out);
et_error et_cuda_is_available(int *out);
et_error et_cuda_device_count(int *out);
et_error et_cuda_synchronize(int device_index);
et_error et_version(char **out);

/* The host cache (host_cache.cpp): CPU tensors of 1 MiB or more take
 * blocks of an arena that the cache keeps when the tensors are freed, up to
 * limit bytes of free resident memory, for later tensors. enable installs it
 * as libtorch's CPU allocator (or changes the limit), disable restores the
 * previous allocator and gives the free memory back, empty gives it back.
 * stats fills out[0..7] with the free resident bytes, the limit, hits,
 * misses, the free blocks, the resident bytes of the arena, the most bytes
 * its tensors have held at once and the bytes of pages moved from free
 * blocks into new tensors. */
et_error et_host_cache_enable(int64_t limit);
et_error et_host_cache_disable(void);
et_error et_host_cache_empty(void);
et_error et_host_cache_stats(int64_t *out);

/* Module stores: make t use src's data (device, dtype, storage) in place, as
 * PyTorch's `param.data = src` does; every handle to t sees the change. */
et_error et_set_data(et_tensor t, et_tensor src);

#ifdef __cplusplus
}
#endif

#endif
