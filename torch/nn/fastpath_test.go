package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/benchenv"
	"github.com/edema/edema/torch"
)

// TestPhasedTraining: with Store.SetPhasedTraining, a transposed
// convolution in training mode runs by phases, and its output and the
// gradients of its input, weight and bias match libtorch's own up to
// rounding, in both layouts.
func TestPhasedTraining(t *testing.T) {
	for _, channelsLast := range []bool{false, true} {
		t.Run(fmt.Sprintf("cl=%t", channelsLast), func(t *testing.T) {
			torch.ManualSeed(5)
			s := NewStore()
			defer s.Free()
			up := NewConvTranspose2d(s.Root(), 6, 4, Conv2dConfig{Kernel: 4, Stride: 2, Padding: 1})
			x := torch.Randn([]int64{3, 6, 5, 7}, torch.Float32CPU)
			g := torch.Randn([]int64{3, 4, 10, 14}, torch.Float32CPU)
			if channelsLast {
				require.NoError(t, s.SetMemoryFormat(torch.ChannelsLast))
				x = x.ContiguousAs(torch.ChannelsLast)
			}
			x.SetRequiresGrad(true)
			// pass returns the output and the gradients of x, the weight
			// and the bias for the output gradient g.
			pass := func() [][]float64 {
				for _, p := range []*torch.Tensor{x, up.Weight, up.Bias} {
					if grad := p.Grad(); grad != nil {
						grad.ZeroInPlace()
					}
				}
				y := up.Forward(x)
				y.BackwardWith(g, false)
				return [][]float64{values(y), values(x.Grad()), values(up.Weight.Grad()), values(up.Bias.Grad())}
			}
			want := pass()
			s.SetPhasedTraining(true)
			got := pass()
			assert.Equal(t, channelsLast, layoutOf(up.Forward(x)) == torch.ChannelsLast, "the input's layout")
			for i, name := range []string{"output", "input gradient", "weight gradient", "bias gradient"} {
				assertClose(t, want[i], got[i], 1e-5, name)
			}
			if !channelsLast {
				// Channels last, libtorch 2.x's oneDNN transposed convolution
				// sums the weight gradient in the phases' order.
				assert.NotEqual(t, want[2], got[2], "the phases sum in another order")
			}
			s.SetPhasedTraining(false)
			assert.Equal(t, want, pass(), "off: libtorch's own, bit for bit")
		})
	}
}

// TestTransposedConvolutionByPhases: in evaluation mode without autograd a
// transposed convolution with kernel 4, stride 2 and padding 1 runs by
// phases with the outputs of libtorch's, up to rounding, with or without
// bias, channels last or not, on odd sizes too; other settings, training
// mode and autograd run libtorch's.
func TestTransposedConvolutionByPhases(t *testing.T) {
	cases := []struct {
		in, out, h, w int64
		noBias        bool
		channelsLast  bool
	}{
		{in: 4, out: 3, h: 5, w: 7},
		{in: 8, out: 4, h: 8, w: 6, noBias: true},
		{in: 6, out: 2, h: 3, w: 4, channelsLast: true},
		{in: 1, out: 1, h: 1, w: 1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-%d-%dx%d-nobias=%t-cl=%t", c.in, c.out, c.h, c.w, c.noBias, c.channelsLast), func(t *testing.T) {
			torch.ManualSeed(4)
			s := NewStore()
			defer s.Free()
			up := NewConvTranspose2d(s.Root(), c.in, c.out, Conv2dConfig{Kernel: 4, Stride: 2, Padding: 1, NoBias: c.noBias})
			x := torch.Randn([]int64{2, c.in, c.h, c.w}, torch.Float32CPU)
			if c.channelsLast {
				require.NoError(t, s.SetMemoryFormat(torch.ChannelsLast))
				x = x.ContiguousAs(torch.ChannelsLast)
			}
			want := values(torch.ConvTranspose2d(x, up.Weight, up.Bias, up.opts))
			assert.Nil(t, up.phases[0], "training mode has no phases")
			s.Eval()
			require.NotNil(t, up.phases[0])
			var got *torch.Tensor
			torch.NoGrad(func() { got = up.Forward(x) })
			assert.Equal(t, []int64{2, c.out, 2 * c.h, 2 * c.w}, got.Shape())
			assert.Equal(t, layoutOf(x), layoutOf(got), "the input's layout")
			assert.Equal(t, c.channelsLast, layoutOf(got) == torch.ChannelsLast)
			assertClose(t, want, values(got), 1e-5, "by phases")

			// Autograd on: libtorch's own, bit for bit.
			assert.Equal(t, want, values(up.Forward(x)))
			s.SetFastPath(false)
			assert.Nil(t, up.phases[0], "the fast path off drops the phases")
			torch.NoGrad(func() { assert.Equal(t, want, values(up.Forward(x))) })

			// The fast path computes with the phases' weights: zeroed, only
			// the bias is left.
			s.SetFastPath(true)
			up.phases[0].ZeroInPlace()
			bias := torch.Zeros([]int64{1, c.out, 1, 1}, torch.Float32CPU)
			if up.Bias != nil {
				bias = up.Bias.Reshape(1, c.out, 1, 1)
			}
			torch.NoGrad(func() {
				assert.Equal(t, values(bias.Expand(2, c.out, 2*c.h, 2*c.w).Contiguous()), values(up.Forward(x)))
			})
		})
	}
	t.Run("other settings", func(t *testing.T) {
		s := NewStore()
		defer s.Free()
		up := NewConvTranspose2d(s.Root(), 2, 2, Conv2dConfig{Kernel: 2, Stride: 2})
		s.Eval()
		assert.Nil(t, up.phases[0], "kernel 2: libtorch's")
	})
}

// TestMaxPoolOfWindows: without autograd, max pooling over windows that do
// not overlap gives exactly max_pool2d's values, NaN included, on sizes
// that do not divide by the kernel and channels last; overlapping windows,
// padding and autograd take max_pool2d itself.
func TestMaxPoolOfWindows(t *testing.T) {
	cases := []struct {
		pool         MaxPool2d
		h, w         int64
		channelsLast bool
	}{
		{pool: MaxPool2d{Kernel: 2}, h: 6, w: 4},
		{pool: MaxPool2d{Kernel: 2, Stride: 2}, h: 7, w: 5},
		{pool: MaxPool2d{Kernel: 3}, h: 9, w: 10},
		{pool: MaxPool2d{Kernel: 2}, h: 4, w: 8, channelsLast: true},
		{pool: MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}, h: 8, w: 8},
		{pool: MaxPool2d{Kernel: 2}, h: 1, w: 4},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%+v-%dx%d-cl=%t", c.pool, c.h, c.w, c.channelsLast), func(t *testing.T) {
			x := torch.Randn([]int64{2, 3, c.h, c.w}, torch.Float32CPU)
			x.Narrow(3, 0, 1).Narrow(1, 1, 1).MulScalarInPlace(math.NaN())
			if c.channelsLast {
				x = x.ContiguousAs(torch.ChannelsLast)
			}
			p := c.pool
			ref := func() (*torch.Tensor, error) {
				var out *torch.Tensor
				err := torch.Try(func() {
					out = torch.MaxPool2d(x, [2]int64{p.Kernel, p.Kernel}, [2]int64{p.Stride, p.Stride}, [2]int64{p.Padding, p.Padding}, false)
				})
				return out, err
			}
			want, wantErr := ref()
			var got *torch.Tensor
			gotErr := torch.Try(func() { torch.NoGrad(func() { got = p.Forward(x) }) })
			if wantErr != nil {
				assert.Error(t, gotErr, "max_pool2d's error")
				return
			}
			require.NoError(t, gotErr)
			assert.Equal(t, want.Shape(), got.Shape())
			wv, gv := values(want), values(got)
			require.Len(t, gv, len(wv))
			for i := range wv {
				if math.IsNaN(wv[i]) {
					assert.True(t, math.IsNaN(gv[i]), "NaN at %d", i)
					continue
				}
				assert.Equal(t, wv[i], gv[i], "at %d", i)
			}
		})
	}
}

// BenchmarkEvalLayers times the layers the evaluation fast path computes
// another way, at the sizes of the networks' top level (8 slices of
// 256×128), each way: a transposed convolution from 32 to 16 channels,
// by libtorch and by phases, and 2×2 max pooling by max_pool2d and as
// the maximum of strided views.
func BenchmarkEvalLayers(b *testing.B) {
	defer benchenv.Setup(b)()
	torch.ManualSeed(0)
	s := NewStore()
	defer s.Free()
	up := NewConvTranspose2d(s.Root(), 32, 16, Conv2dConfig{Kernel: 4, Stride: 2, Padding: 1})
	s.Eval()
	low := torch.Randn([]int64{8, 32, 128, 64}, torch.Float32CPU)
	top := torch.Randn([]int64{8, 16, 256, 128}, torch.Float32CPU)
	run := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			torch.NoGrad(func() {
				for b.Loop() {
					torch.Scoped(func(*torch.Scope) { f() })
				}
			})
		})
	}
	run("conv_transpose/libtorch", func() { torch.ConvTranspose2d(low, up.Weight, up.Bias, up.opts) })
	run("conv_transpose/phases", func() { up.Forward(low) })
	run("max_pool/max_pool2d", func() { torch.MaxPool2d(top, [2]int64{2, 2}, [2]int64{}, [2]int64{}, false) })
	run("max_pool/windows", func() { MaxPool2d{Kernel: 2}.Forward(top) })
}
