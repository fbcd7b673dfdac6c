// Internal helpers shared by the shim's translation units.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <exception>

#include "edema_torch.h"

struct et_tensor_s {
  at::Tensor t;
};

// et_message copies msg into a malloc'd string for the Go side to free.
inline char *et_message(const char *msg) {
  size_t n = std::strlen(msg);
  char *out = static_cast<char *>(std::malloc(n + 1));
  if (out != nullptr) std::memcpy(out, msg, n + 1);
  return out;
}

inline et_tensor et_wrap(at::Tensor t) { return new et_tensor_s{std::move(t)}; }

// The intra-op thread count the caller asked for; 0 until et_set_num_threads.
extern std::atomic<int> et_num_threads;

// et_sync_num_threads applies et_num_threads on the calling thread. Go runs
// each call on whichever OS thread its goroutine is on, but libtorch's OpenMP
// backend applies at::set_num_threads to the calling thread only: every other
// thread reads the setting once, at its first parallel operation, and keeps
// it. So each call brings its thread up to date first (a relaxed load and a
// compare when nothing changed).
inline void et_sync_num_threads() {
  static thread_local int applied = 0;
  int n = et_num_threads.load(std::memory_order_relaxed);
  if (n != applied) {
    applied = n;
    at::set_num_threads(n);
  }
}

// et_set_blas_threads sets the thread count of OpenBLAS, when libtorch
// calls into it (Debian's libtorch does, for its matrix products and
// convolutions): at::set_num_threads leaves OpenBLAS's own thread pool at
// the count it read from the environment at start, so without this a run
// with one libtorch thread still multiplies matrices on all cores, and its
// sums are not those of a one-thread run. OpenBLAS's setting is global, so
// one call serves every thread. Builds with MKL or no OpenBLAS lack the
// symbol and need nothing.
inline void et_set_blas_threads(int n) {
  using setter = void (*)(int);
  static setter set = reinterpret_cast<setter>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set != nullptr) set(n);
}

// ET_TRY runs a body and turns any C++ exception into an error string, so
// that no exception ever crosses into Go.
#define ET_TRY(...)                                            \
  try {                                                        \
    et_sync_num_threads();                                     \
    __VA_ARGS__;                                               \
    return nullptr;                                            \
  } catch (const c10::Error &e) {                              \
    return et_message(e.what_without_backtrace());             \
  } catch (const std::exception &e) {                          \
    return et_message(e.what());                               \
  } catch (...) {                                              \
    return et_message("unknown C++ exception");                \
  }

// An optional tensor argument: NULL stands for None. An undefined tensor is
// what ATen's optional-tensor parameters treat as absent.
inline at::Tensor et_opt(et_tensor t) { return t == nullptr ? at::Tensor() : t->t; }

// et_scalar is a number argument as libtorch sees it. Go passes every number
// as a double; one that holds a whole number becomes an integer Scalar, so
// that an integer tensor stays integer (t + 2 keeps int64, as in Python)
// and integer in-place operations accept it.
inline at::Scalar et_scalar(double v) {
  if (std::trunc(v) == v && std::abs(v) < 9.0e18 && !(v == 0 && std::signbit(v))) {
    return at::Scalar(static_cast<int64_t>(v));
  }
  return at::Scalar(v);
}

inline at::IntArrayRef et_dims(const int64_t *p, int64_t n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

inline at::TensorOptions et_options(int dtype, int dev_type, int dev_index) {
  auto device = dev_type == 1 ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(dev_index)) : at::Device(at::kCPU);
  return at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype)).device(device);
}
