// Package handle hands a tensor's shim handle to the binding's other cgo
// packages (torch/distributed, torch/jit), and takes the handles they get
// from the shim back as tensors. They call the same shim as package torch
// but cannot see its unexported fields, and a public accessor would let
// any program free a tensor behind the torch package's back. Package torch
// sets Of when it initialises; the internal path keeps every other module
// out.
package handle

import "unsafe"

// Of returns the et_tensor of t, a *torch.Tensor, for op; it panics with a
// *torch.Error when t is nil or freed. The caller keeps t alive
// (runtime.KeepAlive) until the shim is done with the handle.
var Of func(op string, t any) unsafe.Pointer

// Wrap returns a *torch.Tensor, as an any, that owns c, an et_tensor the
// shim returned: the current goroutine's torch.Scope frees it, or else the
// runtime does once it is unreachable, as for every tensor of package torch.
var Wrap func(c unsafe.Pointer) any
