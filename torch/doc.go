// Package torch is an idiomatic Go API over libtorch, the C++ core of
// PyTorch: tensors on the CPU or CUDA, the operations and neural-network
// functions the edema networks need, and libtorch's autograd.
//
// Go links only libedema_torch.so, a thin C shim (torch/shim) built by the
// repository's CMakeLists.txt; the shim links libtorch. A Go binary built
// against one build of the shim runs unchanged against another built
// elsewhere, for example against a CUDA libtorch (set LD_LIBRARY_PATH).
//
// # Errors
//
// Tensor operations panic with a *Error when libtorch rejects them (wrong
// shapes, wrong dtypes, a freed tensor...). Every C++ exception is caught in
// the shim and reaches Go with libtorch's own message; nothing aborts the
// process. Code that offers an error-returning API on top of tensor
// operations recovers these panics with [Recover] or [Try], so model and loss
// code reads like the mathematics it implements while callers of every
// high-level API (models, checkpoints, training) still get an ordinary error.
// Panics that are not a *Error are never swallowed.
//
// # Memory
//
// A Tensor owns a reference to libtorch memory that the Go garbage collector
// does not see, so it is released deterministically:
//
//   - [Tensor.Free] releases one tensor at once. Freeing twice is harmless;
//     using a freed tensor panics with a *Error that says so.
//   - A [Scope] frees, on Close, every tensor the current goroutine made
//     while it was open, except those passed to [Scope.Keep]. A training step
//     or a forward pass opens one scope and keeps only what outlives it.
//   - A cleanup registered with the runtime frees tensors that are neither
//     freed nor owned by a scope once they become unreachable. It is a
//     backstop, not a way of managing memory.
//
// # Threads and goroutines
//
// libtorch keeps its grad mode and inference mode per OS thread, and Go moves
// goroutines between OS threads between cgo calls. [NoGrad], [InferenceMode]
// and [WithGradEnabled] therefore lock the goroutine to its OS thread for the
// duration of the function they run, set the mode there and restore the
// previous mode before unlocking, so the mode holds for every operation the
// function performs and never leaks to other goroutines. Goroutines started
// inside such a function do not inherit the mode.
//
// Operations on distinct tensors are safe from any number of goroutines
// (libtorch's reference counting is atomic), and so is reading a tensor from
// several goroutines at once. Writing a tensor (in-place operations, Free,
// optimizer steps) while another goroutine uses it is not. A Scope belongs to
// the goroutine that opened it. Each shim call reports its own error through
// its return value, so no goroutine can observe another's error.
package torch
