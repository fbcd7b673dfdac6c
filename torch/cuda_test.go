package torch

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expectCUDA reports whether this machine should have a usable GPU: it has
// nvidia-smi, or EDEMA_EXPECT_CUDA=1 says so (scripts/gpu-check.sh sets it).
func expectCUDA() bool {
	if os.Getenv("EDEMA_EXPECT_CUDA") == "1" {
		return true
	}
	_, err := exec.LookPath("nvidia-smi")
	return err == nil
}

// needCUDA skips the test without a GPU, and fails it when a GPU should be
// there but libtorch does not see one (a CPU-only libtorch, or a shim linked
// without libtorch_cuda).
func needCUDA(t *testing.T) {
	t.Helper()
	if CUDAIsAvailable() {
		return
	}
	if expectCUDA() {
		t.Fatalf("a GPU is present but CUDA is unavailable to libtorch %s: is the shim built against a CUDA libtorch?", Version())
	}
	t.Skip("no CUDA device")
}

func TestCUDAAvailability(t *testing.T) {
	needCUDA(t)
	n := CUDADeviceCount()
	require.Positive(t, n)
	t.Logf("libtorch %s sees %d CUDA device(s)", Version(), n)
	for i := range n {
		require.NoError(t, CheckDevice(CUDA(i)))
		CUDASynchronize(i)
	}
	assert.ErrorContains(t, CheckDevice(CUDA(n)), fmt.Sprintf("only %d CUDA device(s) present", n))
}

func TestCUDATensors(t *testing.T) {
	needCUDA(t)
	gpu := CUDA(0)
	x := FromSlice([]float32{1, 2, 3, 4}, 2, 2).ToDevice(gpu)
	assert.Equal(t, gpu, x.Device())
	assert.Equal(t, []float32{2, 4, 6, 8}, x.MulScalar(2).Float32s(), "Data copies from the GPU")
	assert.Equal(t, CPU, x.ToDevice(CPU).Device())
	z := Zeros([]int64{3}, Options{DType: Float16, Device: gpu})
	assert.Equal(t, Float16, z.DType())
	assert.Equal(t, gpu, z.Device())
	assert.Equal(t, 10.0, x.Sum().Item())
	err := Try(func() { x.Add(Ones([]int64{2, 2}, Float32CPU)) })
	assert.ErrorContains(t, err, "device", "mixing devices is an error, not a crash")

	// The same seed gives the same numbers on the GPU too.
	ManualSeed(42)
	a := Randn([]int64{1000}, Options{DType: Float32, Device: gpu}).Float32s()
	ManualSeed(42)
	b := Randn([]int64{1000}, Options{DType: Float32, Device: gpu}).Float32s()
	assert.Equal(t, a, b)
	CUDASynchronize(0)
}

// TestOpsOnCUDAMatchCPU runs the cases of the PyTorch reference test that
// take inputs and use no random numbers on the GPU, and compares outputs and
// gradients with the same computation on the CPU. The tolerance allows for
// TF32 convolutions and matrix products, which PyTorch 2.x enables by default
// for convolutions on Ampere and later GPUs.
func TestOpsOnCUDAMatchCPU(t *testing.T) {
	needCUDA(t)
	for _, c := range refCases() {
		if c.wantErr || c.seed != nil || len(c.inputs) == 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			s := NewScope()
			defer s.Close()
			rng := rand.New(rand.NewPCG(7, 7))
			var onCPU, onGPU []*Tensor
			for _, r := range c.inputs {
				x := r.generate(rng)
				y := x.ToDevice(CUDA(0))
				if r.grad {
					x.SetRequiresGrad(true)
					y.SetRequiresGrad(true)
				}
				onCPU, onGPU = append(onCPU, x), append(onGPU, y)
			}
			want, got := runGo(c, onCPU), runGo(c, onGPU)
			require.NoError(t, want.err)
			require.NoError(t, got.err)
			require.Len(t, got.outputs, len(want.outputs))
			rtol := c.rtol
			if rtol == 0 {
				rtol = 5e-3
			}
			for k := range want.outputs {
				compareTensors(t, fmt.Sprintf("output %d", k), want.outputs[k], got.outputs[k], rtol)
			}
			for k := range want.grads {
				if want.grads[k] == nil {
					assert.Nil(t, got.grads[k])
					continue
				}
				require.NotNil(t, got.grads[k])
				compareTensors(t, fmt.Sprintf("grad of input %d", k), *want.grads[k], *got.grads[k], rtol)
			}
		})
	}
}

// TestPinnedAsyncCopy: a batch copied to the GPU from pinned memory
// without waiting arrives whole before the work queued after it, and
// comes back the same; on the CPU, ToDeviceAsync is a plain move.
func TestPinnedAsyncCopy(t *testing.T) {
	x := Randn([]int64{4, 3, 64, 32}, Float32CPU)
	same := x.ToDeviceAsync(CPU)
	assert.Equal(t, x.Float32s(), same.Float32s(), "CPU to CPU")
	needCUDA(t)
	pinned := x.PinMemory()
	assert.True(t, pinned.IsPinned())
	assert.False(t, x.IsPinned())
	gpu := pinned.ToDeviceAsync(CUDA(0))
	pinned.Free() // libtorch keeps the block until the copy is done
	assert.Equal(t, CUDA(0), gpu.Device())
	assert.Equal(t, x.MulScalar(2).Float32s(), gpu.MulScalar(2).Float32s())
}

// TestPinMemoryWithoutCUDA: pinning needs a GPU; without one it is an
// error that says so, not a crash.
func TestPinMemoryWithoutCUDA(t *testing.T) {
	if CUDAIsAvailable() {
		t.Skip("a CUDA device is present")
	}
	err := Try(func() { FromSlice([]float32{1, 2}).PinMemory() })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pin_memory")
}
