package torch

/*
#include <stdlib.h>
#include "edema_torch.h"
*/
import "C"

import (
	"unsafe"
)

// Error is what a failed tensor operation panics with.
type Error struct {
	Op  string // the operation, e.g. "conv2d"
	Msg string // libtorch's message, or the Go side's reason
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// Recover turns a *Error panic into *errp. It must be deferred directly:
//
//	func (m *Model) Forward(x *torch.Tensor) (y *torch.Tensor, err error) {
//		defer torch.Recover(&err)
//		...
//	}
//
// Panics of any other kind keep unwinding.
func Recover(errp *error) {
	if r := recover(); r != nil {
		if e, ok := r.(*Error); ok {
			*errp = e
			return
		}
		panic(r)
	}
}

// Try runs f and returns the *Error a tensor operation inside it panicked
// with, or nil.
func Try(f func()) (err error) {
	defer Recover(&err)
	f()
	return nil
}

// check panics with a *Error when a shim call failed.
func check(op string, err C.et_error) {
	if err != nil {
		msg := C.GoString(err)
		C.free(unsafe.Pointer(err))
		panic(&Error{Op: op, Msg: msg})
	}
}

// fail panics with a *Error for a problem the Go side detects.
func fail(op, msg string) {
	panic(&Error{Op: op, Msg: msg})
}
