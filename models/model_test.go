package models

import (
	"math"
	"strings"
	"testing"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat"

	"github.com/edema/edema/internal/memtest"
)

func newModel(t *testing.T, name string) *Model {
	t.Helper()
	m, err := New(name)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	return m
}

func TestForwardRejectsBadInput(t *testing.T) {
	m := newModel(t, NameUNet)
	f32 := torch.Float32CPU
	for _, tc := range []struct {
		name string
		x    *torch.Tensor
		want string
	}{
		{"height", torch.Zeros([]int64{1, 3, 40, 32}, f32), "height 40 and width 32 must be positive multiples of 16"},
		{"width", torch.Zeros([]int64{1, 3, 32, 8}, f32), "height 32 and width 8 must be positive multiples of 16"},
		{"channels", torch.Zeros([]int64{1, 1, 32, 32}, f32), "input has 1 channels, want 3"},
		{"dims", torch.Zeros([]int64{3, 32, 32}, f32), "input has shape [3 32 32]"},
		{"empty", torch.Zeros([]int64{0, 3, 32, 32}, f32), "input batch is empty"},
		{"dtype", torch.Zeros([]int64{1, 3, 32, 32}, torch.Options{DType: torch.Float64}), "input is float64, the network float32"},
		{"nil", nil, "no input tensor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg, det, err := m.Forward(tc.x)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "unet: "), err.Error())
			assert.Nil(t, seg)
			assert.Nil(t, det)
		})
	}

	// What libtorch rejects comes back as an error too: a training-mode
	// batch norm cannot take one value per channel.
	_, _, err := m.Forward(torch.Zeros([]int64{1, 3, 16, 16}, f32))
	assert.ErrorContains(t, err, "more than 1 value per channel")
}

func TestOutputShapes(t *testing.T) {
	for _, name := range segmenters() {
		t.Run(name, func(t *testing.T) {
			m := newModel(t, name)
			m.Eval()
			for _, n := range []int64{1, 3} {
				x := torch.Randn([]int64{n, 3, 32, 48}, torch.Float32CPU)
				seg, det, err := m.Forward(x)
				require.NoError(t, err)
				assert.Equal(t, []int64{n, 4, 32, 48}, seg.Shape())
				assert.Equal(t, []int64{n, 3}, det.Shape(), "N×3 also when N = %d", n)
				// Log-probabilities: the probabilities of each pixel sum to 1.
				sums := seg.Exp().SumDims([]int64{1}, false)
				assert.InDelta(t, 0, sums.SubScalar(1).Abs().Max().Item(), 1e-5)
				assert.GreaterOrEqual(t, det.Min().Item(), 0.0)
				assert.LessOrEqual(t, det.Max().Item(), 1.0)
			}
		})
	}
}

func TestLoadStateDictNamesTheNetwork(t *testing.T) {
	m := newModel(t, NameUNetNested)
	other := newModel(t, NameUNet)
	err := m.LoadStateDict(other.StateDict(), true)
	require.Error(t, err)
	msg := err.Error()
	assert.True(t, strings.HasPrefix(msg, "unet_nested: error(s) in loading state_dict:"), msg)
	assert.Contains(t, msg, `"conv00.conv1.0.weight"`)
	assert.Contains(t, msg, `"conv1.conv1.0.weight"`)
	var le *nn.LoadError
	assert.ErrorAs(t, err, &le)

	// A network's own state dict loads into a fresh one of the same kind.
	fresh := newModel(t, NameUNetNested)
	require.NoError(t, fresh.LoadStateDict(m.StateDict(), true))
	for i, n := range fresh.StateDict() {
		assert.Equal(t, m.StateDict()[i].Tensor.Bytes(), n.Tensor.Bytes(), n.Name)
	}
}

func TestPredictMatchesForward(t *testing.T) {
	torch.ManualSeed(3)
	m := newModel(t, NameUNetNestedDilated)
	const s, h, w = 5, 32, 16
	x := torch.Randn([]int64{s, 3, h, w}, torch.Float32CPU)
	images := x.Float32s()

	m.Eval()
	seg, det, err := m.Forward(x)
	require.NoError(t, err)
	wantLabels := ArgmaxLabels(seg)
	assert.Equal(t, torch.Uint8, wantLabels.DType())
	assert.Equal(t, []int64{s, h, w}, wantLabels.Shape())

	p := predictAll(t, m, images, s, h, w, 2, true)
	assert.False(t, m.Training(), "prediction leaves the mode alone")
	assert.Equal(t, s, p.Slices)
	assertLabelsOf(t, seg, p.Labels)
	assert.InDeltaSlice(t, toF64(det.Float32s()), toF64(p.Detections), 1e-5)
	assert.InDeltaSlice(t, toF64(seg.Exp().Float32s()), toF64(p.Probabilities), 1e-5)

	// Other batches into one Prediction give the same.
	streamed := NewPrediction(s, h, w, false)
	size := 3 * h * w
	require.NoError(t, m.PredictInto(streamed, 0, images[:3*size], 3))
	require.NoError(t, m.PredictInto(streamed, 3, images[3*size:], 2))
	assert.Equal(t, p.Labels, streamed.Labels)
	assert.InDeltaSlice(t, toF64(p.Detections), toF64(streamed.Detections), 1e-5)
	assert.Nil(t, streamed.Probabilities)

	one := NewPrediction(1, h, w, false)
	assert.ErrorContains(t, m.PredictInto(NewPrediction(1, h+1, w, false), 0, images[:3*(h+1)*w], 1), "must be multiples of 16")
	assert.ErrorContains(t, m.PredictInto(one, 0, images[1:size], 1), "values for 1 slices")
	assert.ErrorContains(t, m.PredictInto(streamed, 4, images[:2*size], 2), "do not fit")
	m.Train()
	assert.ErrorContains(t, m.PredictInto(one, 0, images[:size], 1), "prediction needs the network in evaluation mode")
}

// predictAll predicts s slices batch slices at a time with PredictInto,
// the network in evaluation mode.
func predictAll(t *testing.T, m *Model, images []float32, s, h, w, batch int, probabilities bool) *Prediction {
	t.Helper()
	m.Eval()
	p := NewPrediction(s, h, w, probabilities)
	size := 3 * h * w
	for at := 0; at < s; at += batch {
		n := min(batch, s-at)
		require.NoError(t, m.PredictInto(p, at, images[at*size:(at+n)*size], n))
	}
	return p
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestBuildRunFreeKeepsMemoryFlat builds, runs (a training step's forward
// and backward) and frees every network 60 times: a leaked network, or its
// gradients, would add megabytes per round.
func TestBuildRunFreeKeepsMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	// Memory is read after every round once the allocators have warmed
	// up, and the trend of the readings is what must stay flat: one
	// reading against another would take an arena that glibc grows for a
	// moment for a leak.
	const rounds, warmup = 60, 20
	x := torch.Randn([]int64{2, 3, 32, 32}, torch.Float32CPU)
	defer x.Free()
	var at, readings []float64
	for i := range rounds {
		for _, name := range segmenters() {
			torch.Scoped(func(*torch.Scope) {
				m, err := New(name)
				require.NoError(t, err)
				defer m.Free()
				seg, det, err := m.Forward(x)
				require.NoError(t, err)
				seg.Sum().Add(det.Sum()).Backward()
			})
		}
		if i >= warmup {
			at, readings = append(at, float64(i)), append(readings, float64(memtest.RSS(t)))
		}
	}
	_, slope := stat.LinearRegression(at, readings, nil, false)
	// What a round may add: a fifth of the weights of the smallest network
	// (UNet, 9.4 MiB), so that leaking any one network a round fails by
	// five times, while the allocators' drift does not (up to 0.8 MiB a
	// round with libtorch 2.6 in this test).
	smallest := math.MaxFloat64
	for _, name := range segmenters() {
		m, err := New(name)
		require.NoError(t, err)
		smallest = min(smallest, float64(4*m.NumParameters()))
		m.Free()
	}
	t.Logf("RSS trend %+.2f MiB a round over %d rounds after warm-up (bound %.2f MiB)", slope/(1<<20), rounds-warmup, smallest/5/(1<<20))
	assert.Less(t, slope, smallest/5)
}

func TestToDTypeFloat64MatchesFloat32(t *testing.T) {
	torch.ManualSeed(5)
	m := newModel(t, NameUNet)
	m.Eval()
	x := torch.Randn([]int64{2, 3, 32, 32}, torch.Float32CPU)
	seg32, det32, err := m.Forward(x)
	require.NoError(t, err)
	require.NoError(t, m.ToDType(torch.Float64))
	_, _, err = m.Forward(x)
	assert.ErrorContains(t, err, "input is float32, the network float64")
	seg64, det64, err := m.Forward(x.To(torch.Float64))
	require.NoError(t, err)
	assert.Equal(t, torch.Float64, seg64.DType())
	assert.InDelta(t, 0, seg64.To(torch.Float32).Sub(seg32).Abs().Max().Item(), 1e-4)
	assert.InDelta(t, 0, det64.To(torch.Float32).Sub(det32).Abs().Max().Item(), 1e-5)

	p := predictAll(t, m, x.Float32s(), 2, 32, 32, DefaultBatchSize, false)
	assert.Equal(t, torch.Data[uint8](ArgmaxLabels(seg64)), p.Labels)
}

// TestPredictWholeCube runs a cube of 128 slices in the default batches of
// 8, as evaluation does, and checks it against one pass over all slices.
func TestPredictWholeCube(t *testing.T) {
	torch.ManualSeed(11)
	m := newModel(t, NameUNet)
	const s, h, w = 128, 16, 32
	x := torch.Randn([]int64{s, 3, h, w}, torch.Float32CPU)
	p := predictAll(t, m, x.Float32s(), s, h, w, DefaultBatchSize, false)
	seg, det, err := m.Forward(x)
	require.NoError(t, err)
	assertLabelsOf(t, seg, p.Labels)
	assert.InDeltaSlice(t, toF64(det.Float32s()), toF64(p.Detections), 1e-5)
}

// assertLabelsOf checks that labels are the argmax classes of the scores
// seg (N×4×H×W), up to near-ties: passes over other batch sizes may round
// differently.
func assertLabelsOf(t *testing.T, seg *torch.Tensor, labels []uint8) {
	t.Helper()
	shape := seg.Shape()
	n, c, area := int(shape[0]), int(shape[1]), int(shape[2]*shape[3])
	require.Len(t, labels, n*area)
	scores := seg.Float32s()
	exact := torch.Data[uint8](ArgmaxLabels(seg))
	ties := 0
	for i := range n {
		for p := range area {
			got, want := int(labels[i*area+p]), int(exact[i*area+p])
			if got == want {
				continue
			}
			ties++
			score := func(k int) float32 { return scores[(i*c+k)*area+p] }
			require.InDelta(t, score(want), score(got), 1e-4, "slice %d pixel %d: class %d, argmax %d", i, p, got, want)
		}
	}
	assert.LessOrEqual(t, ties, len(labels)/1000, "too many near-ties")
}

// TestFastEvaluationMatchesPlain: in evaluation mode each network takes
// the fast path (batch norms folded into the convolutions before them,
// transposed convolutions by phases), within 1e-4 of running every layer
// as it is, and its state dict is the same.
func TestFastEvaluationMatchesPlain(t *testing.T) {
	for _, name := range segmenters() {
		t.Run(name, func(t *testing.T) {
			torch.ManualSeed(5)
			m, err := New(name)
			require.NoError(t, err)
			defer m.Free()
			x := torch.Randn([]int64{2, 3, 64, 32}, torch.Float32CPU)
			// A training pass moves the running statistics off 0 and 1.
			_, _, err = m.Forward(x)
			require.NoError(t, err)
			before := m.StateDict()
			m.Eval()
			outputs := func() (seg, det []float32) {
				torch.InferenceMode(func() {
					s, d, err := m.Forward(x)
					require.NoError(t, err)
					seg, det = s.Float32s(), d.Float32s()
				})
				return seg, det
			}
			foldedSeg, foldedDet := outputs()
			m.Store().SetFastPath(false)
			plainSeg, plainDet := outputs()
			assert.InDeltaSlice(t, plainSeg, foldedSeg, 1e-4)
			assert.InDeltaSlice(t, plainDet, foldedDet, 1e-4)
			assert.NotEqual(t, plainSeg, foldedSeg, "the fast path runs")
			after := m.StateDict()
			require.Len(t, after, len(before))
			for i := range before {
				assert.Same(t, before[i].Tensor, after[i].Tensor, before[i].Name)
			}
		})
	}
}

// TestChannelsLastMatchesContiguous runs each network twice from the
// same weights, as it is and with its weights and input channels last, in
// training and then in evaluation mode: the same outputs within 1e-4 (but
// for training mode's detection, whose dropout depends on the layout), and
// the weights laid out channels last with the same values.
func TestChannelsLastMatchesContiguous(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			x := torch.Randn([]int64{2, 3, 64, 32}, torch.Float32CPU)
			build := func() *Model {
				torch.ManualSeed(6)
				m, err := New(name)
				require.NoError(t, err)
				t.Cleanup(m.Free)
				return m
			}
			outputs := func(m *Model) (out [2][2][]float32) {
				for i, train := range []bool{true, false} {
					pass := func() {
						s, d, err := m.Forward(x)
						require.NoError(t, err)
						out[i][1] = d.Float32s()
						if s != nil {
							out[i][0] = s.Float32s()
						}
					}
					if train {
						m.Train()
						torch.ManualSeed(9) // the same dropout
						pass()
					} else {
						m.Eval()
						torch.InferenceMode(pass)
					}
				}
				return out
			}
			plain, last := build(), build()
			want := outputs(plain)
			require.NoError(t, last.SetMemoryFormat(torch.ChannelsLast))
			assert.Equal(t, torch.ChannelsLast, last.MemoryFormat())
			weights := plain.StateDict()
			for _, e := range last.StateDict() {
				if e.Tensor.Dim() == 4 {
					assert.True(t, e.Tensor.IsContiguousAs(torch.ChannelsLast), e.Name)
				}
			}
			got := outputs(last)
			for i, mode := range []string{"training", "evaluation"} {
				// The detection head's dropout draws its mask in memory
				// order (libtorch 2.x does), so in training mode another
				// layout drops other units: detection is compared in
				// evaluation mode only.
				if i == 1 {
					assert.InDeltaSlice(t, want[i][1], got[i][1], 1e-4, "detection, %s", mode)
				}
				if want[i][0] != nil {
					assert.InDeltaSlice(t, want[i][0], got[i][0], 1e-4, "segmentation, %s", mode)
				}
			}
			for i, e := range last.StateDict() {
				if e.Tensor.DType() == torch.Float32 {
					assert.InDeltaSlice(t, weights[i].Tensor.Float32s(), e.Tensor.Float32s(), 1e-5, "%s", e.Name)
				}
			}
		})
	}
}
