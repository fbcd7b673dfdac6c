package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallBatch is a batch of two 32×32 slices with every class in it.
func smallBatch() *oct.Batch {
	n, h, w := 2, 32, 32
	b := &oct.Batch{N: n, H: h, W: w, Images: make([]float32, n*3*h*w), Labels: make([]int64, n*h*w),
		Targets: make([]float32, n*oct.NumLesions), Paths: make([]string, n)}
	for i := range b.Images {
		b.Images[i] = float32((i*2654435761)%1000)/500 - 1
	}
	for s := range n {
		for y := range h {
			for x := range w {
				c := int64(0)
				switch {
				case y < 8 && x < 16:
					c = 1
				case y >= 16 && y < 20 && x >= 4+s:
					c = 2
				case s == 0 && y >= 24 && x >= 24:
					c = 3
				}
				b.Labels[(s*h+y)*w+x] = c
				if c > 0 {
					b.Target(s)[c-1] = 1
				}
			}
		}
	}
	return b
}

// TestBF16TrainingLearns trains UNet on one batch in bfloat16 mixed
// precision on the CPU: the loss falls, and it differs from the float32
// run's, so autocast was on.
func TestBF16TrainingLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for seconds")
	}
	batch := smallBatch()
	run := func(p models.Precision) []float64 {
		torch.ManualSeed(7)
		m, err := models.New(models.NameUNet)
		require.NoError(t, err)
		defer m.Free()
		loss, err := losses.New(losses.Mix3)
		require.NoError(t, err)
		opt, err := optim.NewAdam(m.Parameters(), optim.AdamOptions{LR: 1e-3, Betas: AdamBetas, Eps: adamEps})
		require.NoError(t, err)
		tr := &trainer{cfg: Config{Device: torch.CPU, Precision: p}, model: m, opt: opt, loss: loss}
		m.Train()
		var totals []float64
		for range 12 {
			v, _, err := tr.trainStep(batch)
			require.NoError(t, err)
			require.False(t, math.IsNaN(v.Total) || math.IsInf(v.Total, 0))
			totals = append(totals, v.Total)
		}
		return totals
	}
	bf16, fp32 := run(models.BF16), run(models.Float32)
	t.Logf("bf16 losses %.4f", bf16)
	t.Logf("fp32 losses %.4f", fp32)
	assert.Less(t, bf16[len(bf16)-1], 0.8*bf16[0], "the bf16 run learns")
	assert.NotEqual(t, fp32, bf16, "the bf16 run rounds differently")
	assert.InDelta(t, fp32[0], bf16[0], 0.05*fp32[0], "the first losses agree within bfloat16's precision")
}

// TestGradScalerRunResumesExactly trains with the gradient scaler that
// fp16 runs have, in float32 on the CPU, where fp16 does not run: its
// state is in every checkpoint, and a resumed run goes on exactly. Scaling
// by a power of two is exact in float32, so the weights are those of a
// run without the scaler.
func TestGradScalerRunResumesExactly(t *testing.T) {
	plain := tinyConfig(t)
	_, err := Run(context.Background(), plain, nil)
	require.NoError(t, err)

	gradScaling = true
	defer func() { gradScaling = false }()
	straight := tinyConfig(t)
	_, err = Run(context.Background(), straight, nil)
	require.NoError(t, err)
	want := finalState(t, straight)
	scale, _ := want.checkpoint.Extra.Get(checkpointScalerScale)
	tracker, _ := want.checkpoint.Extra.Get(checkpointScalerTracker)
	assert.Equal(t, 65536.0, scale, "no step overflowed")
	assert.Equal(t, int64(8), tracker, "two epochs of four clean steps")
	base := finalState(t, plain).checkpoint.StateDict
	for _, k := range base.Keys() {
		a, _ := base.Get(k)
		b, _ := want.checkpoint.StateDict.Get(k)
		require.True(t, a.Equal(b), "weights differ at %s", k)
	}

	requireSameState(t, want, oneEpochThenResume(t, tinyConfig(t)))

	// A damaged state is refused, naming it.
	for _, bad := range []any{"many", -1.0, 0.3} {
		c, err := models.ReadCheckpoint(filepath.Join(straight.Out(), CheckpointDir, LatestName))
		require.NoError(t, err)
		c.Extra.Set(checkpointScalerScale, bad)
		path := filepath.Join(t.TempDir(), "bad.pth.tar")
		require.NoError(t, c.Save(path, models.SaveOptions{}))
		resumed := tinyConfig(t)
		resumed.Epochs = 3
		resumed.Resume = path
		_, err = Run(context.Background(), resumed, nil)
		require.Error(t, err, "%v", bad)
		assert.Contains(t, err.Error(), "scale", "%v", bad)
	}

	// A run without a scaler resumes with a fresh one, and says so.
	noScaler := tinyConfig(t)
	noScaler.Resume = filepath.Join(plain.Out(), CheckpointDir, LatestName)
	noScaler.Epochs = 3
	var start Start
	_, err = Run(context.Background(), noScaler, &recorder{start: &start})
	require.NoError(t, err)
	assert.Contains(t, start.Notes[len(start.Notes)-1], "had no gradient scaler")
}

func TestPrecisionConfig(t *testing.T) {
	for _, tc := range []struct {
		p    models.Precision
		want string
	}{
		{models.FP16, "fp16 runs on CUDA only"},
		{"fp8", `"fp8": want bf16, fp16 or fp32`},
	} {
		cfg := tinyConfig(t)
		cfg.Precision = tc.p
		_, err := Run(context.Background(), cfg, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), "Precision")
	}
}

// TestChannelsLastRunResumesExactly trains channels last: the run's
// losses are close to the contiguous run's, and it resumes exactly.
func TestChannelsLastRunResumesExactly(t *testing.T) {
	base, want := runBesidePlain(t, func(c *Config) { c.ChannelsLast = true })
	for i, r := range want.rows {
		// Not equal: the detection head's dropout draws its mask in
		// memory order, which the layout changes (libtorch 2.x).
		assert.InDelta(t, base.rows[i].TrainLoss, r.TrainLoss, 0.1*base.rows[i].TrainLoss, "epoch %d", i)
	}

	cfg := tinyConfig(t)
	cfg.ChannelsLast = true
	requireSameState(t, want, oneEpochThenResume(t, cfg))
}

// TestFastPathRunResumesExactly trains with the transposed convolutions by
// phases (Config.FastPath): the losses are those of the exact run up to
// rounding but not bit for bit, so the phases ran, and the run resumes
// exactly.
func TestFastPathRunResumesExactly(t *testing.T) {
	base, want := runBesidePlain(t, func(c *Config) { c.FastPath = true })
	for i, r := range want.rows {
		assert.InDelta(t, base.rows[i].TrainLoss, r.TrainLoss, 1e-3*base.rows[i].TrainLoss, "epoch %d", i)
	}
	a, _ := base.checkpoint.StateDict.Get("up_concat1.up.weight")
	b, _ := want.checkpoint.StateDict.Get("up_concat1.up.weight")
	require.NotNil(t, a)
	assert.False(t, a.Equal(b), "the phases sum in another order")

	cfg := tinyConfig(t)
	cfg.FastPath = true
	requireSameState(t, want, oneEpochThenResume(t, cfg))
}

// runBesidePlain runs tinyConfig as it is and with set applied, and returns
// the states the two runs leave, with as many rows each.
func runBesidePlain(t *testing.T, set func(*Config)) (plain, changed runState) {
	t.Helper()
	cfg := tinyConfig(t)
	_, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	plain = finalState(t, cfg)
	cfg = tinyConfig(t)
	set(&cfg)
	_, err = Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	changed = finalState(t, cfg)
	require.Len(t, changed.rows, len(plain.rows))
	return plain, changed
}

// oneEpochThenResume trains cfg's first epoch, resumes from its checkpoint
// for the second and returns the state the two runs leave.
func oneEpochThenResume(t *testing.T, cfg Config) runState {
	t.Helper()
	cfg.Epochs = 1
	_, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	cfg.Epochs = 2
	cfg.Resume = filepath.Join(cfg.Out(), CheckpointDir, LatestName)
	_, err = Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	return finalState(t, cfg)
}

// TestMixedPrecisionOnCUDA trains UNet on one batch in fp16 (with the
// gradient scaler that Run gives fp16 runs) and in bf16 on a GPU, when
// there is one: the loss falls in both. scripts/gpu-check.sh runs it.
func TestMixedPrecisionOnCUDA(t *testing.T) {
	if !torch.CUDAIsAvailable() {
		if os.Getenv("EDEMA_EXPECT_CUDA") == "1" {
			t.Fatal("EDEMA_EXPECT_CUDA=1 but libtorch sees no CUDA device")
		}
		t.Skip("no CUDA device")
	}
	batch := smallBatch()
	for _, p := range []models.Precision{models.FP16, models.BF16} {
		t.Run(p.String(), func(t *testing.T) {
			torch.ManualSeed(7)
			m, err := models.New(models.NameUNet)
			require.NoError(t, err)
			defer m.Free()
			require.NoError(t, m.To(torch.CUDA(0)))
			loss, err := losses.New(losses.Mix3)
			require.NoError(t, err)
			opt, err := optim.NewAdam(m.Parameters(), optim.AdamOptions{LR: 1e-3, Betas: AdamBetas, Eps: adamEps})
			require.NoError(t, err)
			tr := &trainer{cfg: Config{Device: torch.CUDA(0), Precision: p}, model: m, opt: opt, loss: loss}
			if p == models.FP16 {
				tr.scaler, err = optim.NewGradScaler(optim.DefaultGradScalerOptions())
				require.NoError(t, err)
			}
			m.Train()
			var totals []float64
			for range 12 {
				v, _, err := tr.trainStep(batch)
				require.NoError(t, err)
				totals = append(totals, v.Total)
			}
			t.Logf("%s losses %.4f", p, totals)
			assert.Less(t, totals[len(totals)-1], 0.8*totals[0])
			if tr.scaler != nil {
				t.Logf("scale after 12 steps: %g", tr.scaler.ScaleValue())
				assert.Positive(t, tr.scaler.ScaleValue())
			}
		})
	}
}
