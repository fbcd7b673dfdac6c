package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceType says where a tensor's memory lives.
type DeviceType int

const (
	DeviceCPU  DeviceType = 0
	DeviceCUDA DeviceType = 1
)

// Device is a device type with an index (the GPU number for CUDA).
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host.
var CPU = Device{Type: DeviceCPU}

// CUDA returns the n-th CUDA device.
func CUDA(n int) Device { return Device{Type: DeviceCUDA, Index: n} }

// String returns PyTorch's spelling: "cpu" or "cuda:N".
func (d Device) String() string {
	if d.Type == DeviceCUDA {
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "cpu"
}

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d.Type == DeviceCUDA }

// ParseDevice reads "cpu", "cuda" (device 0) or "cuda:N".
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("bad device %q: the CUDA index must be a non-negative integer", s)
		}
		return CUDA(n), nil
	}
	return Device{}, fmt.Errorf("bad device %q: want cpu, cuda or cuda:N", s)
}

// CUDAIsAvailable reports whether libtorch was built with CUDA and sees a GPU.
func CUDAIsAvailable() bool {
	var out C.int
	check("cuda_is_available", C.et_cuda_is_available(&out))
	return out != 0
}

// CUDADeviceCount returns the number of GPUs libtorch can use.
func CUDADeviceCount() int {
	var out C.int
	check("cuda_device_count", C.et_cuda_device_count(&out))
	return int(out)
}

// CUDASynchronize waits for all work queued on the given GPU to finish.
func CUDASynchronize(index int) {
	check("cuda_synchronize", C.et_cuda_synchronize(C.int(index)))
}

// CheckDevice returns an error when d cannot be used here: a CUDA device
// without CUDA, or a GPU index beyond those present.
func CheckDevice(d Device) error {
	if !d.IsCUDA() {
		return nil
	}
	if !CUDAIsAvailable() {
		return fmt.Errorf("device %s: CUDA is not available (libtorch without CUDA, or no GPU)", d)
	}
	if n := CUDADeviceCount(); d.Index >= n {
		return fmt.Errorf("device %s: only %d CUDA device(s) present", d, n)
	}
	return nil
}

// SetNumThreads sets the number of threads libtorch uses inside one operation.
func SetNumThreads(n int) {
	check("set_num_threads", C.et_set_num_threads(C.int(n)))
}

// NumThreads returns the number of threads libtorch uses inside one operation.
func NumThreads() int {
	var out C.int
	check("get_num_threads", C.et_get_num_threads(&out))
	return int(out)
}

// ManualSeed seeds libtorch's random generators (CPU and CUDA). On the CPU
// the same seed yields the same numbers as torch.manual_seed in Python.
func ManualSeed(seed uint64) {
	check("manual_seed", C.et_manual_seed(C.uint64_t(seed)))
}

// Version returns the version of the libtorch the shim was built against.
func Version() string {
	var out *C.char
	check("version", C.et_version(&out))
	return takeString(out)
}
