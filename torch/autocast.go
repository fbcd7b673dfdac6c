package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// Autocast runs f with libtorch's automatic mixed precision for the
// device's type, as `with torch.autocast(device_type, dtype):` does:
// operations that gain from lower precision (convolutions, matrix
// products) run in dtype, those of libtorch's float32 list for the device
// type (which differs between devices and releases: on the CPU in 1.13,
// softmax is not on it) in float32, and the rest in the widest type of
// their inputs. Autocast state is libtorch's per OS thread, so Autocast
// locks the goroutine to its thread for f and restores the previous state
// after it, also when f panics. Backward passes need no autocast: they run
// each operation in the type its forward pass used.
//
// dtype is BFloat16 (CPU or CUDA) or Float16 (CUDA only; its range is
// narrow enough that training needs a gradient scaler, optim.GradScaler).
func Autocast(dev Device, dtype DType, f func()) error {
	if err := checkAutocast(dev, dtype); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	typ := C.int(dev.Type)
	var wasOn, wasDType C.int
	check("autocast_enabled", C.et_autocast_enabled(typ, &wasOn))
	check("autocast_dtype", C.et_autocast_dtype(typ, &wasDType))
	// Each step of the setup is undone after f, or after the step that
	// failed, so that the thread is left as it was found.
	defer func() {
		check("set_autocast_enabled", C.et_set_autocast_enabled(typ, wasOn))
		check("set_autocast_dtype", C.et_set_autocast_dtype(typ, wasDType))
	}()
	check("set_autocast_dtype", C.et_set_autocast_dtype(typ, C.int(dtype.code())))
	check("set_autocast_enabled", C.et_set_autocast_enabled(typ, 1))
	var depth C.int
	check("autocast_increment_nesting", C.et_autocast_increment_nesting(&depth))
	defer func() {
		check("autocast_decrement_nesting", C.et_autocast_decrement_nesting(&depth))
		if depth == 0 {
			check("autocast_clear_cache", C.et_autocast_clear_cache())
		}
	}()
	f()
	return nil
}

func checkAutocast(dev Device, dtype DType) error {
	switch {
	case dtype != BFloat16 && dtype != Float16:
		return fmt.Errorf("autocast to %v: want bfloat16 or float16", dtype)
	case dtype == Float16 && !dev.IsCUDA():
		return fmt.Errorf("autocast to float16 runs on CUDA only; use bfloat16 on the %v", dev)
	case dev.Type != DeviceCPU && dev.Type != DeviceCUDA:
		return fmt.Errorf("autocast on %v: want the CPU or a CUDA device", dev)
	}
	return nil
}

// AutocastEnabled reports whether autocast is on for the device's type on
// the current OS thread (meaningful inside Autocast, which pins the
// goroutine to its thread), and in which dtype.
func AutocastEnabled(dev Device) (on bool, dtype DType) {
	var out, code C.int
	check("autocast_enabled", C.et_autocast_enabled(C.int(dev.Type), &out))
	check("autocast_dtype", C.et_autocast_dtype(C.int(dev.Type), &code))
	return out != 0, dtypeOfCode(int(code))
}
