// Package torch is an idiomatic Go API over libtorch, the C++ core of
// PyTorch: tensors on the CPU or CUDA, the operations and neural-network
// functions the edema networks need, and libtorch's autograd.
//
// Go links only libedema_torch.so, a thin C shim (torch/shim) built by the
// repository's CMakeLists.txt; the shim links libtorch. Each shim function
// wraps one libtorch call and catches every C++ exception. A Go binary
// built against one build of the shim runs unchanged against another built
// elsewhere, for example against a CUDA libtorch: LD_LIBRARY_PATH takes
// precedence over the binary's run path (scripts/gpu-check.sh does this).
//
// Operations are checked for values and gradients against PyTorch itself
// (reference_test.go runs testdata/reference.py with Debian's python3-torch).
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
// Each shim call returns its own error (NULL or a message), so no goroutine
// can observe another's error and none depends on a thread-local "last
// error" of the OS thread it happened to run on.
//
// # Numbers
//
// Scalar arguments are float64. One that holds a whole number reaches
// libtorch as an integer, so that integer tensors stay integer: AddScalar(2)
// on an int64 tensor gives int64, as t + 2 does in Python (where t + 2.0
// would give float32).
//
// # Memory
//
// A Tensor owns a reference to libtorch memory that the Go garbage collector
// does not see, so it is released deterministically:
//
//   - [Tensor.Free] releases one tensor at once. Freeing twice is harmless;
//     using a freed tensor panics with a *Error that says so.
//   - A [Scope] frees, on Close, every tensor the current goroutine made
//     while it was open, except those passed to [Scope.Keep], in one call
//     into the shim. A training step or a forward pass opens one scope and
//     keeps only what outlives it.
//   - A cleanup registered with the runtime frees tensors that are neither
//     freed nor owned by a scope once they become unreachable. It is a
//     backstop, not a way of managing memory: it costs a few microseconds
//     per tensor and frees memory only when the collector runs.
//
// What a freed tensor releases goes back to libtorch's CPU allocator, which
// hands it to malloc; [EnableHostCache] makes a caching allocator serve
// large tensors instead (the edema command does): an arena that the next
// pass of a network reuses, which spares it the page faults of its
// activations and keeps the memory held close to the most in use at once. The cache is the shim's one piece of policy in
// C++, because libtorch calls its allocator from C++.
//
// # Threads and goroutines
//
// libtorch keeps its grad mode, inference mode and autocast per OS thread,
// and Go moves goroutines between OS threads between cgo calls. [NoGrad],
// [InferenceMode], [WithGradEnabled] and [Autocast] therefore lock the goroutine to its OS thread for the
// duration of the function they run, set the mode there and restore the
// previous mode before unlocking (also when the function panics), so the
// mode holds for every operation the function performs and never leaks to
// other goroutines. Goroutines started inside such a function do not inherit
// the mode.
//
// Autograd depends on the OS thread too: libtorch gives each node of the
// graph a sequence number from a counter kept per OS thread
// (at::sequence_number) and the backward pass runs ready nodes in the
// order of those numbers. A forward pass whose operations ran on several
// threads gets numbers from several counters, so the order in which the
// gradients of a tensor with several consumers are summed (UNet++'s x00 …
// x30), and with it their rounding, would change from run to run. Every
// sequence of calls whose result depends on such state therefore runs on
// one OS thread by construction: an open [Scope] locks its goroutine to
// its thread until it is closed, and the networks' forward pass, a
// training step (forward, loss, backward, optimizer step) and inference
// each run inside one. Code that builds graphs outside a scope gets
// correct gradients, summed in an order that may vary in the last bits.
//
// [SetNumThreads] sets libtorch's intra-op thread count for the process.
// libtorch's OpenMP backend applies it to the calling OS thread only, so the
// shim re-applies it on any other thread before that thread's next call.
// Each OS thread that runs a parallel operation has its own OpenMP pool.
//
// What is safe from several goroutines at once:
//
//   - any operation on distinct tensors, and reading the same tensors
//     (as inputs of operations, Shape, Data...) from several goroutines:
//     libtorch's reference counting is atomic;
//   - scopes, each goroutine with its own;
//   - grad-mode functions, which affect only their own goroutine;
//   - CUDA operations from several goroutines: each call selects the device
//     of its tensors.
//
// What is not: writing a tensor (in-place operations, Free, CopyFrom,
// backward passes accumulating into the same leaves, optimizer steps) while
// another goroutine uses it; closing or keeping into a Scope from a goroutine
// other than its own (Close panics with a *Error). The random generator is
// shared: goroutines drawing random numbers concurrently get reproducible
// numbers only as a whole, not each. The tests run with -race.
//
// # Cost of a call
//
// An operation on small tensors costs one cgo call plus libtorch's own work.
// Shim functions are declared noescape and nocallback (cgo.go), so the Go
// side allocates only the Tensor it returns; inside a scope, freeing costs
// no call of its own. docs/BENCHMARKS.md has the figures.
package torch
