package optim

import (
	"testing"

	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/memtest"
)

// TestStepsDoNotGrowMemory takes 1000 steps with every option that makes
// temporaries: if a step kept one 256 KiB temporary, memory would grow by
// 250 MiB. (What it grows by, a few MiB at most, is the allocators settling:
// it stays the same over 4000 steps.)
func TestStepsDoNotGrowMemory(t *testing.T) {
	big := []int64{256, 256} // 256 KiB of float32
	for _, tc := range []struct {
		name string
		new  func(ps []*torch.Tensor) (Optimizer, error)
	}{
		{"adam", func(ps []*torch.Tensor) (Optimizer, error) {
			o := DefaultAdamOptions()
			o.WeightDecay, o.AMSGrad, o.Maximize = 1e-4, true, true
			return NewAdam(ps, o)
		}},
		{"sgd", func(ps []*torch.Tensor) (Optimizer, error) {
			return NewSGD(ps, SGDOptions{LR: 1e-3, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4, Maximize: true})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := []*torch.Tensor{
				torch.Randn(big, torch.Float32CPU).SetRequiresGrad(true),
				torch.Randn([]int64{64}, torch.Float32CPU).SetRequiresGrad(true),
			}
			grads := []*torch.Tensor{
				torch.Randn(big, torch.Float32CPU),
				torch.Randn([]int64{64}, torch.Float32CPU),
			}
			opt, err := tc.new(ps)
			require.NoError(t, err)
			step := func() {
				opt.ZeroGrad()
				for i, p := range ps {
					p.BackwardWith(grads[i], false)
				}
				require.NoError(t, opt.Step())
			}
			for range 50 {
				step()
			}
			before := memtest.RSS(t)
			for range 1000 {
				step()
			}
			grown := memtest.RSS(t) - before
			t.Logf("resident memory grew by %d KiB over 1000 steps", grown>>10)
			require.Less(t, grown, int64(32<<20), "memory grows by more than 32 MiB")
		})
	}
}
