// Package demo runs the whole retinal-edema pipeline end to end on a
// synthetic data set: it generates the data (package synth), trains UNet++
// with the mix_33 loss and UNet with mix_3 briefly (package train),
// evaluates each, their 0.5/0.5 fusion and the fusion with flip test-time
// augmentation on the validation cubes, writes slice pictures and the test
// submission of the fusion (package inference), and scores that submission
// against the synthetic test set's ground truth with the challenge's
// official scoring (package submission). An untrained UNet is evaluated
// too, as the floor that training must clear.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/outdir"
	"github.com/edema/edema/losses"
	"github.com/edema/edema/metrics"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/oct/synth"
	"github.com/edema/edema/submission"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/train"
)

// Recipe is how the demo trains one network: a published recipe
// (docs/ORIGINAL.md, "Training recipe": network, loss, Adam, learning-rate
// schedule), shortened.
type Recipe struct {
	Name   string // the network, see models.Names
	Loss   string
	Epochs int
	LR     float64
	LRMode train.LRMode
	Step   int // epochs between tenfold drops, for step
}

// Recipes are UNet++ (mix_33, poly schedule) and UNet (mix_3, step
// schedule dividing by 10 every 20 epochs), the two networks of the original's fusion. UNet costs a
// third of UNet++ a step and learns more slowly, so it gets twice the
// epochs.
func Recipes(epochs int, lr float64) []Recipe {
	return []Recipe{
		{Name: models.NameUNetNested, Loss: losses.Mix33, Epochs: epochs, LR: lr, LRMode: train.PolyLR},
		{Name: models.NameUNet, Loss: losses.Mix3, Epochs: 2 * epochs, LR: lr, LRMode: train.StepLR, Step: 20},
	}
}

// Options say how big the demo is.
type Options struct {
	// Out receives everything; it must be new or empty.
	Out  string
	Data synth.Options
	// Epochs and LR are UNet++'s (see Recipes); BatchSize and
	// MaxStepsPerEpoch apply to both networks.
	Epochs, BatchSize int
	LR                float64
	MaxStepsPerEpoch  int // 0: every slice every epoch
	Seed              uint64
	Device            torch.Device
	// Threads is the number of libtorch threads; Workers the files read
	// at once. All CPUs when 0.
	Threads, Workers int
	// Log receives a line per stage and per epoch; nil for none.
	Log io.Writer
	// Progress, when set, hears of every pass within a stage: the cubes
	// synthesised, the steps of each epoch, the cubes evaluated, written
	// and scored.
	Progress oct.Progress
}

// pass returns the report of the passes of one stage, each named by stage
// and what it counts; nil when no one listens.
func (o Options) pass(stage string) oct.Progress {
	if o.Progress == nil {
		return nil
	}
	return func(what string, done, total int) { o.Progress(stage+": "+what, done, total) }
}

// cubePass returns the report of a pass of inference over cubes.
func (o Options) cubePass(stage string) func(inference.CubeDone) {
	return inference.CountCubes(o.pass(stage))
}

// DefaultOptions is the built-in demo: 6 training, 2 validation and 2 test
// cubes of 32 slices of 64×128 pixels; UNet++ trained 6 epochs of all 192
// training slices and UNet 12, batches of 8, Adam at 0.001. It takes a few
// minutes on two CPU cores.
func DefaultOptions() Options {
	return Options{
		Out:       filepath.Join("result", "demo"),
		Data:      synth.Options{Train: 6, Val: 2, Test: 2, Slices: 32, Width: 64, Height: 128, Seed: 1},
		Epochs:    6,
		BatchSize: 8,
		LR:        0.001,
		Seed:      1234,
		Device:    torch.CPU,
	}
}

// QuickOptions is a reduced demo for continuous integration: 3 training
// cubes, one validation and one test cube, of 16 slices; batches of 4,
// Adam at 0.002, UNet++ trained 5 epochs and UNet 10. UNet++ still ends far
// above an untrained network; UNet, slower to learn, less reliably so.
func QuickOptions() Options {
	o := DefaultOptions()
	o.Data = synth.Options{Train: 3, Val: 1, Test: 1, Slices: 16, Width: 64, Height: 128, Seed: 1}
	o.Epochs = 5
	o.BatchSize = 4
	o.LR = 0.002
	return o
}

// Validate checks the options that need no file.
func (o Options) Validate() error {
	switch {
	case o.Out == "":
		return errors.New("no output folder")
	case o.Epochs < 1:
		return fmt.Errorf("epochs must be at least 1, got %d", o.Epochs)
	case o.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", o.BatchSize)
	case !(o.LR > 0):
		return fmt.Errorf("learning rate must be positive, got %g", o.LR)
	case o.MaxStepsPerEpoch < 0:
		return fmt.Errorf("max steps per epoch must not be negative, got %d", o.MaxStepsPerEpoch)
	case o.Threads < 0:
		return fmt.Errorf("threads must not be negative, got %d", o.Threads)
	case o.Workers < 0:
		return fmt.Errorf("workers must not be negative, got %d", o.Workers)
	case o.Data.Val < 1:
		return errors.New("the demo needs at least one validation cube")
	case o.Data.Test < 1:
		return errors.New("the demo needs at least one test cube")
	}
	if o.Data.Train*o.Data.Slices < o.BatchSize {
		return fmt.Errorf("%d training slices do not fill one batch of %d", o.Data.Train*o.Data.Slices, o.BatchSize)
	}
	return o.Data.Validate()
}

// Row is the validation figures of one model of the demo.
type Row struct {
	Model   string // what was evaluated, such as "UNet++ (mix_33)"
	Summary metrics.Summary
	// Official is the challenge's official scoring of the same predictions.
	Official submission.Result
	// Dir holds its dice_epoch.txt, cubes.tsv, score.txt and roc.png.
	Dir string
}

// Report is what the demo did and where its outputs are.
type Report struct {
	Out, Data, Lists string
	// Checkpoints of the trained networks, by network name.
	Checkpoints map[string]string
	// Rows: the untrained UNet, each trained network, the fusion, the
	// fusion with flip augmentation.
	Rows []Row
	// Pictures is the folder of the fusion's slice pictures.
	Pictures string
	// Submission is the fusion's submission.zip for the test cubes, and
	// Test its official score against their ground truth.
	Submission string
	Test       submission.Result
	Took       time.Duration
}

// Run runs the demo. Cancelling ctx stops it between steps.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := requireEmpty(o.Out); err != nil {
		return nil, err
	}
	if err := torch.CheckDevice(o.Device); err != nil {
		return nil, err
	}
	// Two demos started into the same new folder would both pass
	// requireEmpty; the claim lets one of them through.
	claim, err := outdir.Acquire(o.Out)
	if err != nil {
		return nil, err
	}
	defer claim.Release()
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	torch.SetNumThreads(o.Threads)

	r := &Report{Out: o.Out, Data: filepath.Join(o.Out, "data"), Checkpoints: map[string]string{}}
	r.Lists = filepath.Join(r.Data, synth.ListDir)
	d := o.Data
	d.Workers, d.Progress = o.Workers, o.pass("synthesising")
	fmt.Fprintf(log, "synthesising %d training, %d validation and %d test cubes of %d slices of %d×%d into %s\n",
		d.Train, d.Val, d.Test, d.Slices, d.Width, d.Height, r.Data)
	if _, err := synth.Generate(r.Data, d); err != nil {
		return nil, err
	}

	for _, recipe := range Recipes(o.Epochs, o.LR) {
		ckpt, err := trainNetwork(ctx, o, r, recipe, log)
		if err != nil {
			return nil, err
		}
		r.Checkpoints[recipe.Name] = ckpt
	}

	val, err := oct.ReadValList(r.Lists)
	if err != nil {
		return nil, err
	}
	norm, err := oct.ReadNormalizer(filepath.Join(r.Lists, oct.InfoFile))
	if err != nil {
		return nil, err
	}
	evaluate := func(label, dir string, p *inference.Predictor, vis bool) error {
		defer p.Free()
		fmt.Fprintf(log, "evaluating %s on the validation cubes\n", label)
		opts := inference.EvalOptions{Workers: o.Workers, Worst: &inference.WorstSlices{K: inference.DefaultWorstSlices},
			Progress: o.cubePass("evaluating " + label)}
		if vis {
			opts.VisDir = filepath.Join(dir, "vis")
			r.Pictures = opts.VisDir
		}
		ev, err := inference.Evaluate(ctx, p, r.Data, val, norm, opts)
		if err != nil {
			return fmt.Errorf("evaluating %s: %w", label, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := inference.WriteReport(dir, label, ev, opts.Worst); err != nil {
			return err
		}
		r.Rows = append(r.Rows, Row{Model: label, Summary: ev.Summary(), Official: submission.Official(ev), Dir: dir})
		return nil
	}
	evalDir := func(name string) string { return filepath.Join(o.Out, "eval", name) }

	floor, err := saveUntrained(o)
	if err != nil {
		return nil, err
	}
	untrained, err := inference.Load([]inference.Spec{{Name: models.NameUNet, Checkpoint: floor, Weight: 1}}, o.Device, inference.Options{})
	if err != nil {
		return nil, err
	}
	if err := evaluate("untrained UNet", evalDir("untrained_unet"), untrained, false); err != nil {
		return nil, err
	}
	var fusion []inference.Spec
	for _, recipe := range Recipes(o.Epochs, o.LR) {
		spec := inference.Spec{Name: recipe.Name, Checkpoint: r.Checkpoints[recipe.Name], Weight: 1}
		p, err := inference.Load([]inference.Spec{spec}, o.Device, inference.Options{})
		if err != nil {
			return nil, err
		}
		if err := evaluate(label(recipe), evalDir(recipe.Name), p, false); err != nil {
			return nil, err
		}
		spec.Weight = 0.5
		fusion = append(fusion, spec)
	}
	for _, tta := range []inference.TTA{inference.NoTTA, inference.FlipTTA} {
		p, err := inference.Load(fusion, o.Device, inference.Options{TTA: tta})
		if err != nil {
			return nil, err
		}
		name, lbl, vis := "fusion", "fusion 0.5/0.5", true
		if tta != inference.NoTTA {
			name, lbl, vis = "fusion_"+string(tta), "fusion + "+string(tta)+" TTA", false
		}
		if err := evaluate(lbl, evalDir(name), p, vis); err != nil {
			return nil, err
		}
	}

	if err := writeTestSubmission(ctx, o, r, fusion, log); err != nil {
		return nil, err
	}
	r.Took = time.Since(start)
	if err := writeSummary(r); err != nil {
		return nil, err
	}
	return r, nil
}

// label names a recipe's network in the table.
func label(r Recipe) string {
	names := map[string]string{models.NameUNet: "UNet", models.NameUNetNested: "UNet++", models.NameUNetNestedDilated: "dilated UNet++"}
	return fmt.Sprintf("%s (%s)", names[r.Name], r.Loss)
}

// trainNetwork trains one recipe and returns its best checkpoint.
func trainNetwork(ctx context.Context, o Options, r *Report, recipe Recipe, log io.Writer) (string, error) {
	cfg := train.DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.ListDir = recipe.Name, r.Data, r.Lists
	cfg.OutDir = filepath.Join(o.Out, "train", recipe.Name)
	cfg.BatchSize, cfg.Workers, cfg.Epochs = o.BatchSize, o.Workers, recipe.Epochs
	cfg.LR, cfg.LRMode, cfg.Loss = recipe.LR, recipe.LRMode, recipe.Loss
	if recipe.Step > 0 {
		cfg.Step = recipe.Step
	}
	cfg.Device, cfg.Seed, cfg.MaxStepsPerEpoch, cfg.Threads = o.Device, o.Seed, o.MaxStepsPerEpoch, o.Threads
	fmt.Fprintf(log, "training %s: %d epochs, batch %d, Adam lr %g (%s), into %s\n", label(recipe), cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.LRMode, cfg.OutDir)
	sum, err := train.Run(ctx, cfg, &train.EpochLines{W: log, Label: recipe.Name, Steps: o.pass("training " + label(recipe)), Epochs: cfg.Epochs})
	if err != nil {
		return "", fmt.Errorf("training %s: %w", recipe.Name, err)
	}
	if sum.Interrupted {
		return "", fmt.Errorf("training %s: %w", recipe.Name, context.Cause(ctx))
	}
	return sum.Weights(), nil
}

// saveUntrained writes the weights of a UNet as initialised before
// training, the floor of the table, and returns the checkpoint's path.
func saveUntrained(o Options) (string, error) {
	torch.ManualSeed(o.Seed)
	m, err := models.New(models.NameUNet)
	if err != nil {
		return "", err
	}
	defer m.Free()
	path := filepath.Join(o.Out, "train", "untrained_unet.pth.tar")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := models.SaveCheckpoint(path, m, nil, nil, models.SaveOptions{}); err != nil {
		return "", err
	}
	return path, nil
}

// writeTestSubmission predicts the test cubes with the fusion, writes the
// submission and scores it against the synthetic test ground truth.
func writeTestSubmission(ctx context.Context, o Options, r *Report, fusion []inference.Spec, log io.Writer) error {
	test, err := oct.ReadTestList(r.Lists)
	if err != nil {
		return err
	}
	norm, err := oct.ReadNormalizer(filepath.Join(r.Lists, oct.TestInfoFile))
	if err != nil {
		return err
	}
	p, err := inference.Load(fusion, o.Device, inference.Options{})
	if err != nil {
		return err
	}
	defer p.Free()
	dir := filepath.Join(o.Out, "test", "fusion")
	fmt.Fprintf(log, "writing the fusion's submission for %d test cubes into %s\n", len(test), dir)
	r.Submission, err = inference.WriteSubmission(ctx, p, r.Data, test, norm, dir,
		inference.SubmitOptions{Workers: o.Workers, Volumes: true, Detections: true, Progress: o.cubePass("writing the submission")})
	if err != nil {
		return err
	}
	r.Test, err = submission.Score(r.Submission, filepath.Join(r.Data, synth.TestGroundTruth), o.pass("scoring the submission"))
	return err
}

// requireEmpty refuses an output folder that holds anything, so that a
// demo never mixes with, or overwrites, an earlier one.
func requireEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: remove it or choose another output folder", dir)
	}
	return nil
}
