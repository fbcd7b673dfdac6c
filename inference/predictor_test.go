package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// stub is a network whose outputs a Go function computes from the input,
// so that tests know exactly what it says about any slice.
type stub struct {
	name   string
	device torch.Device
	// probs returns per slice the class probabilities 4×H×W and the
	// detection probabilities 3 of one slice 3×H×W.
	probs func(x []float32, h, w int) (p, det []float32)
	evals int
	// tasks are the stub's tasks, both when 0; a stub that does not
	// segment has no segmentation output, as a detector.
	tasks oct.Tasks
}

func (s *stub) Name() string         { return s.name }
func (s *stub) Device() torch.Device { return s.device }
func (s *stub) Eval()                { s.evals++ }
func (s *stub) Tasks() oct.Tasks {
	if s.tasks == 0 {
		return oct.BothTasks
	}
	return s.tasks
}

func (s *stub) Forward(x *torch.Tensor) (seg, det *torch.Tensor, err error) {
	defer torch.Recover(&err)
	shape := x.Shape()
	n, h, w := int(shape[0]), int(shape[2]), int(shape[3])
	in := x.Float32s()
	var logp, dets []float32
	for i := range n {
		p, d := s.probs(in[i*3*h*w:(i+1)*3*h*w], h, w)
		for _, v := range p {
			logp = append(logp, float32(math.Log(float64(v))))
		}
		dets = append(dets, d...)
	}
	if !s.Tasks().Has(oct.Segmentation) {
		return nil, torch.FromSlice(dets, int64(n), 3), nil
	}
	return torch.FromSlice(logp, int64(n), 4, int64(h), int64(w)), torch.FromSlice(dets, int64(n), 3), nil
}

// constant says the same about every pixel of every slice.
func constant(name string, p [4]float32, det [3]float32) *stub {
	return &stub{name: name, probs: func(_ []float32, h, w int) ([]float32, []float32) {
		out := make([]float32, 4*h*w)
		for c := range 4 {
			for i := range h * w {
				out[c*h*w+i] = p[c]
			}
		}
		return out, det[:]
	}}
}

// positional depends on the pixel's value and on its column, so that its
// output on a mirrored slice is not the mirror of its output: the test of
// mirroring back.
func positional(name string, gain float32) *stub {
	return &stub{name: name, probs: func(x []float32, h, w int) ([]float32, []float32) {
		out := make([]float32, 4*h*w)
		var det [3]float32
		mid := x[h*w : 2*h*w] // the slice itself
		for y := range h {
			for col := range w {
				i := y*w + col
				ramp := float32(col+1) / float32(w)
				var z [4]float64
				var sum float64
				for c := range 4 {
					z[c] = math.Exp(float64(gain * float32(c) * (mid[i]*ramp - 0.3*float32(c)*ramp*ramp)))
					sum += z[c]
				}
				for c := range 4 {
					out[c*h*w+i] = float32(z[c] / sum)
				}
				for k := range 3 {
					det[k] += mid[i] * ramp * float32(k+1)
				}
			}
		}
		for k := range det {
			det[k] = float32(1 / (1 + math.Exp(-float64(det[k])/float64(h*w))))
		}
		return out, det[:]
	}}
}

// slices returns n slices 3×h×w of values that vary along every axis.
func testSlices(n, h, w int) []float32 {
	x := make([]float32, n*3*h*w)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37) * 2)
	}
	return x
}

// mirror returns n images of c planes h×w, each plane mirrored left to
// right.
func mirror(x []float32, planes, h, w int) []float32 {
	out := make([]float32, len(x))
	for p := range planes {
		for y := range h {
			row := x[(p*h+y)*w : (p*h+y+1)*w]
			o := out[(p*h+y)*w : (p*h+y+1)*w]
			for col, v := range row {
				o[w-1-col] = v
			}
		}
	}
	return out
}

// TestFusionByTask: a member that does one task joins that task's fusion
// alone, whose output is the weighted mean over the members doing it; a
// task no member does is absent.
func TestFusionByTask(t *testing.T) {
	a := constant("a", [4]float32{0.1, 0.6, 0.2, 0.1}, [3]float32{0.2, 0.4, 0.6})
	b := constant("b", [4]float32{0.1, 0.1, 0.7, 0.1}, [3]float32{0.6, 0, 1})
	detector := constant("detector", [4]float32{0.97, 0.01, 0.01, 0.01}, [3]float32{1, 1, 0})
	detector.tasks = oct.Detection
	segmenter := constant("segmenter", [4]float32{0.1, 0.1, 0.1, 0.7}, [3]float32{0, 0, 0})
	segmenter.tasks = oct.Segmentation
	const n, h, w = 2, 4, 2
	for _, tc := range []struct {
		name    string
		members []Member
		tta     TTA
		label   uint8
		det     [3]float32
		absent  oct.Tasks
	}{
		// Segmentation 0.4·a + 0.4·b: SRF. Detection 0.4·a + 0.4·b + 0.2·detector.
		{"two networks and a detector", []Member{{a, 0.4}, {b, 0.4}, {detector, 0.2}}, NoTTA, 2, [3]float32{0.52, 0.36, 0.64}, 0},
		{"the same mirrored", []Member{{a, 0.4}, {b, 0.4}, {detector, 0.2}}, FlipTTA, 2, [3]float32{0.52, 0.36, 0.64}, 0},
		// Detection (0.3·a + 0.3·b) / 0.6; the segmenter's PED wins.
		{"a segmenter joins the segmentation", []Member{{a, 0.3}, {b, 0.3}, {segmenter, 0.4}}, NoTTA, 3, [3]float32{0.4, 0.2, 0.8}, 0},
		{"a detector and a segmenter", []Member{{detector, 0.5}, {segmenter, 0.5}}, NoTTA, 3, [3]float32{1, 1, 0}, 0},
		{"a detector alone", []Member{{detector, 1}}, NoTTA, 0, [3]float32{1, 1, 0}, oct.Segmentation},
		{"a segmenter alone, mirrored", []Member{{segmenter, 1}}, FlipTTA, 3, [3]float32{}, oct.Detection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.members, Options{TTA: tc.tta})
			require.NoError(t, err)
			assert.Equal(t, oct.BothTasks&^tc.absent, p.Tasks())
			pred, err := p.Predict(testSlices(n, h, w), n, h, w)
			require.NoError(t, err)
			assert.Equal(t, tc.absent, pred.Absent)
			for i, l := range pred.Labels {
				require.Equal(t, tc.label, l, "pixel %d", i)
			}
			for s := range n {
				assert.InDeltaSlice(t, tc.det[:], pred.Detections[s*3:(s+1)*3], 1e-6, "slice %d", s)
			}
		})
	}
}

func TestFusionOfConstantNetworks(t *testing.T) {
	a := constant("a", [4]float32{0.1, 0.6, 0.2, 0.1}, [3]float32{0.2, 0.4, 0.6})
	b := constant("b", [4]float32{0.1, 0.1, 0.7, 0.1}, [3]float32{0.6, 0, 1})
	tests := []struct {
		wa, wb float64
		label  uint8
		det    [3]float32
	}{
		// 0.5·0.6 + 0.5·0.1 = 0.35 for REA against 0.45 for SRF.
		{0.5, 0.5, 2, [3]float32{0.4, 0.2, 0.8}},
		// 0.8·0.6 + 0.2·0.1 = 0.5 for REA against 0.3 for SRF.
		{0.8, 0.2, 1, [3]float32{0.28, 0.32, 0.68}},
		{0.25, 0.75, 2, [3]float32{0.5, 0.1, 0.9}},
	}
	const n, h, w = 3, 4, 2
	for _, tc := range tests {
		p, err := New([]Member{{a, tc.wa}, {b, tc.wb}}, Options{BatchSize: 2})
		require.NoError(t, err)
		pred, err := p.Predict(testSlices(n, h, w), n, h, w)
		require.NoError(t, err)
		for i, l := range pred.Labels {
			require.Equal(t, tc.label, l, "weights %g/%g, pixel %d", tc.wa, tc.wb, i)
		}
		for i, d := range pred.Detections {
			assert.InDelta(t, tc.det[i%3], d, 1e-6, "weights %g/%g, detection %d", tc.wa, tc.wb, i)
		}
	}
}

func TestFusionMatchesMetricsFuse(t *testing.T) {
	a, b := positional("a", 1), positional("b", -2)
	const n, h, w = 5, 6, 4
	x := testSlices(n, h, w)
	p, err := New([]Member{{a, 0.3}, {b, 0.7}}, Options{BatchSize: 2})
	require.NoError(t, err)
	got, err := p.Predict(x, n, h, w)
	require.NoError(t, err)

	pa, da := outputs(a, x, n, h, w)
	pb, db := outputs(b, x, n, h, w)
	fused, err := fuse([]float32{0.3, 0.7}, pa, pb)
	require.NoError(t, err)
	labels, err := argmax(fused, n, 4)
	require.NoError(t, err)
	fusedDet, err := fuse([]float32{0.3, 0.7}, da, db)
	require.NoError(t, err)
	assert.Equal(t, labels, got.Labels)
	assert.InDeltaSlice(t, fusedDet, got.Detections, 1e-6)
	assert.Equal(t, 1, a.evals, "New puts the networks in evaluation mode")
}

// outputs runs a stub slice by slice in plain Go: probabilities n×4×h×w
// (through the log and exp its Forward and the fusion take) and
// detections n×3.
func outputs(s *stub, x []float32, n, h, w int) (probs, dets []float32) {
	for i := range n {
		p, d := s.probs(x[i*3*h*w:(i+1)*3*h*w], h, w)
		for _, v := range p {
			probs = append(probs, float32(math.Exp(float64(float32(math.Log(float64(v)))))))
		}
		dets = append(dets, d...)
	}
	return probs, dets
}

func TestFlipAugmentationMirrorsBack(t *testing.T) {
	net := positional("net", 3)
	const n, h, w = 3, 5, 8
	x := testSlices(n, h, w)
	p, err := New([]Member{{net, 1}}, Options{TTA: FlipTTA})
	require.NoError(t, err)
	got, err := p.Predict(x, n, h, w)
	require.NoError(t, err)

	// Expected: the mean of the probabilities of each slice and the
	// mirrored probabilities of its mirror.
	probs, dets := outputs(net, x, n, h, w)
	probsM, detsM := outputs(net, mirror(x, n*3, h, w), n, h, w)
	probsM = mirror(probsM, n*4, h, w)
	mean := make([]float32, len(probs))
	for i := range mean {
		mean[i] = (probs[i] + probsM[i]) * 0.5
	}
	labels, err := argmax(mean, n, 4)
	require.NoError(t, err)
	assert.Equal(t, labels, got.Labels)
	for i := range dets {
		assert.InDelta(t, (dets[i]+detsM[i])/2, got.Detections[i], 1e-6)
	}

	// The stub is not mirror-symmetric, so mirroring matters: without
	// augmentation, or averaging without mirroring back, the labels differ.
	plain, err := New([]Member{{net, 1}}, Options{})
	require.NoError(t, err)
	noTTA, err := plain.Predict(x, n, h, w)
	require.NoError(t, err)
	assert.NotEqual(t, noTTA.Labels, got.Labels)
	unmirrored, _ := outputs(net, mirror(x, n*3, h, w), n, h, w)
	for i := range mean {
		mean[i] = (probs[i] + unmirrored[i]) * 0.5
	}
	wrong, err := argmax(mean, n, 4)
	require.NoError(t, err)
	assert.NotEqual(t, wrong, got.Labels)
}

func TestFlipAugmentationOfFusion(t *testing.T) {
	a, b := positional("a", 2), positional("b", -1)
	const n, h, w = 2, 4, 6
	x := testSlices(n, h, w)
	p, err := New([]Member{{a, 0.5}, {b, 0.5}}, Options{TTA: FlipTTA})
	require.NoError(t, err)
	got, err := p.Predict(x, n, h, w)
	require.NoError(t, err)

	var perModel [][]float32
	var perModelDet [][]float32
	for _, s := range []*stub{a, b} {
		probs, dets := outputs(s, x, n, h, w)
		probsM, detsM := outputs(s, mirror(x, n*3, h, w), n, h, w)
		probsM = mirror(probsM, n*4, h, w)
		for i := range probs {
			probs[i] = (probs[i] + probsM[i]) * 0.5
		}
		for i := range dets {
			dets[i] = (dets[i] + detsM[i]) * 0.5
		}
		perModel = append(perModel, probs)
		perModelDet = append(perModelDet, dets)
	}
	fused, err := fuse([]float32{0.5, 0.5}, perModel...)
	require.NoError(t, err)
	labels, err := argmax(fused, n, 4)
	require.NoError(t, err)
	fusedDet, err := fuse([]float32{0.5, 0.5}, perModelDet...)
	require.NoError(t, err)
	assert.Equal(t, labels, got.Labels)
	assert.InDeltaSlice(t, fusedDet, got.Detections, 1e-6)
}

func TestPredictorMatchesModelPredict(t *testing.T) {
	torch.ManualSeed(3)
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer m.Free()
	const n, h, w = 5, 32, 16
	x := testSlices(n, h, w)
	want := modelPredict(t, m, x, n, h, w, 2)

	// One network: the argmax of its log-probabilities, batch size aside.
	for _, batch := range []int{1, 2, 3, 8} {
		p, err := New([]Member{{m, 1}}, Options{BatchSize: batch})
		require.NoError(t, err)
		got, err := p.Predict(x, n, h, w)
		require.NoError(t, err)
		assert.Equal(t, want.Labels, got.Labels, "batch %d", batch)
		assert.InDeltaSlice(t, want.Detections, got.Detections, 1e-6, "batch %d", batch)
	}
	assert.False(t, m.Training())

	// A network fused with itself says what it says alone, up to the
	// rounding of exp.
	p, err := New([]Member{{m, 0.5}, {m, 0.5}}, Options{})
	require.NoError(t, err)
	got, err := p.Predict(x, n, h, w)
	require.NoError(t, err)
	assertMostLabelsAgree(t, want, got)
	assert.InDeltaSlice(t, want.Detections, got.Detections, 1e-6)
}

// assertMostLabelsAgree checks that all but a thousandth of the labels of
// two predictions agree: rounding apart, only near-ties differ.
func assertMostLabelsAgree(t *testing.T, want, got *models.Prediction) {
	t.Helper()
	require.Len(t, got.Labels, len(want.Labels))
	same := 0
	for i := range want.Labels {
		if want.Labels[i] == got.Labels[i] {
			same++
		}
	}
	assert.GreaterOrEqual(t, float64(same), 0.999*float64(len(want.Labels)))
}

// TestLayouts: a predictor lays its networks out channels last on the CPU
// unless told otherwise, and leaves other networks as they are.
func TestLayouts(t *testing.T) {
	torch.ManualSeed(3)
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer m.Free()
	other := constant("other", [4]float32{1, 0, 0, 0}, [3]float32{})
	for _, tc := range []struct {
		layout Layout
		want   torch.MemoryFormat
	}{
		{DefaultLayout, torch.ChannelsLast},
		{Contiguous, torch.ContiguousFormat},
		{ChannelsLast, torch.ChannelsLast},
		{DefaultLayout, torch.ChannelsLast},
	} {
		p, err := New([]Member{{m, 0.5}, {other, 0.5}}, Options{Layout: tc.layout})
		if tc.layout == ChannelsLast {
			require.ErrorContains(t, err, "other cannot run channels last")
			p, err = New([]Member{{m, 1}}, Options{Layout: tc.layout})
		}
		require.NoError(t, err, tc.layout)
		assert.Equal(t, tc.want, m.MemoryFormat(), tc.layout)
		p.Free()
	}
}

func TestNewRejects(t *testing.T) {
	a, b := constant("a", [4]float32{1, 0, 0, 0}, [3]float32{}), constant("b", [4]float32{1, 0, 0, 0}, [3]float32{})
	gpu := constant("g", [4]float32{1, 0, 0, 0}, [3]float32{})
	gpu.device = torch.CUDA(0)
	tests := []struct {
		members []Member
		opts    Options
		want    string
	}{
		{nil, Options{}, "no network to run"},
		{[]Member{{a, 0.5}, {b, 0.4}}, Options{}, "fusion weights a:0.5, b:0.4 sum to 0.9, not 1"},
		{[]Member{{a, 0.5}}, Options{}, "sum to 0.5, not 1"},
		{[]Member{{a, 1.5}, {b, -0.5}}, Options{}, "b: fusion weight -0.5 must be a positive number"},
		{[]Member{{a, 0}, {b, 1}}, Options{}, "a: fusion weight 0 must be a positive number"},
		{[]Member{{a, math.NaN()}}, Options{}, "must be a positive number"},
		{[]Member{{a, 0.5}, {gpu, 0.5}}, Options{}, "a is on cpu but g on cuda:0"},
		{[]Member{{a, 1}}, Options{BatchSize: -1}, "batch size -1 is negative"},
		{[]Member{{a, 1}}, Options{TTA: "rotate"}, `unknown test-time augmentation "rotate"`},
		{[]Member{{nil, 1}}, Options{}, "no network"},
		{[]Member{{a, 1}}, Options{Layout: "diagonal"}, `unknown layout "diagonal"`},
		{[]Member{{a, 1}}, Options{Layout: ChannelsLast}, "a cannot run channels last"},
	}
	for _, tc := range tests {
		_, err := New(tc.members, tc.opts)
		require.Error(t, err, tc.want)
		assert.Contains(t, err.Error(), tc.want)
	}
	// Decimal weights that sum to 1 only up to rounding are accepted.
	_, err := New([]Member{{a, 0.1}, {b, 0.2}, {a, 0.7}}, Options{})
	assert.NoError(t, err)
}

func TestPredictRejectsBadInput(t *testing.T) {
	p, err := New([]Member{{constant("a", [4]float32{0.7, 0.1, 0.1, 0.1}, [3]float32{}), 1}}, Options{})
	require.NoError(t, err)
	_, err = p.Predict(make([]float32, 10), 1, 2, 2)
	assert.ErrorContains(t, err, "10 values for 1 slices of 3×2×2, want 12")
	_, err = p.Predict(nil, 0, 2, 2)
	assert.ErrorContains(t, err, "cannot predict 0 slices")
	dst := models.NewPrediction(2, 2, 2, false)
	assert.ErrorContains(t, p.PredictInto(dst, 1, make([]float32, 24), 2), "slices 1..2 do not fit a prediction of 2 slices")

	// A real network names the problem with its input.
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer m.Free()
	p, err = New([]Member{{m, 1}}, Options{})
	require.NoError(t, err)
	_, err = p.Predict(make([]float32, 3*20*16), 1, 20, 16)
	assert.ErrorContains(t, err, "unet: input height 20 and width 16 must be positive multiples of 16")
}

func TestParseTTA(t *testing.T) {
	for in, want := range map[string]TTA{"": NoTTA, "none": NoTTA, "flip": FlipTTA} {
		got, err := ParseTTA(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseTTA("Flip")
	assert.ErrorContains(t, err, `unknown test-time augmentation "Flip" (want none or flip)`)
}

func TestPredictorString(t *testing.T) {
	a, b := constant("unet_nested", [4]float32{1}, [3]float32{}), constant("unet", [4]float32{1}, [3]float32{})
	p, err := New([]Member{{a, 0.5}, {b, 0.5}}, Options{TTA: FlipTTA})
	require.NoError(t, err)
	assert.Equal(t, "unet_nested 0.5 + unet 0.5, tta flip", p.String())
	p, err = New([]Member{{b, 1}}, Options{})
	require.NoError(t, err)
	assert.Equal(t, "unet", p.String())
}

// modelPredict is the test oracle of a single network's prediction: the
// network's own batches, in evaluation mode.
func modelPredict(t *testing.T, m *models.Model, images []float32, n, h, w, batch int) *models.Prediction {
	t.Helper()
	m.Eval()
	p := models.NewPrediction(n, h, w, false)
	size := 3 * h * w
	for at := 0; at < n; at += batch {
		k := min(batch, n-at)
		require.NoError(t, m.PredictInto(p, at, images[at*size:(at+k)*size], k))
	}
	return p
}

// One Predictor serves many goroutines: 16 of them × 50 predictions each,
// of a fusion with flip augmentation, give bit for bit what one goroutine
// gets, and leave every tensor of every network's state dict as it was.
// make test runs it under the race detector too. The slices are tiny so
// that the 800 predictions take seconds.
func TestConcurrentPredictions(t *testing.T) {
	// One intra-op thread each: 16 goroutines on their own OS threads
	// would otherwise each start a pool of all cores.
	defer torch.SetNumThreads(torch.NumThreads())
	torch.SetNumThreads(1)
	torch.ManualSeed(21)
	a, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer a.Free()
	b, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer b.Free()
	p, err := New([]Member{{a, 0.5}, {b, 0.5}}, Options{BatchSize: 1, TTA: FlipTTA})
	require.NoError(t, err)

	const n, h, w = 1, 16, 16
	inputs := make([][]float32, 4)
	want := make([]*models.Prediction, len(inputs))
	for i := range inputs {
		inputs[i] = testSlices(n, h, w)
		for j := range inputs[i] {
			inputs[i][j] += float32(i) / 10
		}
		want[i], err = p.Predict(inputs[i], n, h, w)
		require.NoError(t, err)
	}
	before := map[string][]float32{}
	for k, m := range []*models.Model{a, b} {
		for _, e := range m.StateDict() {
			if e.Tensor.DType() == torch.Float32 {
				before[fmt.Sprint(k, e.Name)] = e.Tensor.Float32s()
			}
		}
	}

	const goroutines, calls = 16, 50
	errs := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			for c := range calls {
				i := (g + c) % len(inputs)
				got, err := p.Predict(inputs[i], n, h, w)
				if err == nil && (!slices.Equal(want[i].Labels, got.Labels) || !slices.Equal(want[i].Detections, got.Detections)) {
					err = fmt.Errorf("goroutine %d, call %d: prediction of input %d differs from the sequential one", g, c, i)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range goroutines {
		require.NoError(t, <-errs)
	}
	for k, m := range []*models.Model{a, b} {
		assert.False(t, m.Training())
		for _, e := range m.StateDict() {
			if want, ok := before[fmt.Sprint(k, e.Name)]; ok {
				require.Equal(t, want, e.Tensor.Float32s(), "network %d: %s changed", k, e.Name)
			}
		}
	}
}

// TestBatchesInFlight: predicting several batches at once gives what one
// at a time gives, bit for bit, and an error in any batch is the
// prediction's.
func TestBatchesInFlight(t *testing.T) {
	torch.ManualSeed(11)
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer m.Free()
	const n, h, w = 7, 32, 16
	images := testSlices(n, h, w)
	var want *models.Prediction
	for _, inFlight := range []int{1, 2, 3, 8} {
		p, err := New([]Member{{m, 1}}, Options{BatchSize: 2, InFlight: inFlight})
		require.NoError(t, err)
		got, err := p.Predict(images, n, h, w)
		require.NoError(t, err)
		if want == nil {
			want = got
			continue
		}
		assert.Equal(t, want.Labels, got.Labels, "%d in flight", inFlight)
		assert.Equal(t, want.Detections, got.Detections, "%d in flight", inFlight)
	}
	_, err = New([]Member{{m, 1}}, Options{InFlight: -1})
	assert.ErrorContains(t, err, "batches in flight -1 is negative")

	// The third batch fails: its network refuses slices of that content.
	failing := &stub{name: "failing", probs: func(x []float32, h, w int) ([]float32, []float32) {
		if x[0] == images[4*3*h*w] {
			panic(&torch.Error{Op: "forward", Msg: "refused"})
		}
		p, d := make([]float32, 4*h*w), []float32{0, 0, 0}
		for i := range h * w {
			p[i] = 1
		}
		return p, d
	}}
	p, err := New([]Member{{failing, 1}}, Options{BatchSize: 2, InFlight: 2})
	require.NoError(t, err)
	_, err = p.Predict(images, n, h, w)
	assert.ErrorContains(t, err, "refused")
}

// TestPipelinedBatches: the next batch's input is made while the current
// batch runs (each pass here waits for it, and would wait in vain if the
// two took turns), with InFlight+1 buffers of a batch, whatever the number
// of batches; an error in a pass, or a cancellation, stops the making of
// inputs.
func TestPipelinedBatches(t *testing.T) {
	const n, h, w, batch = 9, 16, 16, 2
	batches := (n + batch - 1) / batch
	images := testSlices(n, h, w)
	size := 3 * h * w
	for _, inFlight := range []int{1, 2} {
		t.Run(fmt.Sprint(inFlight, " in flight"), func(t *testing.T) {
			var mu sync.Mutex
			made := map[int]chan struct{}{}
			madeOf := func(b int) chan struct{} {
				mu.Lock()
				defer mu.Unlock()
				if made[b] == nil {
					made[b] = make(chan struct{})
				}
				return made[b]
			}
			var buffers atomic.Int32
			net := &stub{name: "waits", probs: func(x []float32, h, w int) ([]float32, []float32) {
				p := make([]float32, 4*h*w)
				for i := range h * w {
					p[i] = 1
				}
				return p, []float32{x[0], 0, 0}
			}}
			gated := &gate{stub: net, before: func(first float32) error {
				at := int(first)
				if next := at/batch + inFlight; next < batches {
					select {
					case <-madeOf(next):
					case <-time.After(10 * time.Second):
						return fmt.Errorf("batch %d ran, batch %d's input was not made meanwhile", at/batch, next)
					}
				}
				return nil
			}}
			p, err := New([]Member{{gated, 1}}, Options{BatchSize: batch, InFlight: inFlight})
			require.NoError(t, err)
			pred, err := p.predict(context.Background(), n, h, w, func(buf *[]float32, at, k int) []float32 {
				if *buf == nil {
					buffers.Add(1)
					*buf = make([]float32, batch*size)
				}
				copy(*buf, images[at*size:(at+k)*size])
				for i := range k {
					(*buf)[i*size] = float32(at + i) // the slice's number, for the passes
				}
				close(madeOf(at / batch))
				return (*buf)[:k*size]
			})
			require.NoError(t, err)
			for i := range n {
				assert.Equal(t, float32(i), pred.Detections[i*3], "slice %d", i)
			}
			assert.Equal(t, int32(inFlight+1), buffers.Load(), "buffers")
		})
	}

	// A failing pass stops the making of inputs.
	var madeInputs atomic.Int32
	failing := &gate{stub: constant("c", [4]float32{1, 0, 0, 0}, [3]float32{}), before: func(float32) error {
		return errors.New("refused")
	}}
	p, err := New([]Member{{failing, 1}}, Options{BatchSize: 1})
	require.NoError(t, err)
	_, err = p.predict(context.Background(), n, h, w, func(_ *[]float32, at, k int) []float32 {
		madeInputs.Add(1)
		return images[at*size : (at+k)*size]
	})
	assert.ErrorContains(t, err, "refused")
	assert.LessOrEqual(t, madeInputs.Load(), int32(2), "the failing batch's and the next")

	// So does a cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	madeInputs.Store(0)
	p, err = New([]Member{{constant("c", [4]float32{1, 0, 0, 0}, [3]float32{}), 1}}, Options{BatchSize: 1})
	require.NoError(t, err)
	_, err = p.predict(ctx, n, h, w, func(_ *[]float32, at, k int) []float32 {
		if madeInputs.Add(1) == 2 {
			cancel()
		}
		return images[at*size : (at+k)*size]
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int32(2), madeInputs.Load(), "none after the cancellation")
}

// gate runs before on the first input value of each batch, then the stub;
// an error from before is the pass's.
type gate struct {
	*stub
	before func(first float32) error
}

func (g *gate) Forward(x *torch.Tensor) (seg, det *torch.Tensor, err error) {
	if err := g.before(x.Float32s()[0]); err != nil {
		return nil, nil, err
	}
	return g.stub.Forward(x)
}

// TestPredictOnCUDA: on a GPU the batches go up from pinned memory without
// waiting and only labels and detections come back; the prediction is the
// CPU's up to the GPU's rounding.
func TestPredictOnCUDA(t *testing.T) {
	if !torch.CUDAIsAvailable() {
		t.Skip("no CUDA device")
	}
	torch.ManualSeed(12)
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	defer m.Free()
	const n, h, w = 5, 64, 32
	x := testSlices(n, h, w)
	cpu, err := New([]Member{{m, 1}}, Options{BatchSize: 2})
	require.NoError(t, err)
	want, err := cpu.Predict(x, n, h, w)
	require.NoError(t, err)
	require.NoError(t, m.To(torch.CUDA(0)))
	gpu, err := New([]Member{{m, 1}}, Options{BatchSize: 2})
	require.NoError(t, err)
	got, err := gpu.Predict(x, n, h, w)
	require.NoError(t, err)
	assertMostLabelsAgree(t, want, got)
	assert.InDeltaSlice(t, want.Detections, got.Detections, 1e-3)
}
