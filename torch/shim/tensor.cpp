// Tensor lifecycle, creation, properties, autograd and runtime settings.
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <ATen/Parallel.h>

#include <sstream>

#include "shim.hpp"

std::atomic<int> et_num_threads{0};

extern "C" {

void et_free(et_tensor t) { delete t; }

void et_free_many(const et_tensor *ts, int64_t n) {
  for (int64_t i = 0; i < n; i++) delete ts[i];
}

et_error et_dim(et_tensor t, int64_t *out) { ET_TRY(*out = t->t.dim()) }

et_error et_shape(et_tensor t, int64_t *out, int64_t cap, int64_t *ndim) {
  ET_TRY(auto sizes = t->t.sizes(); *ndim = static_cast<int64_t>(sizes.size());
         if (*ndim <= cap) std::copy(sizes.begin(), sizes.end(), out))
}

et_error et_strides(et_tensor t, int64_t *out, int64_t cap, int64_t *ndim) {
  ET_TRY(auto strides = t->t.strides(); *ndim = static_cast<int64_t>(strides.size());
         if (*ndim <= cap) std::copy(strides.begin(), strides.end(), out))
}

et_error et_dtype(et_tensor t, int *out) { ET_TRY(*out = static_cast<int>(t->t.scalar_type())) }

et_error et_device(et_tensor t, int *type, int *index) {
  ET_TRY(auto d = t->t.device(); *type = d.is_cuda() ? 1 : 0; *index = d.has_index() ? d.index() : 0)
}

et_error et_numel(et_tensor t, int64_t *out) { ET_TRY(*out = t->t.numel()) }

et_error et_requires_grad(et_tensor t, int *out) { ET_TRY(*out = t->t.requires_grad() ? 1 : 0) }

et_error et_is_contiguous(et_tensor t, int *out) { ET_TRY(*out = t->t.is_contiguous() ? 1 : 0) }

et_error et_to_string(et_tensor t, char **out) {
  ET_TRY(std::ostringstream s; s << t->t; *out = et_message(s.str().c_str()))
}

et_error et_from_data(const void *data, size_t nbytes, const int64_t *shape, int64_t ndim, int dtype, et_tensor *out) {
  ET_TRY(auto r = at::empty(et_dims(shape, ndim), et_options(dtype, 0, 0));
         TORCH_CHECK(r.nbytes() == nbytes, "data holds ", nbytes, " bytes, shape needs ", r.nbytes());
         if (nbytes > 0) std::memcpy(r.data_ptr(), data, nbytes); *out = et_wrap(std::move(r)))
}

et_error et_zeros(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::zeros(et_dims(shape, ndim), et_options(dtype, dev_type, dev_index))))
}

et_error et_ones(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::ones(et_dims(shape, ndim), et_options(dtype, dev_type, dev_index))))
}

et_error et_full(const int64_t *shape, int64_t ndim, double value, int dtype, int dev_type, int dev_index,
                 et_tensor *out) {
  ET_TRY(*out = et_wrap(at::full(et_dims(shape, ndim), value, et_options(dtype, dev_type, dev_index))))
}

et_error et_empty(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::empty(et_dims(shape, ndim), et_options(dtype, dev_type, dev_index))))
}

et_error et_arange(double start, double end, double step, int dtype, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::arange(start, end, step, et_options(dtype, dev_type, dev_index))))
}

et_error et_rand(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::rand(et_dims(shape, ndim), et_options(dtype, dev_type, dev_index))))
}

et_error et_randn(const int64_t *shape, int64_t ndim, int dtype, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(at::randn(et_dims(shape, ndim), et_options(dtype, dev_type, dev_index))))
}

et_error et_item(et_tensor t, double *out) { ET_TRY(*out = t->t.item<double>()) }

et_error et_copy_data(et_tensor t, void *dst, size_t nbytes) {
  ET_TRY(auto c = t->t.detach().to(at::kCPU).contiguous();
         TORCH_CHECK(c.nbytes() == nbytes, "destination holds ", nbytes, " bytes, tensor has ", c.nbytes());
         if (nbytes > 0) std::memcpy(dst, c.data_ptr(), nbytes))
}

et_error et_to(et_tensor t, int dtype, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(t->t.to(et_options(dtype, dev_type, dev_index))))
}

et_error et_to_device_async(et_tensor t, int dev_type, int dev_index, et_tensor *out) {
  ET_TRY(*out = et_wrap(t->t.to(et_options(static_cast<int>(t->t.scalar_type()), dev_type, dev_index), /*non_blocking=*/true)))
}

et_error et_pin_memory(et_tensor t, et_tensor *out) { ET_TRY(*out = et_wrap(t->t.pin_memory())) }
et_error et_is_pinned(et_tensor t, int *out) { ET_TRY(*out = t->t.is_pinned() ? 1 : 0) }

et_error et_contiguous(et_tensor t, et_tensor *out) { ET_TRY(*out = et_wrap(t->t.contiguous())) }
et_error et_contiguous_as(et_tensor t, int format, et_tensor *out) {
  ET_TRY(*out = et_wrap(t->t.contiguous(static_cast<at::MemoryFormat>(format))))
}
et_error et_is_contiguous_as(et_tensor t, int format, int *out) {
  ET_TRY(*out = t->t.is_contiguous(static_cast<at::MemoryFormat>(format)) ? 1 : 0)
}
et_error et_clone(et_tensor t, et_tensor *out) { ET_TRY(*out = et_wrap(t->t.clone())) }
et_error et_detach(et_tensor t, et_tensor *out) { ET_TRY(*out = et_wrap(t->t.detach())) }
et_error et_copy_(et_tensor dst, et_tensor src) { ET_TRY(dst->t.copy_(src->t)) }

// Replacing a tensor's data in place, so that moving a model to another
// device or dtype keeps every handle to its parameters valid.
et_error et_set_data(et_tensor t, et_tensor src) { ET_TRY(t->t.set_data(src->t)) }

et_error et_set_requires_grad(et_tensor t, int requires_grad) { ET_TRY(t->t.requires_grad_(requires_grad != 0)) }

et_error et_backward(et_tensor t, et_tensor grad, int retain_graph) {
  ET_TRY(t->t.backward(et_opt(grad), retain_graph != 0))
}

et_error et_grad(et_tensor t, et_tensor *out) {
  ET_TRY(const auto &g = t->t.grad(); *out = g.defined() ? et_wrap(g) : nullptr)
}

et_error et_zero_grad(et_tensor t) { ET_TRY(t->t.mutable_grad().reset()) }

et_error et_grad_enabled(int *out) { ET_TRY(*out = c10::GradMode::is_enabled() ? 1 : 0) }

et_error et_set_grad_enabled(int enabled) { ET_TRY(c10::GradMode::set_enabled(enabled != 0)) }

et_error et_inference_mode_enter(void **guard) { ET_TRY(*guard = new c10::InferenceMode(true)) }

et_error et_inference_mode_exit(void *guard) { ET_TRY(delete static_cast<c10::InferenceMode *>(guard)) }

// Autocast, per device type. libtorch 2.4 takes the device type as an
// argument; earlier versions have one function per device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define ET_AUTOCAST_BY_DEVICE 1
#endif

et_error et_autocast_enabled(int device_type, int *out) {
  ET_TRY(auto type = static_cast<c10::DeviceType>(device_type);
#ifdef ET_AUTOCAST_BY_DEVICE
         *out = at::autocast::is_autocast_enabled(type);
#else
         *out = type == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
  )
}

et_error et_set_autocast_enabled(int device_type, int enabled) {
  ET_TRY(auto type = static_cast<c10::DeviceType>(device_type);
#ifdef ET_AUTOCAST_BY_DEVICE
         at::autocast::set_autocast_enabled(type, enabled != 0);
#else
         if (type == c10::DeviceType::CPU) at::autocast::set_cpu_enabled(enabled != 0);
         else at::autocast::set_enabled(enabled != 0);
#endif
  )
}

et_error et_autocast_dtype(int device_type, int *out) {
  ET_TRY(auto type = static_cast<c10::DeviceType>(device_type);
#ifdef ET_AUTOCAST_BY_DEVICE
         *out = static_cast<int>(at::autocast::get_autocast_dtype(type));
#else
         *out = static_cast<int>(type == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                                              : at::autocast::get_autocast_gpu_dtype());
#endif
  )
}

et_error et_set_autocast_dtype(int device_type, int dtype) {
  ET_TRY(auto type = static_cast<c10::DeviceType>(device_type); auto st = static_cast<at::ScalarType>(dtype);
#ifdef ET_AUTOCAST_BY_DEVICE
         at::autocast::set_autocast_dtype(type, st);
#else
         if (type == c10::DeviceType::CPU) at::autocast::set_autocast_cpu_dtype(st);
         else at::autocast::set_autocast_gpu_dtype(st);
#endif
  )
}

et_error et_autocast_increment_nesting(int *out) { ET_TRY(*out = at::autocast::increment_nesting()) }

et_error et_autocast_decrement_nesting(int *out) { ET_TRY(*out = at::autocast::decrement_nesting()) }

et_error et_autocast_clear_cache(void) { ET_TRY(at::autocast::clear_cache()) }

et_error et_manual_seed(uint64_t seed) { ET_TRY(at::manual_seed(seed)) }

// Initialisation runs under a no-grad guard, as torch.nn.init does, so that
// it applies to leaves that require grad. The guard lives within this one
// call, on this one thread.
et_error et_normal_(et_tensor t, double mean, double std) {
  ET_TRY(at::NoGradGuard g; t->t.normal_(mean, std))
}
et_error et_uniform_(et_tensor t, double from, double to) {
  ET_TRY(at::NoGradGuard g; t->t.uniform_(from, to))
}
et_error et_fill_(et_tensor t, double value) { ET_TRY(at::NoGradGuard g; t->t.fill_(value)) }
et_error et_zero_(et_tensor t) { ET_TRY(at::NoGradGuard g; t->t.zero_()) }
et_error et_bernoulli_(et_tensor t, double p) { ET_TRY(at::NoGradGuard g; t->t.bernoulli_(p)) }

et_error et_set_num_threads(int n) {
  ET_TRY(TORCH_CHECK(n > 0, "the number of threads must be positive, got ", n); et_num_threads.store(n);
         et_sync_num_threads(); et_set_blas_threads(n))
}
et_error et_get_num_threads(int *out) { ET_TRY(*out = at::get_num_threads()) }

et_error et_cuda_is_available(int *out) { ET_TRY(*out = torch::cuda::is_available() ? 1 : 0) }
et_error et_cuda_device_count(int *out) { ET_TRY(*out = static_cast<int>(torch::cuda::device_count())) }
et_error et_cuda_synchronize(int device_index) { ET_TRY(torch::cuda::synchronize(device_index)) }

et_error et_version(char **out) { ET_TRY(*out = et_message(TORCH_VERSION)) }

}  // extern "C"
