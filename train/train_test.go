package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/outdir"
	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/losses"
	"github.com/edema/edema/metrics"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/oct/synth"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
	"github.com/edema/edema/torch/optim"
	"github.com/edema/edema/torch/pth"
)

// tinyData is the smallest synthetic data set that trains: 2 training
// cubes and 1 validation cube of 4 slices of 32×64, made once per test
// binary.
var tinyData = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "edema-train-test-")
	if err != nil {
		return "", err
	}
	o := synth.Options{Train: 2, Val: 1, Test: 0, Slices: 4, Width: 32, Height: 64, Seed: 5, Workers: 2}
	if _, err := synth.Generate(dir, o); err != nil {
		return "", err
	}
	return dir, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := tinyData(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// tinyConfig trains UNet for 2 epochs of 4 steps on tinyData into a new
// folder.
func tinyConfig(t *testing.T) Config {
	t.Helper()
	data, err := tinyData()
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Name = models.NameUNet
	cfg.DataDir = data
	cfg.ListDir = filepath.Join(data, synth.ListDir)
	cfg.OutDir = t.TempDir()
	cfg.BatchSize = 2
	cfg.Workers = 2
	cfg.Epochs = 2
	cfg.LR = 1e-3
	cfg.Step = 1 // the learning rate changes between the epochs
	cfg.Seed = 42
	cfg.Threads = 1
	return cfg
}

// runState is everything a run leaves that a resumed run must reproduce.
type runState struct {
	checkpoint *models.Checkpoint
	rows       []Row
	best       []byte
}

func finalState(t *testing.T, cfg Config) runState {
	t.Helper()
	c, err := models.ReadCheckpoint(filepath.Join(cfg.Out(), CheckpointDir, LatestName))
	require.NoError(t, err)
	rows, err := ReadLog(filepath.Join(cfg.Out(), LogName))
	require.NoError(t, err)
	best, err := os.ReadFile(filepath.Join(cfg.Out(), CheckpointDir, BestName))
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	return runState{checkpoint: c, rows: rows, best: best}
}

func requireSameState(t *testing.T, want, got runState) {
	t.Helper()
	w, g := want.checkpoint, got.checkpoint
	require.Equal(t, w.StateDict.Keys(), g.StateDict.Keys())
	for _, k := range w.StateDict.Keys() {
		a, _ := w.StateDict.Get(k)
		b, _ := g.StateDict.Get(k)
		require.True(t, a.Equal(b), "weights differ at %s", k)
	}
	require.Equal(t, *w.Epoch, *g.Epoch)
	require.Equal(t, *w.BestDice, *g.BestDice)
	require.Equal(t, *w.DiceEpoch, *g.DiceEpoch)
	require.Equal(t, w.Optimizer, g.Optimizer, "optimizer state")
	require.Equal(t, w.Extra, g.Extra)
	require.Equal(t, fmt.Sprint(want.rows), fmt.Sprint(got.rows), "dice_epoch.txt")
	require.Equal(t, want.best, got.best, "model_best.pth.tar")
}

// interruptAt cancels the run when stop says so, as a signal would.
type interruptAt struct {
	NopObserver
	cancel     context.CancelFunc
	afterStep  func(Step) bool
	atValidate int
}

func (o *interruptAt) Step(s Step) {
	if o.afterStep != nil && o.afterStep(s) {
		o.cancel()
	}
}

func (o *interruptAt) Validate(epoch int) {
	if epoch == o.atValidate {
		o.cancel()
	}
}

func TestResumeContinuesExactly(t *testing.T) {
	straight := tinyConfig(t)
	sum, err := Run(context.Background(), straight, nil)
	require.NoError(t, err)
	require.False(t, sum.Interrupted)
	require.Len(t, sum.Rows, 2)
	require.Equal(t, 2, sum.Epoch)
	want := finalState(t, straight)

	resume := func(t *testing.T, cfg Config) {
		t.Helper()
		cfg.Epochs = 2
		cfg.Resume = filepath.Join(cfg.Out(), CheckpointDir, LatestName)
		var start Start
		obs := &recorder{start: &start}
		sum, err := Run(context.Background(), cfg, obs)
		require.NoError(t, err)
		require.False(t, sum.Interrupted)
		assert.Equal(t, cfg.Resume, start.Resumed)
		assert.False(t, start.FreshOptimizer)
		requireSameState(t, want, finalState(t, cfg))
	}

	t.Run("one epoch, then resume", func(t *testing.T) {
		cfg := tinyConfig(t)
		cfg.Epochs = 1
		sum, err := Run(context.Background(), cfg, nil)
		require.NoError(t, err)
		require.Equal(t, 1, sum.Epoch)
		resume(t, cfg)
	})

	t.Run("interrupted inside an epoch, then resume", func(t *testing.T) {
		cfg := tinyConfig(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		obs := &interruptAt{cancel: cancel, atValidate: -1, afterStep: func(s Step) bool { return s.Epoch == 1 && s.Step == 2 }}
		sum, err := Run(ctx, cfg, obs)
		require.NoError(t, err)
		require.True(t, sum.Interrupted)
		assert.Equal(t, 1, sum.Epoch)
		assert.Equal(t, 2, sum.Step, "the step in progress finishes, the next does not start")
		assert.Len(t, sum.Rows, 1)

		c, err := models.ReadCheckpoint(sum.Checkpoint)
		require.NoError(t, err)
		assert.Equal(t, int64(1), *c.Epoch, "the interrupted epoch does not count as done")
		step, _ := c.Extra.Get(checkpointEpochStep)
		assert.Equal(t, int64(2), step)
		resume(t, cfg)
	})

	t.Run("interrupted during validation, then resume", func(t *testing.T) {
		cfg := tinyConfig(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sum, err := Run(ctx, cfg, &interruptAt{cancel: cancel, atValidate: 0})
		require.NoError(t, err)
		require.True(t, sum.Interrupted)
		assert.Equal(t, 0, sum.Epoch)
		assert.Equal(t, 4, sum.Step, "all steps of the epoch are done")
		assert.Empty(t, sum.Rows)
		_, err = os.Stat(filepath.Join(cfg.Out(), LogName))
		assert.True(t, os.IsNotExist(err), "no log row for an epoch that was not validated")
		resume(t, cfg)
	})

	t.Run("interrupted before the first step", func(t *testing.T) {
		cfg := tinyConfig(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		sum, err := Run(ctx, cfg, nil)
		require.NoError(t, err)
		require.True(t, sum.Interrupted)
		assert.Equal(t, 0, sum.Epoch)
		assert.Equal(t, 0, sum.Step)
		resume(t, cfg)
	})
}

// The augmentation flags train on transformed slices, and their draws are
// the run's: a run interrupted inside an epoch resumes exactly.
func TestAugmentedRunResumesExactly(t *testing.T) {
	augmented := func(t *testing.T) Config {
		cfg := tinyConfig(t)
		cfg.Augment = oct.Augment{Rotate: 20, Scale: 1.5, Crop: 32}
		return cfg
	}
	straight := augmented(t)
	_, err := Run(context.Background(), straight, nil)
	require.NoError(t, err)
	want := finalState(t, straight)

	plain := tinyConfig(t)
	_, err = Run(context.Background(), plain, nil)
	require.NoError(t, err)
	other := finalState(t, plain).checkpoint.StateDict
	differ := 0
	for _, k := range want.checkpoint.StateDict.Keys() {
		a, _ := want.checkpoint.StateDict.Get(k)
		b, ok := other.Get(k)
		require.True(t, ok, k)
		if !a.Equal(b) {
			differ++
		}
	}
	assert.Greater(t, differ, 0, "the augmentation changed nothing")

	cfg := augmented(t)
	interruptAndResume(t, cfg, func(s Step) bool { return s.Epoch == 0 && s.Step == 3 })
	requireSameState(t, want, finalState(t, cfg))
}

// interruptAndResume runs cfg until stop says so after a step, as a
// signal would, then resumes it to its end.
func interruptAndResume(t *testing.T, cfg Config, stop func(Step) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum, err := Run(ctx, cfg, &interruptAt{cancel: cancel, atValidate: -1, afterStep: stop})
	require.NoError(t, err)
	require.True(t, sum.Interrupted)
	cfg.Resume = sum.Checkpoint
	_, err = Run(context.Background(), cfg, nil)
	require.NoError(t, err)
}

// recorder keeps the Start event and the epochs.
type recorder struct {
	NopObserver
	start  *Start
	epochs []EpochEnd
	steps  []Step
}

func (r *recorder) Start(s Start)       { *r.start = s }
func (r *recorder) Step(s Step)         { r.steps = append(r.steps, s) }
func (r *recorder) EpochEnd(e EpochEnd) { r.epochs = append(r.epochs, e) }

func TestRunWritesTheOriginalsFiles(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.SaveEveryCheckpoint = true
	cfg.LRMode = "poly"
	var start Start
	obs := &recorder{start: &start}
	sum, err := Run(context.Background(), cfg, obs)
	require.NoError(t, err)

	assert.Equal(t, Start{
		Network: "unet", Parameters: 2466151, Device: torch.CPU, Loss: "mix_3 (WCE + Dice + BCE)", Optimizer: "Adam",
		TrainSlices: 8, ValCubes: 1, BatchSize: 2, Processes: 1, StepsPerEpoch: 4, Epochs: 2, OutDir: cfg.OutDir,
	}, start)
	require.Len(t, obs.steps, 8)
	for i, s := range obs.steps {
		assert.Equal(t, i/4, s.Epoch)
		assert.Equal(t, i%4+1, s.Step)
		assert.Equal(t, 4, s.Steps)
		assert.False(t, math.IsNaN(s.Loss.Total))
		assert.InDelta(t, s.Loss.WCE+s.Loss.Dice+s.Loss.BCE, s.Loss.Total, 1e-5)
	}
	assert.Equal(t, 1e-3, obs.steps[0].LR)
	assert.InDelta(t, 1e-3*math.Pow(0.5, 0.9), obs.steps[7].LR, 1e-15, "poly schedule")
	require.Len(t, obs.epochs, 2)

	// The log holds what the observer saw, and the mean of the steps' losses.
	rows, err := ReadLog(filepath.Join(cfg.Out(), LogName))
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for e, r := range rows {
		assert.Equal(t, e, r.Epoch)
		want := obs.epochs[e].Row
		assert.InDelta(t, want.ValDice, r.ValDice, 1e-6)
		assert.InDelta(t, want.AUC, r.AUC, 1e-6)
		var sum float64
		for _, s := range obs.steps[4*e : 4*e+4] {
			sum += s.Loss.Total
		}
		assert.InDelta(t, sum/4, r.TrainLoss, 1e-6)
		assert.Equal(t, obs.steps[4*e+3].MeanDice, want.TrainDice)
	}
	require.Len(t, sum.Rows, 2)
	for e := range rows {
		assert.InDelta(t, sum.Rows[e].TrainLoss, rows[e].TrainLoss, 1e-6)
	}

	// Checkpoints: latest after every epoch, one per epoch on request, and
	// the best one, all in the original's dict with DataParallel keys.
	dir := filepath.Join(cfg.Out(), CheckpointDir)
	latest, err := os.ReadFile(filepath.Join(dir, LatestName))
	require.NoError(t, err)
	last, err := os.ReadFile(filepath.Join(dir, "checkpoint_001.pth.tar"))
	require.NoError(t, err)
	assert.Equal(t, latest, last)
	for _, f := range []string{filepath.Join(dir, "checkpoint_000.pth.tar"), filepath.Join(dir, LatestName), filepath.Join(cfg.Out(), LogName), filepath.Join(cfg.Out(), CurvesName)} {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), f)
	}
	v, format, err := pth.ReadValue(filepath.Join(dir, LatestName))
	require.NoError(t, err)
	assert.Equal(t, pth.FormatZip, format)
	d := v.(*pth.Dict)
	assert.Equal(t, []any{"epoch", "state_dict", "dice_epoch", "best_dice", "optimizer", "arch", "seed", "mean", "std"}, d.Keys())
	epoch, _ := d.Get("epoch")
	assert.Equal(t, int64(2), epoch)
	sd, _ := d.Get("state_dict")
	state, ok := pth.AsStateDict(sd)
	require.True(t, ok)
	assert.True(t, state.HasPrefix(pth.DataParallelPrefix))

	bestEpoch := -1
	for e, r := range rows {
		if bestEpoch < 0 && r.ValDice > 0 || bestEpoch >= 0 && r.ValDice > rows[bestEpoch].ValDice {
			bestEpoch = e
		}
	}
	if bestEpoch >= 0 {
		assert.Equal(t, filepath.Join(dir, BestName), sum.Best)
		best, err := models.ReadCheckpoint(sum.Best)
		require.NoError(t, err)
		assert.Equal(t, int64(bestEpoch+1), *best.Epoch)
		assert.Equal(t, obs.epochs[bestEpoch].Row.ValDice, *best.BestDice)
	} else {
		assert.Empty(t, sum.Best)
	}

	png, err := os.ReadFile(filepath.Join(cfg.Out(), CurvesName))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(png), "\x89PNG"))

	// The validation figures are those of the saved network predicting
	// the validation cube on its own.
	m, _, err := models.Load(filepath.Join(dir, LatestName), cfg.Name, torch.CPU)
	require.NoError(t, err)
	defer m.Free()
	entries, err := oct.ReadValList(cfg.ListDir)
	require.NoError(t, err)
	info, err := oct.ReadInfo(filepath.Join(cfg.ListDir, oct.InfoFile))
	require.NoError(t, err)
	norm, err := oct.NewNormalizer(info)
	require.NoError(t, err)
	var ev metrics.Evaluation
	for _, e := range entries {
		cube, err := oct.LoadCube(cfg.DataDir, e, 1)
		require.NoError(t, err)
		size := 3 * cube.H * cube.W
		images := make([]float32, cube.Slices()*size)
		for i, s := range cube.Stacks {
			norm.Fill(images[i*size:(i+1)*size], s, false)
		}
		m.Eval()
		p := models.NewPrediction(cube.Slices(), cube.H, cube.W, false)
		for at := 0; at < cube.Slices(); at += 3 {
			n := min(3, cube.Slices()-at)
			require.NoError(t, m.PredictInto(p, at, images[at*size:(at+n)*size], n))
		}
		require.NoError(t, ev.Add(cube.Name, p.Labels, cube.Labels, p.Detections, cube.Targets))
	}
	s := ev.Summary()
	want := obs.epochs[1].Row
	assert.Equal(t, fmt.Sprint(s.Dice), fmt.Sprint(want.ValClassDice))
	assert.Equal(t, fmt.Sprint(s.PooledAUC), fmt.Sprint(want.ClassAUC))
}

// TestPyTorchResumesFromCheckpoints loads the checkpoints of a run the way
// the original scripts do: a strict load_state_dict into the reference
// network wrapped in DataParallel, and Adam's load_state_dict.
func TestPyTorchResumesFromCheckpoints(t *testing.T) {
	pytorchtest.Python(t)
	cfg := tinyConfig(t)
	cfg.Epochs = 1
	_, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	testdata, err := filepath.Abs(filepath.Join("..", "models", "testdata"))
	require.NoError(t, err)
	out := pytorchtest.Run(t, "", `
import sys, torch
sys.path.insert(0, sys.argv[1])
from reference_models import NETWORKS
c = torch.load(sys.argv[2])
net = torch.nn.DataParallel(NETWORKS["unet"]())
net.load_state_dict(c["state_dict"])
opt = torch.optim.Adam(net.parameters(), lr=1, betas=(0.9, 0.99), weight_decay=1e-4)
opt.load_state_dict(c["optimizer"])
print(c["epoch"], c["arch"], c["seed"], opt.param_groups[0]["lr"], opt.param_groups[0]["betas"], float(opt.state[opt.param_groups[0]["params"][0]]["step"]))
`, testdata, filepath.Join(cfg.Out(), CheckpointDir, LatestName))
	assert.Equal(t, "1 unet 42 0.001 (0.9, 0.99) 4.0", strings.TrimSpace(out))
}

// TestBestCheckpointFollowsValidationDice feeds made-up validation figures
// to the end of epochs: model_best.pth.tar is the latest checkpoint of the
// epoch with the highest Dice so far, and a NaN Dice never counts as best.
func TestBestCheckpointFollowsValidationDice(t *testing.T) {
	cfg := tinyConfig(t)
	tr, _, err := newTrainer(cfg, NopObserver{})
	require.NoError(t, err)
	defer tr.free()
	bestPath := filepath.Join(cfg.Out(), CheckpointDir, BestName)
	for epoch, c := range []struct {
		dice      float64
		bestEpoch int64 // the epoch count model_best.pth.tar holds, 0 for none
	}{{0, 0}, {0.3, 2}, {0.2, 2}, {math.NaN(), 2}, {0.5, 5}} {
		val := metrics.Summary{MeanDice: c.dice, Dice: metrics.PerLesion{c.dice, c.dice, math.NaN()}, MeanPooledAUC: 0.5}
		end, err := tr.endEpoch(epoch, 1e-3, totals{Steps: 1, LossSum: 2}, val)
		require.NoError(t, err)
		assert.Equal(t, c.bestEpoch == int64(epoch+1), end.Best, "epoch %d", epoch)
		best, err := models.ReadCheckpoint(bestPath)
		if c.bestEpoch == 0 {
			require.True(t, os.IsNotExist(err), "no best checkpoint before the Dice exceeds 0, as in the original")
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, c.bestEpoch, *best.Epoch, "epoch %d", epoch)
		latest, err := models.ReadCheckpoint(filepath.Join(cfg.Out(), CheckpointDir, LatestName))
		require.NoError(t, err)
		assert.Equal(t, int64(epoch+1), *latest.Epoch)
		assert.Equal(t, *best.BestDice, *latest.BestDice)
	}
	rows, err := ReadLog(filepath.Join(cfg.Out(), LogName))
	require.NoError(t, err)
	require.Len(t, rows, 5)
	assert.True(t, math.IsNaN(rows[3].ValDice))
	assert.Equal(t, 0.5, rows[4].ValDice)
}

// A run is a function of its settings: two runs of each network give the
// same weights, optimizer state, log and best checkpoint, with the host
// cache on and off, on one libtorch thread and on two. (Without the
// training step locked to one OS thread, UNet++'s gradients were summed in
// an order that changed between runs.)
func TestRunsAreFunctionsOfTheirSettings(t *testing.T) {
	defer torch.SetNumThreads(torch.NumThreads())
	for _, name := range models.Names() {
		for _, setting := range []struct {
			threads int
			cache   bool
		}{{1, true}, {2, false}} {
			t.Run(fmt.Sprintf("%s/%d threads, host cache %v", name, setting.threads, setting.cache), func(t *testing.T) {
				if setting.cache {
					torch.EnableHostCache(64 << 20)
					defer torch.DisableHostCache()
				}
				var states []runState
				for range 2 {
					cfg := tinyConfig(t)
					cfg.Name = name
					if name == models.NameResNet18 {
						cfg.Loss = losses.BCEOnly
					}
					cfg.Threads = setting.threads
					cfg.MaxStepsPerEpoch = 3
					_, err := Run(context.Background(), cfg, nil)
					require.NoError(t, err)
					states = append(states, finalState(t, cfg))
				}
				requireSameState(t, states[0], states[1])
			})
		}
	}
}

// UNet++ resumes exactly too: its x00..x30 feed three or more later nodes,
// whose gradients are sums whose order must not change.
func TestNestedResumesExactly(t *testing.T) {
	nested := func(t *testing.T) Config {
		cfg := tinyConfig(t)
		cfg.Name = models.NameUNetNested
		cfg.MaxStepsPerEpoch = 3
		return cfg
	}
	straight := nested(t)
	_, err := Run(context.Background(), straight, nil)
	require.NoError(t, err)
	want := finalState(t, straight)

	cfg := nested(t)
	interruptAndResume(t, cfg, func(s Step) bool { return s.Epoch == 1 && s.Step == 1 })
	requireSameState(t, want, finalState(t, cfg))
}

// A crash after any file of an epoch's end leaves a folder from which
// --resume gives what an uninterrupted run gives: the same log, latest and
// best checkpoints, and every epoch's copy.
func TestCrashAtEveryPointOfAnEpochsEndResumes(t *testing.T) {
	config := func(t *testing.T) Config {
		cfg := tinyConfig(t)
		cfg.Epochs = 4
		cfg.Step = 100
		cfg.LR = 0.01
		cfg.SaveEveryCheckpoint = true
		return cfg
	}
	straight := config(t)
	var start Start
	rec := &recorder{start: &start}
	_, err := Run(context.Background(), straight, rec)
	require.NoError(t, err)
	want := finalState(t, straight)
	// The crash falls at the end of an improving epoch after the first and
	// before the last, so that a checkpoint_latest exists from before it,
	// model_best moves, and there is an epoch left to resume.
	crashEpoch := -1
	for _, e := range rec.epochs {
		if e.Best && e.Row.Epoch > 0 && e.Row.Epoch < straight.Epochs-1 {
			crashEpoch = e.Row.Epoch
		}
	}
	for _, e := range rec.epochs {
		t.Logf("epoch %d: val Dice %.4f best %v", e.Row.Epoch, e.Row.ValDice, e.Best)
	}
	require.NotEqual(t, -1, crashEpoch, "the run improves after its first epoch")

	for _, point := range []string{"log", "best", "latest", "every", "plot"} {
		t.Run("after "+point, func(t *testing.T) {
			cfg := config(t)
			epoch := -1
			crashAfter = func(p string) error {
				if p == "log" {
					epoch++
				}
				if epoch == crashEpoch && p == point {
					return errors.New("crash")
				}
				return nil
			}
			_, err := Run(context.Background(), cfg, nil)
			crashAfter = nil
			require.ErrorContains(t, err, "crash")

			// Right after the crash the pair agrees: the best Dice that
			// checkpoint_latest records is the Dice of model_best's epoch.
			latest, err := models.ReadCheckpoint(filepath.Join(cfg.Out(), CheckpointDir, LatestName))
			require.NoError(t, err)
			if *latest.BestDice > 0 {
				best, err := models.ReadCheckpoint(filepath.Join(cfg.Out(), CheckpointDir, BestName))
				require.NoError(t, err, "checkpoint_latest records a best Dice, so model_best must exist")
				require.Equal(t, *latest.BestDice, *best.DiceEpoch, "model_best is the epoch checkpoint_latest calls best")
			}

			cfg.Resume = filepath.Join(cfg.Out(), CheckpointDir, LatestName)
			_, err = Run(context.Background(), cfg, nil)
			require.NoError(t, err)
			requireSameState(t, want, finalState(t, cfg))
			for e := range cfg.Epochs {
				name := fmt.Sprintf(EveryNameFmt, e)
				a, err := os.ReadFile(filepath.Join(straight.Out(), CheckpointDir, name))
				require.NoError(t, err)
				b, err := os.ReadFile(filepath.Join(cfg.Out(), CheckpointDir, name))
				require.NoError(t, err, name)
				require.Equal(t, a, b, name)
			}
		})
	}
}

// The output folder is the run's alone: a second run into it fails at
// once; a new run into a folder that holds another needs --overwrite,
// which removes the other run's files; the temporary files of a killed
// run are removed.
func TestOutputFolderIsProtected(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Epochs = 1
	cfg.MaxStepsPerEpoch = 1
	cfg.SaveEveryCheckpoint = true
	_, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)

	again := cfg
	again.Seed = 7
	_, err = Run(context.Background(), again, nil)
	require.ErrorContains(t, err, "OutDir "+cfg.Out()+" holds another run (dice_epoch.txt): continue it with Resume")

	// A run in progress holds the folder.
	claim, err := outdir.Acquire(cfg.Out())
	require.NoError(t, err)
	again.Overwrite = true
	_, err = Run(context.Background(), again, nil)
	require.ErrorIs(t, err, outdir.ErrBusy)
	claim.Release()

	stale := filepath.Join(cfg.Out(), CheckpointDir, ".checkpoint_latest.pth.tar.tmp-42")
	require.NoError(t, os.WriteFile(stale, []byte("partial"), 0o644))
	var start Start
	_, err = Run(context.Background(), again, &recorder{start: &start})
	require.NoError(t, err)
	assert.NoFileExists(t, stale)
	assert.Contains(t, start.Notes, "removed 1 temporary file(s) of an interrupted run from "+filepath.Join(cfg.Out(), CheckpointDir))
	assert.Contains(t, start.Notes, "{Overwrite}: removed 5 file(s) of the earlier run in "+cfg.Out(), "the note names the field")
	c, err := models.ReadCheckpoint(filepath.Join(cfg.Out(), CheckpointDir, LatestName))
	require.NoError(t, err)
	seed, _ := c.Extra.Get(checkpointSeed)
	assert.Equal(t, int64(7), seed)
}

// A learning rate that makes the weights explode ends the run with the
// documented message, not with an error of the loss about its inputs.
func TestDivergingRunSaysSo(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.LR = 1e30
	cfg.Epochs = 1
	_, err := Run(context.Background(), cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "training diverged (try a lower LR)")
	assert.NotContains(t, err.Error(), "binary_cross_entropy")
}

// Every checkpoint records its network and the normalisation of info.json,
// so that it deploys alone (inference.LoadDeployment).
func TestCheckpointsRecordNetworkAndNormalization(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Epochs, cfg.MaxStepsPerEpoch = 1, 1
	_, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	want, err := oct.ReadInfo(filepath.Join(cfg.ListDir, oct.InfoFile))
	require.NoError(t, err)
	for _, name := range []string{LatestName, BestName} {
		c, err := models.ReadCheckpoint(filepath.Join(cfg.Out(), CheckpointDir, name))
		require.NoError(t, err)
		info, ok, err := models.Normalization(c)
		require.NoError(t, err)
		require.True(t, ok, name)
		assert.Equal(t, want, info, name)
		arch, _ := c.Extra.Get(models.CheckpointArch)
		assert.Equal(t, models.NameUNet, arch, name)
	}
}

func TestIntEntryReadsSafetensorsStrings(t *testing.T) {
	for v, want := range map[any]int64{int64(42): 42, "42": 42, "-7": -7} {
		got, ok := intEntry(v)
		assert.True(t, ok, "%#v", v)
		assert.Equal(t, want, got, "%#v", v)
	}
	for _, v := range []any{"forty-two", 4.2, nil, []any{int64(1)}} {
		_, ok := intEntry(v)
		assert.False(t, ok, "%#v", v)
	}
}

// TestOptimizerLayout: the checkpoints' optimizer state takes the layout
// asked for, and a run resumes from either.
func TestOptimizerLayout(t *testing.T) {
	for layout, fused := range map[optim.Layout]any{optim.PyTorch113: false, optim.PyTorch2: nil} {
		cfg := tinyConfig(t)
		cfg.Epochs, cfg.MaxStepsPerEpoch, cfg.OptimizerLayout = 1, 1, layout
		_, err := Run(context.Background(), cfg, nil)
		require.NoError(t, err)
		latest := filepath.Join(cfg.Out(), CheckpointDir, LatestName)
		c, err := models.ReadCheckpoint(latest)
		require.NoError(t, err)
		groups, _ := c.Optimizer.(*pth.Dict).Get("param_groups")
		got, ok := groups.([]any)[0].(*pth.Dict).Get("fused")
		require.True(t, ok, "%s", layout)
		assert.Equal(t, fused, got, "%s", layout)

		cfg.Resume, cfg.Epochs = latest, 2
		_, err = Run(context.Background(), cfg, nil)
		require.NoError(t, err, "resuming from the layout of %s", layout)
	}
}

// TestSingleTaskRuns trains the rows of the original's table that do one
// task: the ResNet-18 detector with BCE, started from torchvision-layout
// weights, and UNet with WCE + Dice. The figures of the other task are
// absent (NaN) in the log, model_best follows the AUC of the detector,
// and the checkpoint says what the network was trained for.
func TestSingleTaskRuns(t *testing.T) {
	for _, tc := range []struct {
		name, loss string
		tasks      oct.Tasks
	}{
		{models.NameResNet18, losses.BCEOnly, oct.Detection},
		{models.NameUNet, losses.Mix2, oct.Segmentation},
	} {
		t.Run(tc.name+" "+tc.loss, func(t *testing.T) {
			cfg := tinyConfig(t)
			cfg.Name, cfg.Loss, cfg.Epochs, cfg.MaxStepsPerEpoch = tc.name, tc.loss, 2, 2
			var imagenet *pth.StateDict
			if tc.name == models.NameResNet18 {
				cfg.Pretrained, imagenet = writeImageNetResNet18(t)
			}
			sum, err := Run(context.Background(), cfg, nil)
			require.NoError(t, err)
			require.Len(t, sum.Rows, 2)
			for _, r := range sum.Rows {
				assert.Equal(t, tc.tasks.Has(oct.Segmentation), !math.IsNaN(r.ValDice), "validation Dice of epoch %d", r.Epoch)
				assert.Equal(t, tc.tasks.Has(oct.Segmentation), !math.IsNaN(r.TrainDice), "training Dice of epoch %d", r.Epoch)
				assert.Equal(t, tc.tasks.Has(oct.Detection), !math.IsNaN(r.AUC), "AUC of epoch %d", r.Epoch)
				assert.False(t, math.IsNaN(r.TrainLoss))
			}
			rows, err := ReadLog(filepath.Join(cfg.Out(), LogName))
			require.NoError(t, err)
			require.Len(t, rows, len(sum.Rows))
			for i, r := range rows {
				assert.Equal(t, math.IsNaN(sum.Rows[i].ValDice), math.IsNaN(r.ValDice), "dice_epoch.txt keeps the absent figures")
				assert.Equal(t, math.IsNaN(sum.Rows[i].AUC), math.IsNaN(r.AUC), "dice_epoch.txt keeps the absent figures")
			}

			best := sum.Weights() // no epoch may beat a Dice of 0 in two steps of UNet
			m, err := inference.LoadNetwork(tc.name, best, torch.CPU)
			require.NoError(t, err, "the best checkpoint of a run whose figures are %v", sum.Rows)
			defer m.Free()
			assert.Equal(t, tc.tasks, m.Tasks())
			c, err := models.ReadCheckpoint(best)
			require.NoError(t, err)
			if tc.name == models.NameResNet18 {
				assert.Equal(t, filepath.Join(cfg.Out(), CheckpointDir, BestName), sum.Best, "the AUC exceeds 0")
				assert.Equal(t, "AUC", sum.Selection)
				assert.Equal(t, math.Max(sum.Rows[0].AUC, sum.Rows[1].AUC), sum.BestDice)
				assert.EqualValues(t, models.ResNet18Parameters, m.NumParameters())
				// The two steps of training moved the ImageNet weights,
				// but not far: the run started from them.
				start, _ := imagenet.Get("layer4.1.conv2.weight")
				got, _ := c.StateDict.Get("layer4.1.conv2.weight")
				assert.InDelta(t, 0, maxAbsDiff(t, start, got), 0.05)
			} else {
				assert.Equal(t, "Dice", sum.Selection)
				tasks, ok := c.Extra.Get(models.CheckpointTasks)
				require.True(t, ok)
				assert.Equal(t, "segmentation", tasks)
			}
		})
	}
}

// writeImageNetResNet18 writes a state dict of torchvision's ResNet-18 as
// ImageNet training leaves it (a 512→1000 classifier), and returns its
// path and its tensors.
func writeImageNetResNet18(t *testing.T) (string, *pth.StateDict) {
	t.Helper()
	torch.ManualSeed(99)
	m, err := models.New(models.NameResNet18)
	require.NoError(t, err)
	defer m.Free()
	sd, err := nn.HostStateDict(m.StateDict())
	require.NoError(t, err)
	out := pth.NewStateDict()
	for _, k := range sd.Keys() {
		v, _ := sd.Get(k)
		switch k {
		case "fc.weight":
			v = &pth.Tensor{DType: v.DType, Shape: []int64{1000, 512}, Data: make([]byte, 1000*512*4)}
		case "fc.bias":
			v = &pth.Tensor{DType: v.DType, Shape: []int64{1000}, Data: make([]byte, 1000*4)}
		}
		out.Set(k, v)
	}
	path := filepath.Join(t.TempDir(), "resnet18-f37072fd.pth")
	require.NoError(t, pth.Save(path, &pth.Checkpoint{StateDict: out}))
	return path, out
}

func maxAbsDiff(t *testing.T, a, b *pth.Tensor) float64 {
	t.Helper()
	x, err := a.Float32s()
	require.NoError(t, err)
	y, err := b.Float32s()
	require.NoError(t, err)
	require.Equal(t, len(x), len(y))
	worst := 0.0
	for i := range x {
		worst = math.Max(worst, math.Abs(float64(x[i]-y[i])))
	}
	return worst
}
