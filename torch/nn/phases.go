package nn

import "github.com/edema/edema/torch"

// A transposed convolution by phases, part of the evaluation fast path
// (fastpath.go) and of training with Store.SetPhasedTraining. With kernel 4, stride 2 and padding 1, output row 2m
// takes input rows m−1 and m through kernel rows 3 and 1, and output row
// 2m+1 input rows m and m+1 through kernel rows 2 and 0; columns likewise.
// Each of the four phases (row parity a, column parity b) of the output is
// thus a 2×2 correlation of the input padded by 1, and one ordinary
// convolution with 4·out output channels computes all four over an
// (H+1)×(W+1) grid: phase (a, b) is its channel block 2a+b, rows a..a+H−1
// and columns b..b+W−1, written to the output's rows a, a+2, … and columns
// b, b+2, …. The multiply-adds are those of the transposed convolution,
// summed in another order.

// phaseTaps are the kernel rows (or columns) of the two window offsets of
// each phase.
var phaseTaps = [2][2]int64{{3, 1}, {2, 0}}

// byPhases reports whether a transposed convolution with options o can run
// by phases.
func byPhases(o torch.Conv2dOptions, kernel int64) bool {
	return kernel == 4 && o.Stride == [2]int64{2, 2} && o.Padding == [2]int64{1, 1} &&
		o.Dilation == [2]int64{1, 1} && o.OutputPadding == [2]int64{} && o.Groups == 1
}

// phaseWeights returns the weight (4·out×in×2×2, in the layout of m's
// weight) and bias (4·out, nil without one) of the convolution that
// computes m's phases, owned by no scope.
func phaseWeights(m *ConvTranspose2d) (phases [2]*torch.Tensor) {
	torch.Scoped(func(sc *torch.Scope) {
		var blocks []*torch.Tensor
		for _, rows := range phaseTaps {
			for _, cols := range phaseTaps {
				k := m.Weight.IndexSelect(2, torch.FromSlice(rows[:], 2)).IndexSelect(3, torch.FromSlice(cols[:], 2))
				blocks = append(blocks, k.Transpose(0, 1))
			}
		}
		w := torch.Cat(blocks, 0).ContiguousAs(layoutOf(m.Weight))
		sc.Keep(w)
		w.Unscope()
		phases[0] = w
		if m.Bias != nil {
			b := torch.Cat([]*torch.Tensor{m.Bias, m.Bias, m.Bias, m.Bias}, 0)
			sc.Keep(b)
			b.Unscope()
			phases[1] = b
		}
	})
	return phases
}

// forwardByPhases computes m on x (N×in×H×W) by phases with the phases'
// weight and bias, the output in x's memory format. With autograd on, the
// gradients flow through the convolution and the one strided copy that
// interleaves its phases.
func (m *ConvTranspose2d) forwardByPhases(x *torch.Tensor, phases [2]*torch.Tensor) *torch.Tensor {
	n, h, w := x.Size(0), x.Size(2), x.Size(3)
	out := phases[0].Size(0) / 4
	y := torch.Conv2d(x, phases[0], phases[1], torch.Conv2dOptions{
		Stride: [2]int64{1, 1}, Padding: [2]int64{1, 1}, Dilation: [2]int64{1, 1}, Groups: 1})
	defer y.Free()
	// Output pixel (2i+a, 2j+b) of channel c is y's channel (2a+b)·out+c
	// at (a+i, b+j): a view of y with dimensions (n, c, i, a, j, b), whose
	// strides add up what each index moves in y.
	s := y.Strides()
	sn, sc, sh, sw := s[0], s[1], s[2], s[3]
	v := y.AsStrided([]int64{n, out, h, 2, w, 2}, []int64{sn, sc, sh, 2*out*sc + sh, sw, out*sc + sw})
	defer v.Free()
	if layoutOf(x) == torch.ChannelsLast {
		var res *torch.Tensor
		torch.Scoped(func(sc *torch.Scope) {
			res = v.Permute(0, 2, 3, 4, 5, 1).Contiguous().View(n, 2*h, 2*w, out).Permute(0, 3, 1, 2)
			sc.Keep(res)
		})
		return res
	}
	return v.Reshape(n, out, 2*h, 2*w)
}

// layoutOf is the memory format t is laid out in: channels last when it is
// so and not also contiguous, as a tensor of one channel or one pixel is.
func layoutOf(t *torch.Tensor) torch.MemoryFormat {
	if t.IsContiguousAs(torch.ChannelsLast) && !t.IsContiguous() {
		return torch.ChannelsLast
	}
	return torch.ContiguousFormat
}
