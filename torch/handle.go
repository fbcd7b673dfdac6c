package torch

import (
	"unsafe"

	"github.com/edema/edema/torch/internal/handle"
)

func init() {
	handle.Of = func(op string, t any) unsafe.Pointer { return unsafe.Pointer(t.(*Tensor).handle(op)) }
}
