package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/torch"

	"github.com/edema/edema/oct"
)

func TestNew(t *testing.T) {
	for _, name := range Names() {
		l, err := New(name)
		require.NoError(t, err)
		assert.Equal(t, name, l.Name())
		assert.Contains(t, l.String(), name)
	}
	for name, tasks := range map[string]oct.Tasks{Mix3: oct.BothTasks, Mix33: oct.BothTasks, Mix2: oct.Segmentation, BCEOnly: oct.Detection} {
		l, err := New(name)
		require.NoError(t, err)
		assert.Equal(t, tasks, l.Tasks(), name)
	}
	_, err := New("wce")
	assert.EqualError(t, err, `unknown loss "wce": want one of mix_3, mix_33, mix_2, bce`)

	var zero Loss
	_, err = zero.Compute(nil, nil, nil, nil)
	assert.ErrorContains(t, err, "not made by losses.New")
}

// TestHandComputed checks the terms on a batch small enough to work out
// by hand: one image of 1×2 pixels labelled 1 and 0, predicted with
// P = (0.25, 0.5, 0.125, 0.125) at both pixels.
func TestHandComputed(t *testing.T) {
	p := []float64{0.25, 0.5, 0.125, 0.125}
	logp := make([]float32, 0, 8)
	for _, v := range p {
		logp = append(logp, float32(math.Log(v)), float32(math.Log(v)))
	}
	L := torch.FromSlice(logp, 1, 4, 1, 2)
	T := torch.FromSlice([]int64{1, 0}, 1, 1, 2)
	D := torch.FromSlice([]float32{0.5, 0.25, 0.75}, 1, 3)
	Y := torch.FromSlice([]float32{1, 0, 0}, 1, 3)

	// WCE: (5·ln 2 + 1·ln 4) / (5 + 1).
	wantWCE := (5*math.Log(2) + math.Log(4)) / 6
	// Class 1: 2·0.5 / (0.5 + 0.5 + 1) = 0.5; classes 2 and 3 are absent.
	dice := []float64{0.5, 1, 1}
	wantDice := 1 - (0.5+1+1)/3
	wantELDice := math.Sqrt(math.Ln2) / 3
	wantBCE := (math.Log(2) - math.Log(0.75) - math.Log(0.25)) / 3

	check := func(want float64, got *torch.Tensor, err error) {
		t.Helper()
		require.NoError(t, err)
		assert.InDelta(t, want, got.Item(), 1e-6)
	}
	got, err := WCE(L, T)
	check(wantWCE, got, err)
	got, err = Dice(L, T)
	check(wantDice, got, err)
	got, err = ExpLogDice(L, T)
	check(wantELDice, got, err)
	got, err = BCE(D, Y)
	check(wantBCE, got, err)
	got, err = ClassDice(L, T)
	require.NoError(t, err)
	assert.InDeltaSlice(t, dice, toFloat64s(got.Float32s()), 1e-6)

	nan := math.NaN()
	for name, want := range map[string]Values{
		Mix3:    {Total: wantWCE + wantDice + wantBCE, WCE: wantWCE, Dice: wantDice, BCE: wantBCE},
		Mix33:   {Total: wantWCE + wantELDice + wantBCE, WCE: wantWCE, Dice: wantELDice, BCE: wantBCE},
		Mix2:    {Total: wantWCE + wantDice, WCE: wantWCE, Dice: wantDice, BCE: nan},
		BCEOnly: {Total: wantBCE, WCE: nan, Dice: nan, BCE: wantBCE},
	} {
		l, err := New(name)
		require.NoError(t, err)
		terms, err := l.Compute(L, T, D, Y)
		require.NoError(t, err)
		v, err := terms.Values()
		require.NoError(t, err)
		got := []float64{v.Total, v.WCE, v.Dice, v.BCE}
		for i, w := range []float64{want.Total, want.WCE, want.Dice, want.BCE} {
			if math.IsNaN(w) {
				assert.True(t, math.IsNaN(got[i]), "%s: term %d is %g, want absent (NaN)", name, i, got[i])
			} else {
				assert.InDelta(t, w, got[i], 1e-6, "%s: term %d", name, i)
			}
		}
	}
	// A task the loss does not train needs no input.
	seg, err := New(Mix2)
	require.NoError(t, err)
	terms, err := seg.Compute(L, T, nil, nil)
	require.NoError(t, err)
	assert.InDelta(t, wantWCE+wantDice, terms.Total.Item(), 1e-6)
	assert.Nil(t, terms.BCE)
	det, err := New(BCEOnly)
	require.NoError(t, err)
	terms, err = det.Compute(nil, nil, D, Y)
	require.NoError(t, err)
	assert.InDelta(t, wantBCE, terms.Total.Item(), 1e-6)
	_, err = det.Compute(L, T, nil, Y)
	assert.ErrorContains(t, err, "loss bce")
}

func toFloat64s(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// TestDiceZeroGuard: a present class whose probabilities underflow to 0
// gives PyTorch an infinite ELDice; here a finite term and no NaN.
func TestDiceZeroGuard(t *testing.T) {
	z := torch.FromSlice([]float32{200, 200, 0, 0, 0, 0, 0, 0}, 1, 4, 1, 2).SetRequiresGrad(true)
	L := torch.LogSoftmax(z, 1)
	T := torch.FromSlice([]int64{1, 0}, 1, 1, 2)
	dice, err := ClassDice(L, T)
	require.NoError(t, err)
	assert.Equal(t, []float32{0, 1, 1}, dice.Float32s())

	loss, err := ExpLogDice(L, T)
	require.NoError(t, err)
	assert.InDelta(t, math.Sqrt(126*math.Ln2)/3, loss.Item(), 1e-5)
	loss.Backward()
	for _, g := range z.Grad().Float32s() {
		assert.False(t, math.IsNaN(float64(g)) || math.IsInf(float64(g), 0), "gradient %v", g)
	}
}

// TestScopes: the results outlive the call and join the caller's scope;
// outside any scope they stay usable until freed.
func TestScopes(t *testing.T) {
	L := torch.LogSoftmax(torch.Randn([]int64{2, 4, 4, 4}, torch.Float32CPU), 1)
	T := torch.Zeros([]int64{2, 4, 4}, torch.Options{DType: torch.Int64, Device: torch.CPU})
	D := torch.Full([]int64{2, 3}, 0.5, torch.Float32CPU)
	Y := torch.Zeros([]int64{2, 3}, torch.Float32CPU)
	l, err := New(Mix33)
	require.NoError(t, err)

	var terms Terms
	torch.Scoped(func(*torch.Scope) {
		terms, err = l.Compute(L, T, D, Y)
		require.NoError(t, err)
		_, err = terms.Values()
		require.NoError(t, err)
	})
	for _, x := range []*torch.Tensor{terms.Total, terms.WCE, terms.Dice, terms.BCE} {
		assert.True(t, x.IsFreed(), "a term kept for the caller's scope was not freed when that scope closed")
	}
	assert.False(t, L.IsFreed())

	terms, err = l.Compute(L, T, D, Y)
	require.NoError(t, err)
	v, err := terms.Values()
	require.NoError(t, err)
	assert.InDelta(t, v.WCE+v.Dice+v.BCE, v.Total, 1e-6)
	assert.Zero(t, v.Dice, "every lesion class is absent")
	terms.Total.Free()
}

func TestBadInput(t *testing.T) {
	f32 := torch.Float32CPU
	i64 := torch.Options{DType: torch.Int64, Device: torch.CPU}
	L := torch.LogSoftmax(torch.Randn([]int64{2, 4, 8, 8}, f32), 1)
	T := torch.Zeros([]int64{2, 8, 8}, i64)
	D := torch.Full([]int64{2, 3}, 0.5, f32)
	Y := torch.Zeros([]int64{2, 3}, f32)
	freed := torch.Zeros([]int64{2, 8, 8}, i64)
	freed.Free()
	withLabel := func(v int64) *torch.Tensor {
		x := torch.Zeros([]int64{2, 8, 8}, i64)
		x.Select(0, 1).Select(0, 3).Select(0, 5).FillInPlace(float64(v))
		return x
	}

	tests := []struct {
		name       string
		L, T, D, Y *torch.Tensor
		want       string
	}{
		{"nil log-probabilities", nil, T, D, Y, "log-probabilities are missing"},
		{"freed labels", L, freed, D, Y, "labels were already freed"},
		{"rank", L.Select(0, 0), T, D, Y, "log-probabilities have shape 4×8×8, want N×4×H×W"},
		{"classes", L.Narrow(1, 0, 3), T, D, Y, "log-probabilities have shape 2×3×8×8, want N×4×H×W"},
		{"integer log-probabilities", T.Unsqueeze(1).Expand(2, 4, 8, 8), T, D, Y, "log-probabilities have dtype int64"},
		{"empty", torch.Zeros([]int64{0, 4, 8, 8}, f32), torch.Zeros([]int64{0, 8, 8}, i64), D, Y, "log-probabilities have shape 0×4×8×8: the batch is empty"},
		{"label shape", L, T.Narrow(2, 0, 4), D, Y, "labels have shape 2×8×4, want 2×8×8 to match log-probabilities of shape 2×4×8×8"},
		{"label dtype", L, T.To(torch.Int32), D, Y, "labels have dtype int32, want int64"},
		{"label value", L, withLabel(7), D, Y, "1 label pixels are outside 0..3 and not 255 (ignore); the labels range from 0 to 7"},
		{"negative label", L, withLabel(-1), D, Y, "1 label pixels are outside 0..3 and not 255 (ignore); the labels range from -1 to 0"},
		{"all ignored", L, torch.Full([]int64{2, 8, 8}, 255, i64), D, Y, "every label pixel is 255 (ignore)"},
		{"detection shape", L, T, torch.Full([]int64{2, 4}, 0.5, f32), Y, "detection probabilities have shape 2×4, want 2×3"},
		{"detection batch", L, T, D.Narrow(0, 0, 1), Y.Narrow(0, 0, 1), "detection probabilities have shape 1×3, want 2×3 (one row per image of the batch)"},
		{"detection target shape", L, T, D, Y.Narrow(0, 0, 1), "detection targets have shape 1×3, want 2×3 like the probabilities"},
		{"detection target dtype", L, T, D, Y.To(torch.Float64), "detection targets have dtype float64, want float32 like the probabilities"},
		{"nil detection targets", L, T, D, nil, "detection targets are missing"},
		{"probability above 1", L, T, torch.Full([]int64{2, 3}, 1.5, f32), Y, "torch: binary_cross_entropy: all elements of input should be between 0 and 1"},
	}
	l, err := New(Mix3)
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Compute(tt.L, tt.T, tt.D, tt.Y)
			require.Error(t, err)
			assert.ErrorContains(t, err, "loss mix_3: "+tt.want)
		})
	}

	// libtorch's own failures come back as *torch.Error.
	_, err = BCE(torch.Full([]int64{2, 3}, 1.5, f32), Y)
	var terr *torch.Error
	require.ErrorAs(t, err, &terr)
	assert.ErrorContains(t, err, "binary cross-entropy: torch: binary_cross_entropy")

	_, err = WCE(L, T.To(torch.Int32))
	assert.EqualError(t, err, "weighted cross-entropy: labels have dtype int32, want int64")
	_, err = Dice(nil, T)
	assert.EqualError(t, err, "Dice loss: log-probabilities are missing (nil tensor)")
	_, err = ExpLogDice(L, withLabel(4))
	assert.ErrorContains(t, err, "exponential-logarithmic Dice loss: 1 label pixels are outside")
	_, err = BCE(D, Y.Narrow(1, 0, 2))
	assert.EqualError(t, err, "binary cross-entropy: detection targets have shape 2×2, want 2×3 like the probabilities")
	_, err = Terms{}.Values()
	assert.Error(t, err)
}

// TestDescent trains a toy two-head model (1×1 convolutions on fixed
// random features) with plain gradient descent: every step lowers the
// loss, and the Dice and detection terms fall with it.
func TestDescent(t *testing.T) {
	const n, c, h, w = 2, 6, 12, 12
	rng := rand.New(rand.NewPCG(5, 6))
	normal := func(scale float64, shape ...int64) *torch.Tensor {
		var size int64 = 1
		for _, s := range shape {
			size *= s
		}
		x := make([]float32, size)
		for i := range x {
			x[i] = float32(scale * rng.NormFloat64())
		}
		return torch.FromSlice(x, shape...)
	}
	features := normal(1, n, c, h, w)
	// Labels are the argmax of a hidden linear map of the features, so
	// the model can learn them; a border of ignored pixels as padding.
	labels := torch.Conv2d(features, normal(2, oct.NumClasses, c, 1, 1), nil, torch.Conv2dOptions{}).Argmax(1, false)
	border := torch.Ones([]int64{n, h, w}, torch.Options{DType: torch.Bool, Device: torch.CPU})
	border.Narrow(1, 1, h-2).Narrow(2, 1, w-2).ZeroInPlace()
	labels = torch.Where(border, torch.Full([]int64{}, float64(oct.IgnoreClass), torch.Options{DType: torch.Int64, Device: torch.CPU}), labels)
	target := torch.FromSlice(presence(labels.Int64s(), n), n, oct.NumLesions)

	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			loss, err := New(name)
			require.NoError(t, err)
			segW := normal(0.1, oct.NumClasses, c, 1, 1).SetRequiresGrad(true)
			detW := normal(0.1, oct.NumLesions, c, 1, 1).SetRequiresGrad(true)
			params := []*torch.Tensor{segW, detW}
			var history []Values
			for range 25 {
				torch.Scoped(func(*torch.Scope) {
					logp := torch.LogSoftmax(torch.Conv2d(features, segW, nil, torch.Conv2dOptions{}), 1)
					det := torch.AdaptiveMaxPool2d(torch.Conv2d(features, detW, nil, torch.Conv2dOptions{}), [2]int64{1, 1})
					terms, err := loss.Compute(logp, labels, det.View(n, oct.NumLesions).Sigmoid(), target)
					require.NoError(t, err)
					v, err := terms.Values()
					require.NoError(t, err)
					history = append(history, v)
					terms.Total.Backward()
					torch.NoGrad(func() {
						for _, p := range params {
							if g := p.Grad(); g != nil { // none for a task the loss does not train
								p.SubInPlace(g, 0.5)
								p.ZeroGrad()
							}
						}
					})
				})
			}
			first, last := history[0], history[len(history)-1]
			t.Logf("%s: first %+v, last %+v", name, first, last)
			for i := 1; i < len(history); i++ {
				require.Less(t, history[i].Total, history[i-1].Total, "step %d did not lower the loss", i)
			}
			assert.Less(t, last.Total, 0.7*first.Total)
			if loss.Tasks().Has(oct.Segmentation) {
				assert.Less(t, last.Dice, first.Dice)
			}
			if loss.Tasks().Has(oct.Detection) {
				assert.Less(t, last.BCE, first.BCE)
			}
		})
	}
}

// TestCUDAMatchesCPU evaluates every loss on the GPU, when there is one,
// and compares values and gradients with the CPU.
func TestCUDAMatchesCPU(t *testing.T) {
	if !torch.CUDAIsAvailable() {
		t.Skip("CUDA is not available")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	b := randomBatch(rng, "cuda", 4, 32, 32, []int64{0, 1, 3}, 0.05)
	run := func(dev torch.Device, name string) (Values, []float32, []float32) {
		s := torch.NewScope()
		defer s.Close()
		z := torch.FromSlice(b.z, int64(b.n), oct.NumClasses, int64(b.h), int64(b.w)).ToDevice(dev).Detach().SetRequiresGrad(true)
		a := torch.FromSlice(b.a, int64(b.n), oct.NumLesions).ToDevice(dev).Detach().SetRequiresGrad(true)
		labels := torch.FromSlice(b.labels, int64(b.n), int64(b.h), int64(b.w)).ToDevice(dev)
		target := torch.FromSlice(b.y, int64(b.n), oct.NumLesions).ToDevice(dev)
		l, err := New(name)
		require.NoError(t, err)
		terms, err := l.Compute(torch.LogSoftmax(z, 1), labels, a.Sigmoid(), target)
		require.NoError(t, err)
		terms.Total.Backward()
		v, err := terms.Values()
		require.NoError(t, err)
		return v, z.Grad().ToDevice(torch.CPU).Float32s(), a.Grad().ToDevice(torch.CPU).Float32s()
	}
	for _, name := range Names() {
		want, wantZ, wantA := run(torch.CPU, name)
		got, gotZ, gotA := run(torch.CUDA(0), name)
		requireClose(t, want.Total, got.Total, name)
		requireClose(t, want.Dice, got.Dice, name+" Dice term")
		requireGradClose(t, toFloat64s(wantZ), gotZ, name+" gradient w.r.t. segmentation logits")
		requireGradClose(t, toFloat64s(wantA), gotA, name+" gradient w.r.t. detection logits")
	}
}
