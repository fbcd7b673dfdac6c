package optim

import (
	"fmt"
	"testing"

	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/require"
)

// onDevice returns the problem with its tensors moved to dev.
func (pr problem) onDevice(dev torch.Device) problem {
	var out problem
	for _, p := range pr.init {
		out.init = append(out.init, p.ToDevice(dev))
	}
	for _, step := range pr.grads {
		var gs []*torch.Tensor
		for _, g := range step {
			if g != nil {
				g = g.ToDevice(dev)
			}
			gs = append(gs, g)
		}
		out.grads = append(out.grads, gs)
	}
	return out
}

// TestCUDAMatchesCPU runs the optimizers on a GPU when there is one: the
// parameters follow the CPU's, the state stays on the GPU, and a state
// exported on the GPU loads on the CPU and back.
func TestCUDAMatchesCPU(t *testing.T) {
	if !torch.CUDAIsAvailable() {
		t.Skip("CUDA is not available")
	}
	cuda := torch.CUDA(0)
	pr := newProblem()
	gpu := pr.onDevice(cuda)
	for _, c := range refCases {
		t.Run(c.name, func(t *testing.T) {
			cpuParams := leafCopies(pr.init)
			cpuOpt := c.build(t, cpuParams)
			pr.run(t, c, cpuOpt, cpuParams, 0, numSteps)

			gpuParams := leafCopies(gpu.init)
			gpuOpt := c.build(t, gpuParams)
			gpu.run(t, c, gpuOpt, gpuParams, 0, checkpoint)
			sd, err := gpuOpt.StateDict()
			require.NoError(t, err)
			for _, k := range at(t, sd, "state").(*Dict).Keys() {
				e := at(t, sd, "state", k).(*Dict)
				for _, name := range e.Keys() {
					if x, ok := at(t, e, name).(*torch.Tensor); ok && name != "step" {
						require.Equal(t, cuda, x.Device(), "state %v %s", k, name)
					}
				}
			}

			// Through the CPU and back to the GPU.
			cpuCopy := leafCopies(cpuParams)
			viaCPU := c.build(t, cpuCopy)
			require.NoError(t, viaCPU.LoadStateDict(sd))
			cpuSD, err := viaCPU.StateDict()
			require.NoError(t, err)
			resumed := leafCopies(gpuParams)
			gpuOpt2 := c.build(t, resumed)
			require.NoError(t, gpuOpt2.LoadStateDict(cpuSD))

			gpu.run(t, c, gpuOpt, gpuParams, checkpoint, numSteps)
			gpu.run(t, c, gpuOpt2, resumed, checkpoint, numSteps)
			for i := range cpuParams {
				// CUDA's kernels may round differently from the CPU's.
				requireNear(t, fmt.Sprintf("parameter %d", i), cpuParams[i], gpuParams[i].ToDevice(torch.CPU), 1e-5)
				require.Equal(t, gpuParams[i].ToDevice(torch.CPU).Float32s(), resumed[i].ToDevice(torch.CPU).Float32s(), "parameter %d after resuming", i)
			}
		})
	}
}
