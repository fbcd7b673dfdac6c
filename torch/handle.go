package torch

// #include "edema_torch.h"
import "C"

import (
	"unsafe"

	"github.com/edema/edema/torch/internal/handle"
)

func init() {
	handle.Of = func(op string, t any) unsafe.Pointer { return unsafe.Pointer(t.(*Tensor).handle(op)) }
	handle.Wrap = func(c unsafe.Pointer) any { return wrap(C.et_tensor(c)) }
}
