// Package train trains the edema networks the way the original training
// script does (docs/ORIGINAL.md, "Training recipe"): epochs of shuffled single slices with Adam or SGD
// on a multi-task loss, a learning rate set per epoch by a step or poly
// schedule, then validation on whole cubes, the checkpoints
// checkpoint_latest.pth.tar and model_best.pth.tar, and one row per epoch
// in dice_epoch.txt.
//
// [Run] is the whole of `edema train` as a Go API: it takes a [Config],
// reports progress to an [Observer] and returns a [Summary] or an error,
// never exiting, so services can embed training.
//
// # Reproducibility and resuming
//
// A run is a function of its settings and seed. libtorch is seeded with
// the seed before the network is built, so its initial weights are those
// the original code draws after torch.manual_seed(seed). The order and
// flips of the training slices depend only on the seed and the epoch (see
// oct.TrainLoader), and libtorch is reseeded before every training step
// from the seed, the epoch and the step, so the dropout masks of a step do
// not depend on what ran before it in the process.
//
// A checkpoint therefore holds everything a run needs to continue: the
// weights and batch-normalisation statistics, the optimizer's state, the
// number of epochs done, the best validation Dice, and, when the run was
// interrupted inside an epoch, the number of steps of that epoch done and
// its running training figures. Resuming from it gives the weights, the
// checkpoints and the log that the run would have given without the
// interruption, on the same device and build of libtorch.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/internal/outdir"
	"github.com/edema/edema/losses"
	"github.com/edema/edema/metrics"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/picture"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/distributed"
	"github.com/edema/edema/torch/nn"
	"github.com/edema/edema/torch/optim"
	"github.com/edema/edema/torch/pth"
)

// Files of the output folder.
const (
	CheckpointDir  = "checkpoint"
	LatestName     = "checkpoint_latest.pth.tar"
	BestName       = "model_best.pth.tar"
	EveryNameFmt   = "checkpoint_%03d.pth.tar" // with the epoch, counted from 0
	CurvesName     = "curves.png"
	ValBatchSize   = 16 // slices per forward pass of the validation, as the original
	adamEps        = 1e-8
	checkpointSeed = "seed"
	// A checkpoint written inside an epoch says how far the epoch got.
	checkpointEpochStep   = "epoch_step"
	checkpointEpochTotals = "epoch_totals"
	// A job's checkpoint says how many processes trained it and, inside an
	// epoch, keeps every rank's totals.
	checkpointWorldSize  = "world_size"
	checkpointRankTotals = "epoch_totals_ranks"
	// The gradient scaler of an fp16 run, as GradScaler.state_dict()
	// names its state.
	checkpointScalerScale   = "grad_scaler_scale"
	checkpointScalerTracker = "grad_scaler_growth_tracker"
)

// gradScaling gives every run a gradient scaler, as fp16 runs have: the
// tests train with one on the CPU, where fp16 does not run.
var gradScaling = false

// AdamBetas are the original's Adam betas.
var AdamBetas = [2]float64{0.9, 0.99}

// Summary is what a run did.
type Summary struct {
	// Rows is the log: every epoch done so far, this run's and, for a
	// resumed run, the earlier ones that dice_epoch.txt held.
	Rows []Row
	// BestDice is the best validation Dice, or for a network trained to
	// detect only the best validation AUC (see Selection).
	BestDice float64
	// Selection names the figure of BestDice, "Dice" or "AUC".
	Selection string
	// Epoch and Step are where a --resume from Checkpoint continues:
	// Epoch = Config.Epochs and Step = 0 when the run is complete.
	Epoch, Step int
	// Interrupted is set when ctx ended the run before its last epoch.
	Interrupted bool
	// Checkpoint is the path of checkpoint_latest.pth.tar; Best that of
	// model_best.pth.tar, or "" when no epoch has improved yet.
	Checkpoint, Best string
}

// Weights returns the checkpoint to evaluate or deploy from the run:
// model_best.pth.tar, or checkpoint_latest.pth.tar while no epoch has
// improved on the start (a Dice of 0, as in the original).
func (s *Summary) Weights() string {
	if s.Best != "" {
		return s.Best
	}
	return s.Checkpoint
}

// Run trains as cfg says and reports progress to obs (nil for none).
//
// Cancelling ctx interrupts the run cleanly: the step in progress
// finishes, the state is saved in checkpoint_latest.pth.tar as it is at
// that point, counting the epoch as not done and recording the steps of it
// that are, and Run returns a Summary with Interrupted set and no error.
// Nothing written before is damaged: every file is replaced atomically,
// and model_best.pth.tar and dice_epoch.txt only change at the end of an
// epoch. A --resume from that checkpoint skips the steps done and carries
// on as if nothing had happened; an interruption during validation
// resumes with the validation. In a job (Config.Group), the ranks stop
// together at a step, and a validation in progress finishes first.
//
// A job's ranks wait for each other in collectives: when Run returns an
// error on one, close its Group (or end its process) so that the others
// fail at once rather than at their timeout.
func Run(ctx context.Context, cfg Config, obs Observer) (*Summary, error) {
	if obs == nil {
		obs = NopObserver{}
	}
	if g := cfg.Group; g != nil && g.Rank() != 0 {
		obs = NopObserver{}
	}
	var t *trainer
	var pos position
	err := cfg.Validate()
	if err == nil {
		t, pos, err = newTrainer(cfg, obs)
	}
	if g := cfg.Group; g != nil {
		// Every rank learns whether all could start, so that none waits
		// out the timeout in a collective for a peer that gave up.
		if _, gerr := g.AllGatherResults(nil, rawError(err)); gerr != nil && err == nil {
			err = &FieldError{msg: gerr.Error(), err: gerr}
		}
		if err == nil {
			err = t.joinReplicas()
		}
	}
	if err != nil {
		if t != nil {
			t.free()
		}
		return nil, err
	}
	defer t.free()
	return t.run(ctx, pos)
}

// rawError keeps a FieldError's {Field} tokens on its way to the other
// ranks, which name the fields in their own words.
func rawError(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return errors.New(fe.msg)
	}
	return err
}

// joinReplicas makes this rank's network rank 0's and keeps it so.
func (t *trainer) joinReplicas() error {
	params := t.model.Parameters()
	isParam := map[*torch.Tensor]bool{}
	for _, p := range params {
		isParam[p] = true
	}
	var buffers []*torch.Tensor
	for _, e := range t.model.StateDict() {
		if !isParam[e.Tensor] {
			buffers = append(buffers, e.Tensor)
		}
	}
	dp, err := distributed.NewDataParallel(t.cfg.Group, params, buffers, 0)
	if err != nil {
		return err
	}
	t.dp = dp
	if t.cfg.SyncBN {
		nn.ConvertSyncBatchNorm(t.model.Store(), t.cfg.Group)
	}
	return nil
}

// writes says whether this process writes the run's files: alone, or as
// rank 0 of a job.
func (t *trainer) writes() bool { return t.cfg.Group == nil || t.cfg.Group.Rank() == 0 }

// world is the number of processes of the run.
func (t *trainer) world() int {
	if t.cfg.Group == nil {
		return 1
	}
	return t.cfg.Group.Size()
}

// trainer holds a run's state.
type trainer struct {
	cfg    Config
	obs    Observer
	out    string
	model  *models.Model
	opt    optim.Optimizer
	scaler *optim.GradScaler // under fp16 only
	loss   losses.Loss
	loader *oct.TrainLoader
	val    []oct.CubeEntry
	norm   *oct.Normalizer
	info   oct.Info // the normalisation, recorded in every checkpoint
	steps  int      // training steps per epoch (of each rank)
	dp     *distributed.DataParallel
	comm   time.Duration // time spent in collectives during training steps
	// rankTotals are, inside an interrupted epoch of a job, every rank's
	// totals, which its checkpoint keeps for each rank to resume with.
	rankTotals []totals

	rows     []Row
	best     float64 // best validation Dice so far, 0 before any, as the original
	lastDice float64 // validation Dice of the last epoch done
	start    Start
	claim    *outdir.Claim
}

// position is a point of a run: in epoch, with totals.Steps of its steps
// done and their running figures.
type position struct {
	epoch  int
	totals totals
}

func newTrainer(cfg Config, obs Observer) (_ *trainer, pos position, err error) {
	t := &trainer{cfg: cfg, obs: obs, out: cfg.Out()}
	defer func() {
		if err != nil {
			t.free()
		}
	}()
	if err := torch.CheckDevice(cfg.Device); err != nil {
		return nil, pos, fieldErrorf("{Device}: %w", err)
	}
	if cfg.Threads > 0 {
		torch.SetNumThreads(cfg.Threads)
	}
	if t.loss, err = losses.New(cfg.Loss); err != nil {
		return nil, pos, err
	}
	if err := t.openData(); err != nil {
		return nil, pos, err
	}

	// Seeded right before it is built, the network starts from the weights
	// that PyTorch's constructor gives after torch.manual_seed(seed).
	torch.ManualSeed(cfg.Seed)
	if t.model, err = models.New(cfg.Name); err != nil {
		return nil, pos, err
	}
	if cfg.ModelPath != "" {
		c, err := models.ReadCheckpoint(cfg.ModelPath)
		if err != nil {
			return nil, pos, fieldErrorf("{ModelPath}: %w", err)
		}
		if err := t.model.LoadCheckpoint(c); err != nil {
			return nil, pos, fieldErrorf("{ModelPath} %s: %w", cfg.ModelPath, err)
		}
	}
	if cfg.Pretrained != "" {
		if err := t.loadPretrained(); err != nil {
			return nil, pos, err
		}
	}
	if err := t.model.To(cfg.Device); err != nil {
		return nil, pos, fieldErrorf("{Device}: %w", err)
	}
	if t.opt, err = newOptimizer(cfg, t.model.Parameters()); err != nil {
		return nil, pos, err
	}
	if cfg.Precision == models.FP16 || gradScaling {
		if t.scaler, err = optim.NewGradScaler(optim.DefaultGradScalerOptions()); err != nil {
			return nil, pos, err
		}
	}
	t.start = Start{
		Network: cfg.Name, Parameters: t.model.NumParameters(), Device: cfg.Device,
		Loss: t.loss.String(), Optimizer: cfg.Optimizer,
		TrainSlices: t.loader.Len(), ValCubes: len(t.val), BatchSize: cfg.BatchSize, StepsPerEpoch: t.steps, Epochs: cfg.Epochs,
		Processes: t.world(),
		OutDir:    t.out,
	}
	if cfg.Resume != "" {
		if pos, err = t.resume(); err != nil {
			return nil, pos, err
		}
	}
	t.model.Store().SetPhasedTraining(cfg.FastPath)
	if cfg.ChannelsLast {
		if err := t.model.SetMemoryFormat(torch.ChannelsLast); err != nil {
			return nil, pos, fieldErrorf("{ChannelsLast}: %w", err)
		}
	}
	// Whatever the weights were trained for before, the network does the
	// tasks of this run's loss.
	if err := t.model.SetTasks(t.loss.Tasks()); err != nil {
		return nil, pos, fieldErrorf("{Loss}: %w", err)
	}
	if !t.writes() {
		return t, pos, nil
	}
	if earlier := t.earlierRun(); cfg.Resume == "" && earlier != "" && !cfg.Overwrite {
		return nil, pos, fieldErrorf("{OutDir} %s holds another run (%s): continue it with {Resume} %s, or start afresh with {Overwrite}",
			t.out, earlier, t.path(LatestName))
	}
	// Nothing is written before this point; from here on the folder is
	// this run's alone.
	if t.claim, err = outdir.Acquire(t.out, CheckpointDir); err != nil {
		return nil, pos, fieldErrorf("{OutDir}: %w", err)
	}
	t.start.Notes = append(t.start.Notes, t.claim.Notes...)
	if cfg.Resume == "" && cfg.Overwrite {
		removed, err := t.removeEarlierRun()
		if err != nil {
			return nil, pos, fieldErrorf("{Overwrite}: %w", err)
		}
		if removed > 0 {
			t.start.Notes = append(t.start.Notes, fmt.Sprintf("{Overwrite}: removed %d file(s) of the earlier run in %s", removed, t.out))
		}
	}
	if err := t.repairEveryCheckpoint(pos); err != nil {
		return nil, pos, err
	}
	return t, pos, nil
}

// loadPretrained starts resnet18 from torchvision's ImageNet weights.
func (t *trainer) loadPretrained() error {
	path := t.cfg.Pretrained
	f, err := pth.Load(path)
	if err != nil {
		return fieldErrorf("{Pretrained}: %w", err)
	}
	named, err := nn.NamedFromHost(f.StateDict)
	if err != nil {
		return fieldErrorf("{Pretrained} %s: %w", path, err)
	}
	if err := models.LoadPretrainedResNet18(t.model.Store(), named); err != nil {
		return fieldErrorf("{Pretrained} %s: %w", path, err)
	}
	return nil
}

func (t *trainer) free() {
	if t.model != nil {
		t.model.Free()
		t.model = nil
	}
	t.claim.Release()
}

// runFiles lists the files of the output folder that belong to a run: the
// log, the curves and every checkpoint.
func (t *trainer) runFiles() ([]string, error) {
	files := []string{filepath.Join(t.out, LogName), filepath.Join(t.out, CurvesName), t.path(LatestName), t.path(BestName)}
	every, err := filepath.Glob(t.path(everyGlob))
	if err != nil {
		return nil, err
	}
	return append(files, every...), nil
}

// everyGlob matches the files of EveryNameFmt.
const everyGlob = "checkpoint_[0-9][0-9][0-9]*.pth.tar"

// earlierRun names a file of another run in the output folder, or "".
func (t *trainer) earlierRun() string {
	files, _ := t.runFiles()
	for _, f := range files {
		if f == filepath.Join(t.out, CurvesName) {
			continue // a picture alone is no run
		}
		if _, err := os.Stat(f); err == nil {
			rel, _ := filepath.Rel(t.out, f)
			return rel
		}
	}
	return ""
}

// removeEarlierRun removes the files of runFiles and returns how many
// there were.
func (t *trainer) removeEarlierRun() (int, error) {
	files, err := t.runFiles()
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, f := range files {
		err := os.Remove(f)
		if err == nil {
			removed++
		} else if !os.IsNotExist(err) {
			return removed, err
		}
	}
	return removed, nil
}

// repairEveryCheckpoint writes, under SaveEveryCheckpoint, the copy of the
// epoch that the resumed checkpoint ended where a crash kept it from being
// written: the resumed checkpoint is that copy.
func (t *trainer) repairEveryCheckpoint(pos position) error {
	if !t.cfg.SaveEveryCheckpoint || t.cfg.Resume == "" || pos.epoch == 0 || pos.totals.Steps > 0 {
		return nil
	}
	every := t.path(fmt.Sprintf(EveryNameFmt, pos.epoch-1))
	if _, err := os.Stat(every); !os.IsNotExist(err) {
		return err
	}
	return copyFileAtomic(t.cfg.Resume, every)
}

// openData reads the list folder and sets up the loaders.
func (t *trainer) openData() error {
	cfg := t.cfg
	samples, err := oct.ReadTrainList(cfg.ListDir)
	if err != nil {
		return err
	}
	if per := oct.ShardLen(len(samples), t.world()); per < cfg.BatchSize {
		if t.world() > 1 {
			return fieldErrorf("{BatchSize} %d is larger than each process's share of the training set: %s lists %d slices, %d for each of %d processes",
				cfg.BatchSize, filepath.Join(cfg.ListDir, oct.TrainImagesList), len(samples), per, t.world())
		}
		return fieldErrorf("{BatchSize} %d is larger than the training set: %s lists %d slices",
			cfg.BatchSize, filepath.Join(cfg.ListDir, oct.TrainImagesList), len(samples))
	}
	cubes, err := oct.ReadValList(cfg.ListDir)
	if err != nil {
		return err
	}
	info, err := oct.ReadInfo(filepath.Join(cfg.ListDir, oct.InfoFile))
	if err != nil {
		return err
	}
	t.info = info
	if t.norm, err = oct.NewNormalizer(info); err != nil {
		return err
	}
	opts := oct.TrainOptions{BatchSize: cfg.BatchSize, Workers: cfg.Workers, Seed: cfg.Seed, Augment: cfg.Augment}
	if g := cfg.Group; g != nil {
		opts.Rank, opts.World = g.Rank(), g.Size()
	}
	t.loader, err = oct.NewTrainLoader(cfg.DataDir, samples, info, opts)
	if err != nil {
		return augmentError(err)
	}
	t.val = cubes
	t.steps = t.loader.BatchesPerEpoch()
	if cfg.MaxStepsPerEpoch > 0 {
		t.steps = min(t.steps, cfg.MaxStepsPerEpoch)
	}
	return nil
}

func newOptimizer(cfg Config, params []*torch.Tensor) (optim.Optimizer, error) {
	if cfg.Optimizer == SGD {
		return optim.NewSGD(params, optim.SGDOptions{LR: cfg.LR, Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay})
	}
	return optim.NewAdam(params, optim.AdamOptions{LR: cfg.LR, Betas: AdamBetas, Eps: adamEps, WeightDecay: cfg.WeightDecay})
}

// run trains from pos to the last epoch.
func (t *trainer) run(ctx context.Context, pos position) (*Summary, error) {
	cfg := t.cfg
	sched := cfg.schedule()
	t.start.Epoch, t.start.Step = pos.epoch, pos.totals.Steps
	t.obs.Start(t.start)
	for epoch := pos.epoch; epoch < cfg.Epochs; epoch++ {
		lr := sched.LR(epoch)
		if err := t.opt.SetLR(lr); err != nil {
			return nil, err
		}
		tot := totals{}
		if epoch == pos.epoch {
			tot = pos.totals
		}
		began, comm := time.Now(), t.comm
		if err := t.trainEpoch(ctx, epoch, &tot, lr); err != nil {
			if errors.Is(err, errInterrupted) {
				return t.interrupted(position{epoch, tot})
			}
			return nil, err
		}
		trained := time.Now()
		if err := t.mergeTotals(&tot); err != nil {
			return nil, fmt.Errorf("epoch %d: %w", epoch, err)
		}
		t.obs.Validate(epoch)
		val, err := t.validate(ctx)
		if err != nil {
			if errors.Is(err, errInterrupted) {
				return t.interrupted(position{epoch, tot})
			}
			return nil, fmt.Errorf("validation of epoch %d: %w", epoch, err)
		}
		end, err := t.endEpoch(epoch, lr, tot, val)
		if err != nil {
			return nil, err
		}
		end.Train, end.Validated, end.Communication = trained.Sub(began), time.Since(trained), t.comm-comm
		t.obs.EpochEnd(end)
	}
	return t.summary(position{epoch: cfg.Epochs}, false), nil
}

// errDiverged is a step whose outputs are no longer finite numbers.
var errDiverged = fieldErrorf("the network's outputs are not finite numbers: training diverged (try a lower {LR})")

// errInterrupted stops an epoch when the run's context ends.
var errInterrupted = errors.New("interrupted")

// trainEpoch runs the steps of epoch that tot does not count yet.
func (t *trainer) trainEpoch(ctx context.Context, epoch int, tot *totals, lr float64) error {
	first := tot.Steps
	if first >= t.steps {
		return nil
	}
	t.model.Train()
	t.obs.EpochStart(EpochStart{Epoch: epoch, Done: first, Steps: t.steps, LR: lr})
	began := time.Now()
	step := 0
	// The loader keeps decoding while a cancellation lets the step in
	// progress finish; leaving the loop stops it.
	for b, err := range t.loader.Epoch(context.WithoutCancel(ctx), epoch) {
		if err != nil {
			return fmt.Errorf("epoch %d: %w", epoch, err)
		}
		if step >= t.steps {
			break
		}
		if step < first { // done before the interruption this run resumes
			step++
			continue
		}
		if stop, err := t.stopping(ctx); err != nil {
			return fmt.Errorf("epoch %d, step %d: %w", epoch, step, err)
		} else if stop {
			return errInterrupted
		}
		torch.ManualSeed(stepSeed(t.cfg.Seed, epoch, step))
		v, c, err := t.trainStep(b)
		if err != nil {
			return fmt.Errorf("epoch %d, step %d: %w", epoch, step, err)
		}
		if math.IsNaN(v.Total) || math.IsInf(v.Total, 0) {
			return fieldErrorf("epoch %d, step %d: the loss is %v: training diverged (try a lower {LR})", epoch, step, v.Total)
		}
		tot.add(v, c)
		step++
		dice := tot.dice()
		t.obs.Step(Step{
			Epoch: epoch, Step: step, Steps: t.steps, LR: lr, Loss: v,
			MeanLoss: tot.meanLoss(), Dice: dice, MeanDice: dice.Mean(), Elapsed: time.Since(began),
		})
	}
	if step < t.steps {
		return fmt.Errorf("epoch %d: the training loader stopped after %d of %d steps", epoch, step, t.steps)
	}
	return nil
}

// trainStep runs one optimisation step on a batch and returns the loss
// and the confusion counts of its argmax predictions.
func (t *trainer) trainStep(b *oct.Batch) (v losses.Values, c counts, err error) {
	defer torch.Recover(&err)
	s := torch.NewScope()
	defer s.Close()
	dev := t.cfg.Device
	n, h, w := int64(b.N), int64(b.H), int64(b.W)
	x := torch.FromSlice(b.Images, n, 3, h, w).ToDevice(dev)
	y := torch.FromSlice(b.Labels, n, h, w).ToDevice(dev)
	d := torch.FromSlice(b.Targets, n, oct.NumLesions).ToDevice(dev)

	if t.dp != nil {
		if err := t.timed(t.dp.SyncBuffers); err != nil {
			return v, c, err
		}
	}
	seg, det, err := t.cfg.Precision.Forward(dev, func() (seg, det *torch.Tensor, err error) { return t.model.Forward(x) })
	if err != nil {
		return v, c, err
	}
	terms, err := t.loss.Compute(seg, y, det, d)
	if err != nil {
		// A diverged network's detection probabilities are NaN, which the
		// BCE refuses as out of range: say what happened instead.
		sum := det.Sum()
		if seg != nil {
			sum = sum.Add(seg.Sum())
		}
		if x := sum.Item(); math.IsNaN(x) || math.IsInf(x, 0) {
			return v, c, errDiverged
		}
		return v, c, err
	}
	t.opt.ZeroGrad()
	if t.scaler != nil {
		t.scaler.Scale(terms.Total).Backward()
	} else {
		terms.Total.Backward()
	}
	if t.dp != nil {
		if err := t.timed(t.dp.SyncGradients); err != nil {
			return v, c, err
		}
	}
	if t.scaler != nil {
		// Every rank sees the same averaged gradients, so all of them
		// skip a step or none does.
		if _, err := t.scaler.Step(t.opt, t.model.Parameters()); err != nil {
			return v, c, err
		}
		t.scaler.Update()
	} else if err := t.opt.Step(); err != nil {
		return v, c, err
	}

	// One transfer brings the loss terms and the counts to the host.
	var host []float64
	segmented := t.loss.Tasks().Has(oct.Segmentation)
	torch.NoGrad(func() {
		parts := terms.Parts()
		if segmented {
			pred := seg.Argmax(1, false)
			for class := 1; class <= oct.NumLesions; class++ {
				p, g := pred.EqScalar(float64(class)), y.EqScalar(float64(class))
				parts = append(parts, p.LogicalAnd(g).Sum(), p.Sum(), g.Sum())
			}
		}
		for i, p := range parts {
			parts[i] = p.To(torch.Float64)
		}
		host = torch.Stack(parts, 0).ToDevice(torch.CPU).Float64s()
	})
	v = losses.ValuesOf(host)
	for k := range oct.NumLesions {
		if !segmented { // its figures are absent
			c.Inter[k], c.Pred[k], c.Truth[k] = math.NaN(), math.NaN(), math.NaN()
			continue
		}
		c.Inter[k], c.Pred[k], c.Truth[k] = host[4+3*k], host[5+3*k], host[6+3*k]
	}
	return v, c, nil
}

// validate scores the network on the validation cubes with the code of
// edema eval (inference.Evaluate), as the original: evaluation mode,
// ValBatchSize slices at a time, argmax labels, Dice per cube and class,
// detection AUC over all slices together.
func (t *trainer) validate(ctx context.Context) (metrics.Summary, error) {
	if t.dp != nil {
		// Each replica's last forward pass moved its own batch-norm
		// statistics; rank 0's, which its checkpoint keeps, score. They
		// arrive before evaluation mode folds them into the convolutions.
		if err := t.dp.SyncBuffers(); err != nil {
			return metrics.Summary{}, err
		}
	}
	p, err := inference.New([]inference.Member{{Network: t.model, Weight: 1}}, inference.Options{BatchSize: ValBatchSize, Precision: t.cfg.Precision, Layout: t.layout()})
	if err != nil {
		return metrics.Summary{}, err
	}
	opts := inference.EvalOptions{Workers: t.cfg.Workers, Group: t.cfg.Group}
	if opts.Group != nil {
		// The ranks of a job stop together at a step (see stopping); one
		// leaving a sharded validation alone would fail the others'.
		ctx = context.WithoutCancel(ctx)
	}
	ev, err := inference.Evaluate(ctx, p, t.cfg.DataDir, t.val, t.norm, opts)
	if ctx.Err() != nil {
		return metrics.Summary{}, errInterrupted
	}
	if err != nil {
		return metrics.Summary{}, err
	}
	return ev.Summary(), nil
}

// endEpoch logs, plots and saves a finished epoch.
func (t *trainer) endEpoch(epoch int, lr float64, tot totals, val metrics.Summary) (EpochEnd, error) {
	trainDice := tot.dice()
	row := Row{
		Epoch: epoch, TrainDice: trainDice.Mean(), ValDice: val.MeanDice, AUC: val.MeanPooledAUC,
		TrainClassDice: trainDice, ValClassDice: val.Dice, ClassAUC: val.PooledAUC,
		TrainLoss: tot.meanLoss(), LR: lr, TrainPooledDice: tot.pooledDice().Mean(),
	}
	figure := t.selection(row)
	isBest := figure > t.best
	if isBest {
		t.best = figure
	}
	t.lastDice = figure
	t.rows = append(t.rows, row)
	latest := t.path(LatestName)
	if !t.writes() {
		return EpochEnd{Row: row, Best: isBest, Checkpoint: latest}, nil
	}

	// The order makes a crash at any point recoverable by --resume from
	// checkpoint_latest: the log first, since a resume drops the rows it
	// has not reached; then model_best before checkpoint_latest, since a
	// resume from the older latest redoes the epoch and writes the same
	// best again, while the other order could leave latest past an epoch
	// whose best was never written; the copy of every epoch last, which a
	// resume writes where it is missing.
	steps := []epochWrite{
		{"log", func() error { return WriteLog(filepath.Join(t.out, LogName), t.rows) }},
	}
	if isBest {
		best := t.path(BestName)
		steps = append(steps,
			epochWrite{"best", func() error { return t.save(best, position{epoch: epoch + 1}) }},
			epochWrite{"latest", func() error { return copyFileAtomic(best, latest) }})
	} else {
		steps = append(steps, epochWrite{"latest", func() error { return t.save(latest, position{epoch: epoch + 1}) }})
	}
	if t.cfg.SaveEveryCheckpoint {
		every := t.path(fmt.Sprintf(EveryNameFmt, epoch))
		steps = append(steps, epochWrite{"every", func() error { return copyFileAtomic(latest, every) }})
	}
	steps = append(steps, epochWrite{"plot", t.plot})
	for _, s := range steps {
		if err := s.write(); err != nil {
			return EpochEnd{}, err
		}
		if crashAfter != nil {
			if err := crashAfter(s.point); err != nil {
				return EpochEnd{}, err
			}
		}
	}
	return EpochEnd{Row: row, Best: isBest, Checkpoint: latest}, nil
}

// selection is the figure of an epoch that picks model_best: the
// validation Dice, as the original, or for a network that only detects
// the validation AUC. The checkpoints' best_dice and dice_epoch hold it.
func (t *trainer) selection(r Row) float64 {
	if t.loss.Tasks().Has(oct.Segmentation) {
		return r.ValDice
	}
	return r.AUC
}

// selectionName names the figure of selection.
func (t *trainer) selectionName() string {
	if t.loss.Tasks().Has(oct.Segmentation) {
		return "Dice"
	}
	return "AUC"
}

// epochWrite is one file that endEpoch writes, named for crashAfter.
type epochWrite struct {
	point string
	write func() error
}

// crashAfter, set by tests, is called after each file that endEpoch
// writes with its name (log, best, latest, every, plot); an error stops
// the run there, as a crash at that point would.
var crashAfter func(point string) error

func (t *trainer) path(name string) string { return filepath.Join(t.out, CheckpointDir, name) }

// plot redraws the curves of the log.
func (t *trainer) plot() error {
	epochs := make([]picture.Epoch, len(t.rows))
	best, bestDice := -1, 0.0
	for i, r := range t.rows {
		v := map[string]float64{
			"train loss":    r.TrainLoss,
			"train Dice":    r.TrainDice,
			"val Dice":      r.ValDice,
			"val AUC":       r.AUC,
			"learning rate": r.LR,
		}
		if figure := t.selection(r); figure > bestDice { // the first epoch of the best figure, as model_best.pth.tar holds
			best, bestDice = r.Epoch, figure
		}
		for c, name := range oct.LesionNames {
			v["val Dice "+name] = r.ValClassDice[c]
		}
		epochs[i] = picture.Epoch{Epoch: r.Epoch, Values: v}
	}
	title := fmt.Sprintf("%s, %s, %s lr %g (%s)", t.cfg.Name, t.cfg.Loss, t.cfg.Optimizer, t.cfg.LR, t.cfg.LRMode)
	return picture.WriteTrainingCurves(filepath.Join(t.out, CurvesName), title, epochs, best)
}

// interrupted saves the state at pos and reports the interruption.
func (t *trainer) interrupted(pos position) (*Summary, error) {
	if t.cfg.Group != nil && pos.totals.Steps > 0 {
		all, err := t.gatherTotals(pos.totals)
		if err != nil {
			return nil, fmt.Errorf("interrupted, and gathering the ranks' figures failed: %w", err)
		}
		t.rankTotals = all
	}
	if !t.writes() {
		return t.summary(pos, true), nil
	}
	if err := t.save(t.path(LatestName), pos); err != nil {
		return nil, fmt.Errorf("interrupted, and saving the state failed: %w", err)
	}
	return t.summary(pos, true), nil
}

func (t *trainer) summary(pos position, interrupted bool) *Summary {
	s := &Summary{
		Rows: t.rows, BestDice: t.best, Selection: t.selectionName(), Epoch: pos.epoch, Step: pos.totals.Steps,
		Interrupted: interrupted, Checkpoint: t.path(LatestName),
	}
	if _, err := os.Stat(t.path(BestName)); err == nil {
		s.Best = t.path(BestName)
	}
	return s
}

// save writes the checkpoint of position pos: the original's entries
// (epoch = epochs done), the optimizer's state, the network's name and
// the seed, and for a position inside an epoch its steps and totals.
func (t *trainer) save(path string, pos position) error {
	optState, err := t.opt.StateDictFor(t.cfg.OptimizerLayout)
	if err != nil {
		return err
	}
	meta := &models.CheckpointMeta{Epoch: int64(pos.epoch), BestDice: t.best, DiceEpoch: t.lastDice}
	c, err := models.NewCheckpoint(t.model, meta, optState)
	if err != nil {
		return err
	}
	c.Extra = pth.NewDict()
	c.Extra.Set(models.CheckpointArch, t.cfg.Name)
	models.SetTasks(c, t.cfg.Name, t.loss.Tasks())
	c.Extra.Set(checkpointSeed, int64(t.cfg.Seed))
	models.SetNormalization(c, t.info)
	if t.world() > 1 {
		c.Extra.Set(checkpointWorldSize, int64(t.world()))
	}
	if t.scaler != nil {
		st := t.scaler.State()
		c.Extra.Set(checkpointScalerScale, st.Scale)
		c.Extra.Set(checkpointScalerTracker, st.GrowthTracker)
	}
	if pos.totals.Steps > 0 {
		c.Extra.Set(checkpointEpochStep, int64(pos.totals.Steps))
		c.Extra.Set(checkpointEpochTotals, pos.totals.encode())
		if len(t.rankTotals) > 1 {
			ranks := make([]any, len(t.rankTotals))
			for r, tot := range t.rankTotals {
				ranks[r] = tot.encode()
			}
			c.Extra.Set(checkpointRankTotals, ranks)
		}
	}
	if err := c.Save(path, models.SaveOptions{}); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return nil
}

// resume restores the state of the checkpoint cfg.Resume into the network
// and the optimizer and returns where it stands.
func (t *trainer) resume() (pos position, err error) {
	path := t.cfg.Resume
	c, err := models.ReadCheckpoint(path)
	if err != nil {
		return pos, fieldErrorf("{Resume}: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fieldErrorf("{Resume} %s: %s", path, fmt.Sprintf(format, args...))
	}
	if c.Epoch == nil {
		return pos, bad("not a training checkpoint (it has no epoch); start from its weights with {ModelPath}")
	}
	if err := t.model.LoadCheckpoint(c); err != nil {
		return pos, bad("%v", err)
	}
	pos.epoch = int(*c.Epoch)
	if c.BestDice != nil {
		t.best = *c.BestDice
	}
	if c.DiceEpoch != nil {
		t.lastDice = *c.DiceEpoch
	}
	if v, ok := c.Extra.Get(checkpointSeed); ok {
		if seed, ok := intEntry(v); !ok || uint64(seed) != t.cfg.Seed {
			return pos, bad("the run was trained with {Seed} %v, not %d; resume with its seed", v, t.cfg.Seed)
		}
	}
	world := int64(1)
	if v, ok := c.Extra.Get(checkpointWorldSize); ok {
		if world, ok = intEntry(v); !ok || world < 1 {
			return pos, bad("its world size %v is not a number of processes", v)
		}
	}
	if v, ok := c.Extra.Get(checkpointEpochStep); ok {
		if int(world) != t.world() {
			return pos, bad("it was written inside epoch %d by a job of %d process(es): resume it with %d, or resume from the checkpoint of an epoch's end",
				*c.Epoch, world, world)
		}
		steps, ok := intEntry(v)
		enc, _ := c.Extra.Get(checkpointEpochTotals)
		if world > 1 {
			ranks, _ := c.Extra.Get(checkpointRankTotals)
			if list, ok := ranks.([]any); ok && len(list) == int(world) {
				enc = list[t.cfg.Group.Rank()]
			} else {
				enc = nil
			}
		}
		tot, err := decodeTotals(enc)
		if !ok || err != nil || steps != int64(tot.Steps) || steps < 0 || int(steps) > t.steps {
			return pos, bad("the record of the interrupted epoch (step %v of %d) is damaged or from other settings", v, t.steps)
		}
		pos.totals = tot
	}
	if pos.epoch < 0 || pos.epoch > t.cfg.Epochs || (pos.epoch == t.cfg.Epochs && pos.totals.Steps > 0) {
		return pos, bad("epoch %d does not fit {Epochs} %d", pos.epoch, t.cfg.Epochs)
	}
	if pos.epoch == t.cfg.Epochs {
		return pos, bad("all %d epochs are done; raise {Epochs} to train on", t.cfg.Epochs)
	}
	if int(world) != t.world() {
		t.start.Notes = append(t.start.Notes, fmt.Sprintf(
			"{Resume}: the run was trained by %d process(es) and continues on %d; each epoch's shards, and so the run, differ from those it would have had", world, t.world()))
	}
	if c.Optimizer == nil {
		t.start.FreshOptimizer = true
	} else if err := t.loadOptimizer(c.Optimizer); err != nil {
		return pos, bad("%v", err)
	}
	if err := t.resumeScaler(c); err != nil {
		return pos, bad("%v", err)
	}
	rows, err := ReadLog(filepath.Join(t.out, LogName))
	if err != nil {
		return pos, err
	}
	for _, r := range rows {
		if r.Epoch < pos.epoch {
			t.rows = append(t.rows, r)
		}
	}
	t.start.Resumed = path
	return pos, nil
}

// resumeScaler restores the gradient scaler's state from checkpoint c. A
// run that had none (it trained in another precision) starts a fresh one,
// and says so; a scaler's state without a scaler now is left alone.
func (t *trainer) resumeScaler(c *models.Checkpoint) error {
	if t.scaler == nil {
		return nil
	}
	scale, okScale := c.Extra.Get(checkpointScalerScale)
	tracker, okTracker := c.Extra.Get(checkpointScalerTracker)
	if !okScale && !okTracker {
		t.start.Notes = append(t.start.Notes, fmt.Sprintf(
			"{Resume}: the run had no gradient scaler; {Precision} %s starts one at scale %g", t.cfg.Precision, t.scaler.ScaleValue()))
		return nil
	}
	s, okScale := floatEntry(scale)
	n, okTracker := intEntry(tracker)
	if !okScale || !okTracker {
		return fmt.Errorf("its gradient scaler's state (scale %v, growth tracker %v) is damaged", scale, tracker)
	}
	if err := t.scaler.SetState(optim.GradScalerState{Scale: s, GrowthTracker: n}); err != nil {
		return fmt.Errorf("its %v", err)
	}
	return nil
}

// floatEntry reads a number entry of a checkpoint, as intEntry does.
func floatEntry(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

// intEntry reads an integer entry of a checkpoint: an int, or its decimal
// string from the metadata of a safetensors file, which holds strings only.
func intEntry(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func (t *trainer) loadOptimizer(v any) (err error) {
	defer torch.Recover(&err)
	s := torch.NewScope()
	defer s.Close()
	sd, err := nn.OptimizerStateFromHost(v)
	if err != nil {
		return err
	}
	if err := t.opt.LoadStateDict(sd); err != nil {
		return fieldErrorf("its optimizer state does not fit {Optimizer} %s: %w", t.cfg.Optimizer, err)
	}
	return nil
}

// stopping says whether the run stops before the next step: ctx has
// ended. The ranks of a job agree (any rank's ctx ending stops all at the
// same step), so that none is left alone in a collective.
func (t *trainer) stopping(ctx context.Context) (stop bool, err error) {
	stop = ctx.Err() != nil
	g := t.cfg.Group
	if g == nil {
		return stop, nil
	}
	defer torch.Recover(&err)
	defer func(start time.Time) { t.comm += time.Since(start) }(time.Now())
	flag := torch.FromSlice([]float32{0}, 1)
	if stop {
		flag = torch.FromSlice([]float32{1}, 1)
	}
	if err := g.AllReduce(distributed.Sum, flag); err != nil {
		return false, err
	}
	return flag.Float32s()[0] > 0, nil
}

// timed runs a collective and counts its time as communication.
func (t *trainer) timed(collective func() error) error {
	start := time.Now()
	err := collective()
	t.comm += time.Since(start)
	return err
}

// gatherTotals returns every rank's totals, in rank order.
func (t *trainer) gatherTotals(tot totals) (all []totals, err error) {
	defer torch.Recover(&err)
	enc := tot.encode()
	v := make([]float64, len(enc))
	for i, x := range enc {
		v[i] = x.(float64)
	}
	parts, err := t.cfg.Group.AllGather(torch.FromSlice(v, int64(len(v))))
	if err != nil {
		return nil, err
	}
	for r, p := range parts {
		f := p.Float64s()
		items := make([]any, len(f))
		for i, x := range f {
			items[i] = x
		}
		tot, err := decodeTotals(items)
		if err != nil {
			return nil, fmt.Errorf("rank %d's figures: %w", r, err)
		}
		all = append(all, tot)
	}
	return all, nil
}

// mergeTotals makes tot, at the end of an epoch of a job, the totals of
// every rank's steps, which the log reports.
func (t *trainer) mergeTotals(tot *totals) error {
	if t.cfg.Group == nil {
		return nil
	}
	all, err := t.gatherTotals(*tot)
	if err != nil {
		return err
	}
	merged := totals{}
	for _, a := range all {
		merged.merge(a)
	}
	*tot = merged
	return nil
}

// stepSeed is the libtorch seed of a training step: a mix of the run's
// seed, the epoch and the step (splitmix64's finaliser), so that the
// dropout masks of every step are fixed by the run's seed alone.
func stepSeed(seed uint64, epoch, step int) uint64 {
	mix := func(x uint64) uint64 {
		x += 0x9e3779b97f4a7c15
		x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
		x = (x ^ x>>27) * 0x94d049bb133111eb
		return x ^ x>>31
	}
	return mix(seed ^ mix(uint64(epoch)<<32|uint64(uint32(step))))
}

// copyFileAtomic copies src over dst through a temporary file.
func copyFileAtomic(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := atomicfile.Write(dst, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	}); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}

// layout is the memory layout of validation: training's, since validation
// runs the network being trained.
func (t *trainer) layout() inference.Layout {
	if t.cfg.ChannelsLast {
		return inference.ChannelsLast
	}
	return inference.Contiguous
}
