// Package reproduce trains and scores every row of the original project's
// results table: the ResNet-18 detector, UNet without and with the
// detection head, UNet++ with either Dice loss, dilated UNet++, and the
// fusion of UNet++ and UNet. Each row is trained with its recipe (the
// published one where the original gives it, UNet++'s otherwise, said so
// in the output), evaluated on the validation cubes and, given the test
// set's ground truth, on the test cubes with the challenge's scoring; the
// table sets the figures beside the published ones. Figures of a task a
// row does not do are absent, never zero.
//
// A run is resumable: every row trains in its own folder, and running
// again continues a row's training where it stopped and skips the rows
// done.
package reproduce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/oct/synth"
	"github.com/edema/edema/submission"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/train"
)

// Recipe is how a row is trained.
type Recipe struct {
	BatchSize, Epochs int
	LR                float64 // Adam's, momentum 0.9
	LRMode            train.LRMode
	Step              int // epochs between tenfold drops, for step
	// Published is set when the original gives this row's recipe; the
	// others take UNet++'s.
	Published bool
}

// String writes the recipe as the table shows it.
func (r Recipe) String() string {
	s := fmt.Sprintf("batch %d, %d epochs, Adam %g %s", r.BatchSize, r.Epochs, r.LR, r.LRMode)
	if r.LRMode == train.StepLR {
		s += fmt.Sprintf(" %d", r.Step)
	}
	if !r.Published {
		s += " (UNet++'s: none published)"
	}
	return s
}

// The two recipes that the original's README gives.
var (
	unetRecipe   = Recipe{BatchSize: 32, Epochs: 100, LR: 0.001, LRMode: train.StepLR, Step: 20, Published: true}
	nestedRecipe = Recipe{BatchSize: 16, Epochs: 100, LR: 0.001, LRMode: train.PolyLR, Published: true}
)

// Figures are the four columns of the original's table; NaN where it
// gives none, or, for a reproduced row, where the row does not do the
// task or no test ground truth was given.
type Figures struct {
	ValDice, ValAUC, TestDice, TestAUC float64
}

// Row is one row of the original's table.
type Row struct {
	Key       string // the row's folder under the output folder
	Model     string // as the original names it
	MultiTask bool
	Name      string // the network; "" for the fusion
	Loss      string
	Terms     string // the loss as the table writes it
	Recipe    Recipe
	Published Figures
}

// fusionKey is the fusion row's, whose members are the rows of these keys.
const fusionKey = "fusion"

var fusionMembers = []string{"unet_nested_mix_33", "unet_mix_3"}

// Rows returns the original's table, in its order: the trained rows, then
// the fusion of UNet++ (mix_33) and UNet (mix_3), 0.5 each.
func Rows() []Row {
	nan := math.NaN()
	other := nestedRecipe
	other.Published = false
	return []Row{
		{"resnet18_bce", "ResNet18 (*pre)", false, models.NameResNet18, losses.BCEOnly, "BCE", other, Figures{nan, 0.971, nan, 0.904}},
		{"unet_mix_2", "UNet", false, models.NameUNet, losses.Mix2, "WCE+Dice", other, Figures{0.772, nan, 0.683, nan}},
		{"unet_mix_3", "UNet", true, models.NameUNet, losses.Mix3, "WCE+Dice+BCE", unetRecipe, Figures{0.785, 0.985, 0.701, nan}},
		{"unet_nested_mix_3", "UNet++", true, models.NameUNetNested, losses.Mix3, "WCE+Dice+BCE", other, Figures{0.784, 0.986, nan, nan}},
		{"unet_nested_mix_33", "UNet++", true, models.NameUNetNested, losses.Mix33, "WCE+ELDice+BCE", nestedRecipe, Figures{0.799, 0.989, 0.736, nan}},
		{"unet_nested_dilated_mix_33", "Dilated UNet++", true, models.NameUNetNestedDilated, losses.Mix33, "WCE+ELDice+BCE", other, Figures{0.807, 0.978, nan, nan}},
		{fusionKey, "Fusion (UNet++ & UNet)", true, "", "", "-", Recipe{}, Figures{0.805, 0.991, 0.744, 0.986}},
	}
}

// Options say what to reproduce on.
type Options struct {
	// DataDir and ListDir are the data set (docs/ORIGINAL.md, "Data");
	// both empty means a synthetic data set made in Out/data.
	DataDir, ListDir string
	// TestTruth is the test cubes' ground truth in the organisers'
	// reference format (<CUBE>_volumes.npy, <CUBE>_detections.npy); empty
	// leaves the test columns absent. The synthetic data set has its own.
	TestTruth string
	Out       string
	// Quick trains each row 2 epochs of at most 6 steps of 4 slices, on a
	// synthetic set of 3 training cubes of 16 slices: the whole table in a
	// few minutes on a CPU, for continuous integration and a first look.
	Quick bool
	// Pretrained is torchvision's ImageNet checkpoint of ResNet-18, to
	// start the detector from as the original did; empty trains it from
	// scratch.
	Pretrained string
	Device     torch.Device
	Seed       uint64
	// Threads is the number of libtorch threads; Workers the files read
	// at once. All CPUs when 0.
	Threads, Workers int
	// Log receives a line per stage and per epoch; nil for none.
	Log io.Writer
	// Progress, when set, hears of the steps and cubes of every stage.
	Progress oct.Progress
}

// Result is a reproduced row.
type Result struct {
	Row
	Recipe Recipe // as trained (shortened by Quick)
	Got    Figures
	// ValScore is the challenge's official score of the validation
	// predictions, NaN for a row that does one task only.
	ValScore float64
	// Dir holds the row's training run (train/) and evaluations (val/,
	// test/).
	Dir string
	// Start says what the weights started from, when not the network's
	// own initialisation: the detector's ImageNet weights.
	Start string
}

// Run reproduces every row and writes the table into Out (see TableName).
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Out == "" {
		return nil, errors.New("no output folder")
	}
	if (o.DataDir == "") != (o.ListDir == "") {
		return nil, errors.New("give both the data folder and the list folder, or neither for synthetic data")
	}
	if err := torch.CheckDevice(o.Device); err != nil {
		return nil, err
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	torch.SetNumThreads(o.Threads)
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	if o.DataDir == "" {
		if err := synthesise(&o); err != nil {
			return nil, err
		}
	}
	val, err := oct.ReadValList(o.ListDir)
	if err != nil {
		return nil, err
	}
	valNorm, err := oct.ReadNormalizer(filepath.Join(o.ListDir, oct.InfoFile))
	if err != nil {
		return nil, err
	}

	var results []Result
	checkpoints := map[string]string{}
	for _, row := range Rows() {
		res := Result{Row: row, Recipe: o.recipe(row.Recipe), Dir: filepath.Join(o.Out, row.Key)}
		if row.Name == models.NameResNet18 && o.Pretrained != "" {
			res.Start = "torchvision's ImageNet weights " + o.Pretrained
		}
		var specs []inference.Spec
		if row.Key == fusionKey {
			for _, key := range fusionMembers {
				specs = append(specs, inference.Spec{Name: networkOf(key), Checkpoint: checkpoints[key], Weight: 0.5})
			}
		} else {
			ckpt, err := trainRow(ctx, o, res)
			if err != nil {
				return nil, err
			}
			checkpoints[row.Key] = ckpt
			specs = []inference.Spec{{Name: row.Name, Checkpoint: ckpt, Weight: 1}}
		}
		if err := score(ctx, o, &res, specs, val, valNorm); err != nil {
			return nil, fmt.Errorf("%s: %w", row.Key, err)
		}
		results = append(results, res)
		fmt.Fprintf(o.Log, "%s: val Dice %s, val AUC %s, test Dice %s, test AUC %s\n", row.Key,
			inference.Figure(res.Got.ValDice), inference.Figure(res.Got.ValAUC), inference.Figure(res.Got.TestDice), inference.Figure(res.Got.TestAUC))
	}
	if err := writeTables(o.Out, results); err != nil {
		return nil, err
	}
	return results, nil
}

// networkOf returns the network of the row of key.
func networkOf(key string) string {
	for _, r := range Rows() {
		if r.Key == key {
			return r.Name
		}
	}
	return ""
}

// quickData is the synthetic set of Quick; fullData that of a full run.
var (
	quickData = synth.Options{Train: 3, Val: 1, Test: 1, Slices: 16, Width: 64, Height: 128, Seed: 1}
	fullData  = synth.Options{Train: 6, Val: 2, Test: 2, Slices: 32, Width: 64, Height: 128, Seed: 1}
)

// synthesise makes the synthetic data set, or finds the one an earlier
// run made.
func synthesise(o *Options) error {
	o.DataDir = filepath.Join(o.Out, "data")
	o.ListDir = filepath.Join(o.DataDir, synth.ListDir)
	if o.TestTruth == "" {
		o.TestTruth = filepath.Join(o.DataDir, synth.TestGroundTruth)
	}
	if _, err := os.Stat(filepath.Join(o.ListDir, oct.InfoFile)); err == nil {
		fmt.Fprintf(o.Log, "using the synthetic data set of an earlier run in %s\n", o.DataDir)
		return nil
	}
	d := fullData
	if o.Quick {
		d = quickData
	}
	d.Workers, d.Progress = o.Workers, o.pass("synthesising")
	fmt.Fprintf(o.Log, "synthesising %d training, %d validation and %d test cubes of %d slices of %d×%d into %s\n",
		d.Train, d.Val, d.Test, d.Slices, d.Width, d.Height, o.DataDir)
	_, err := synth.Generate(o.DataDir, d)
	return err
}

// recipe returns r as trained: shortened under Quick.
func (o Options) recipe(r Recipe) Recipe {
	if o.Quick && r.Epochs > 0 {
		r.BatchSize, r.Epochs, r.LR = 4, 2, 0.002
	}
	return r
}

// pass returns the report of the passes of one stage; nil when no one
// listens.
func (o Options) pass(stage string) oct.Progress {
	if o.Progress == nil {
		return nil
	}
	return func(what string, done, total int) { o.Progress(stage+": "+what, done, total) }
}

// quickSteps caps the steps of a Quick epoch.
const quickSteps = 6

// trainRow trains a row, or continues its run, and returns the checkpoint
// to evaluate: the best, or the last when no epoch improved.
func trainRow(ctx context.Context, o Options, res Result) (string, error) {
	cfg := train.DefaultConfig()
	cfg.Name, cfg.Loss, cfg.DataDir, cfg.ListDir = res.Name, res.Loss, o.DataDir, o.ListDir
	cfg.OutDir = filepath.Join(res.Dir, "train")
	r := res.Recipe
	cfg.BatchSize, cfg.Epochs, cfg.LR, cfg.LRMode, cfg.Momentum = r.BatchSize, r.Epochs, r.LR, r.LRMode, 0.9
	if r.Step > 0 {
		cfg.Step = r.Step
	}
	cfg.Device, cfg.Seed, cfg.Threads, cfg.Workers = o.Device, o.Seed, o.Threads, o.Workers
	if o.Quick {
		cfg.MaxStepsPerEpoch = quickSteps
	}
	if res.Name == models.NameResNet18 {
		cfg.Pretrained = o.Pretrained
	}
	latest := filepath.Join(cfg.OutDir, train.CheckpointDir, train.LatestName)
	best := filepath.Join(cfg.OutDir, train.CheckpointDir, train.BestName)
	if c, err := models.ReadCheckpoint(latest); err == nil && c.Epoch != nil {
		if int(*c.Epoch) >= cfg.Epochs {
			fmt.Fprintf(o.Log, "%s: trained already (%d epochs in %s)\n", res.Key, *c.Epoch, cfg.OutDir)
			if _, err := os.Stat(best); err == nil {
				return best, nil
			}
			return latest, nil
		}
		cfg.Resume, cfg.Pretrained = latest, ""
		fmt.Fprintf(o.Log, "%s: continuing from epoch %d of %d\n", res.Key, *c.Epoch, cfg.Epochs)
	}
	fmt.Fprintf(o.Log, "training %s (%s, %s): %s, into %s\n", res.Key, res.Model, res.Terms, r, cfg.OutDir)
	began := time.Now()
	sum, err := train.Run(ctx, cfg, &train.EpochLines{W: o.Log, Label: res.Key, Steps: o.pass("training " + res.Key), Epochs: cfg.Epochs})
	if err != nil {
		return "", fmt.Errorf("training %s: %w", res.Key, err)
	}
	if sum.Interrupted {
		return "", fmt.Errorf("training %s: interrupted; run again to continue: %w", res.Key, context.Cause(ctx))
	}
	fmt.Fprintf(o.Log, "%s: trained in %s, best validation %s %s\n", res.Key, time.Since(began).Round(time.Second), sum.Selection, inference.Figure(sum.BestDice))
	return sum.Weights(), nil
}

// score evaluates the predictor of specs on the validation cubes and, when
// there is a test ground truth, on the test cubes, into res.
func score(ctx context.Context, o Options, res *Result, specs []inference.Spec, val []oct.CubeEntry, norm *oct.Normalizer) error {
	p, err := inference.Load(specs, o.Device, inference.Options{})
	if err != nil {
		return err
	}
	defer p.Free()
	nan := math.NaN()
	res.Got = Figures{nan, nan, nan, nan}

	fmt.Fprintf(o.Log, "evaluating %s on %d validation cubes\n", res.Key, len(val))
	ev, err := inference.Evaluate(ctx, p, o.DataDir, val, norm, inference.EvalOptions{Workers: o.Workers,
		Progress: inference.CountCubes(o.pass("evaluating " + res.Key))})
	if err != nil {
		return err
	}
	dir := filepath.Join(res.Dir, "val")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := inference.WriteReport(dir, res.Key, ev, nil); err != nil {
		return err
	}
	s := ev.Summary()
	res.Got.ValDice, res.Got.ValAUC = s.MeanDice, s.MeanPooledAUC
	res.ValScore = submission.Official(ev).Score

	if o.TestTruth == "" {
		return nil
	}
	test, err := oct.ReadTestList(o.ListDir)
	if err != nil {
		return err
	}
	testNorm, err := oct.ReadNormalizer(filepath.Join(o.ListDir, oct.TestInfoFile))
	if err != nil {
		return err
	}
	dir = filepath.Join(res.Dir, "test")
	tasks := p.Tasks()
	fmt.Fprintf(o.Log, "writing the %s submission of %s for %d test cubes into %s\n", tasks, res.Key, len(test), dir)
	if _, err := inference.WriteSubmission(ctx, p, o.DataDir, test, testNorm, dir, inference.SubmitOptions{
		Workers: o.Workers, Volumes: tasks.Has(oct.Segmentation), Detections: tasks.Has(oct.Detection),
		Progress: inference.CountCubes(o.pass("testing " + res.Key)),
	}); err != nil {
		return err
	}
	r, err := submission.Score(dir, o.TestTruth, nil)
	if err != nil {
		return err
	}
	res.Got.TestDice, res.Got.TestAUC = r.AvgSegmentation, r.AvgDetection
	return nil
}
