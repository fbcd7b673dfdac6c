package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// GradEnabled reports whether autograd records operations on the current
// OS thread. It is meaningful inside NoGrad, InferenceMode and
// WithGradEnabled, which pin the goroutine to its thread.
func GradEnabled() bool {
	var out C.int
	check("grad_enabled", C.et_grad_enabled(&out))
	return out != 0
}

func setGradEnabled(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	check("set_grad_enabled", C.et_set_grad_enabled(v))
}

// WithGradEnabled runs f with autograd recording switched on or off for
// every operation f performs on this goroutine, then restores the previous
// mode, also when f panics.
func WithGradEnabled(on bool, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := GradEnabled()
	setGradEnabled(on)
	defer setGradEnabled(prev)
	f()
}

// NoGrad runs f without autograd recording, like `with torch.no_grad():`.
func NoGrad(f func()) { WithGradEnabled(false, f) }

// InferenceMode runs f in libtorch's inference mode, like
// `with torch.inference_mode():`: no autograd and no version counting.
// Tensors made inside cannot be used in autograd later.
func InferenceMode(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var guard unsafe.Pointer
	check("inference_mode", C.et_inference_mode_enter(&guard))
	defer func() { check("inference_mode", C.et_inference_mode_exit(guard)) }()
	f()
}
