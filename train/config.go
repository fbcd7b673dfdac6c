package train

import (
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/distributed"
	"github.com/edema/edema/torch/optim"
)

// Optimizer is a run's optimizer, as the original's -o flag spells it.
type Optimizer string

// The optimizers.
const (
	Adam Optimizer = "Adam"
	SGD  Optimizer = "SGD"
)

// Config is a training run's settings. Errors about them are FieldErrors,
// which name the fields, so that a command can name its own flags.
type Config struct {
	Name    string // the network: unet, unet_nested, unet_nested_dilated or resnet18
	DataDir string // DATA_DIR, the data layout of docs/ORIGINAL.md, "Data"
	ListDir string // LIST_DIR, with the list files and info.json
	// OutDir receives checkpoint/, dice_epoch.txt and curves.png; empty
	// means result/<Name>.
	OutDir string

	BatchSize int
	Workers   int // goroutines decoding training slices
	Epochs    int

	Optimizer Optimizer
	// OptimizerLayout is the PyTorch release whose state_dict() layout the
	// checkpoints' "optimizer" entry takes (both releases load either); the
	// zero value is optim.DefaultLayout's, 1.13's.
	OptimizerLayout optim.Layout
	LR              float64
	LRMode          LRMode
	Step            int // step mode: the LR drops tenfold every Step epochs
	Momentum        float64
	WeightDecay     float64
	// Loss is mix_3, mix_33, mix_2 (segmentation alone) or bce (detection
	// alone, the only one for resnet18); the network is trained for, and
	// scored on, the tasks of its loss.
	Loss string

	// Augment is the original's optional geometry augmentation of the
	// training slices (--resize, --random-rotate, --random-scale,
	// --crop-size), off by default as in the published runs.
	Augment oct.Augment

	// Resume continues the run that wrote this checkpoint (see Run).
	Resume string
	// ModelPath gives the initial weights of a new run.
	ModelPath string
	// Pretrained gives resnet18 torchvision's ImageNet weights
	// (resnet18-f37072fd.pth) to start from, all but the classifier's (see
	// models.LoadPretrainedResNet18).
	Pretrained string
	// SaveEveryCheckpoint also keeps checkpoint_EEE.pth.tar of every epoch.
	SaveEveryCheckpoint bool
	// Overwrite lets a new run start in an output folder that holds
	// another run's log or checkpoints, removing them first; without it
	// (and without Resume) such a folder is refused.
	Overwrite bool

	Device torch.Device
	// Precision is the forward pass's arithmetic: float32 (the zero value,
	// as the original) or mixed precision (models.Precision). Under fp16
	// a gradient scaler with torch.amp.GradScaler's defaults scales the
	// loss and skips the steps whose gradients overflow; its state is in
	// the checkpoints, so that a resumed run goes on exactly.
	Precision models.Precision
	// ChannelsLast trains on channels-last weights and batches
	// (models.Model.SetMemoryFormat).
	ChannelsLast bool
	// FastPath computes the transposed convolutions by phases, as
	// evaluation does, in the training steps too
	// (nn.Store.SetPhasedTraining): faster steps on the CPU, with results
	// equal to PyTorch's up to rounding rather than bit for bit. Off by
	// default, so that a run is PyTorch's to the bit. No effect on CUDA.
	FastPath bool
	Seed     uint64
	// MaxStepsPerEpoch caps the training steps of an epoch; 0 runs all.
	MaxStepsPerEpoch int
	// Threads is the number of libtorch threads inside one operation; 0
	// leaves libtorch's setting.
	Threads int

	// Group, when set, makes this process one rank of a data-parallel job
	// (see docs/DISTRIBUTED.md): each rank trains on its shard of every
	// epoch with BatchSize slices a step, the gradients are averaged over
	// the ranks, the validation is sharded by cube, and only rank 0
	// reports to the Observer and writes files. Every rank must be given
	// the same Config otherwise, and read the same data and checkpoints.
	Group *distributed.Group
	// SyncBN, in a job, normalises each training batch with the statistics
	// of every rank's batch together (nn.ConvertSyncBatchNorm), so that a
	// job of N processes trains as one process with N times the batch;
	// without it each rank normalises with its own batch, as
	// DistributedDataParallel does. Alone, a process has nothing to
	// synchronise.
	SyncBN bool
}

// DefaultConfig returns the original script's defaults (those of its
// argparse, not of the published runs: see docs/ORIGINAL.md, "Training recipe"), except the loss: the
// original's default "wce" has no detection term, so mix_3 stands in.
func DefaultConfig() Config {
	return Config{
		BatchSize:   64,
		Workers:     8,
		Epochs:      10,
		Optimizer:   Adam,
		LR:          0.01,
		LRMode:      "step",
		Step:        200,
		Momentum:    0.9,
		WeightDecay: 1e-4,
		Loss:        losses.Mix3,
		Device:      torch.CPU,
		Seed:        1234,
		Threads:     runtime.NumCPU(),
	}
}

// Out returns the output folder: OutDir, or result/<Name> by default.
func (c Config) Out() string {
	if c.OutDir != "" {
		return c.OutDir
	}
	return filepath.Join("result", c.Name)
}

// schedule returns the learning-rate schedule of the run.
func (c Config) schedule() Schedule {
	return Schedule{Mode: c.LRMode, Base: c.LR, Step: c.Step, Epochs: c.Epochs}
}

// Validate checks the settings that need no file, then that the data and
// list folders exist. The first problem is returned, naming its flag.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return fieldErrorf("{Name} is required (one of %s)", strings.Join(models.Names(), ", "))
	case !slices.Contains(models.Names(), c.Name):
		return fieldErrorf("unknown {Name} %q: want one of %s", c.Name, strings.Join(models.Names(), ", "))
	case c.Optimizer != Adam && c.Optimizer != SGD:
		return fieldErrorf("unknown {Optimizer} %q: want Adam or SGD", c.Optimizer)
	case c.OptimizerLayout != optim.PyTorch113 && c.OptimizerLayout != optim.PyTorch2:
		return fieldErrorf("unknown {OptimizerLayout} %s", c.OptimizerLayout)
	case c.BatchSize < 1:
		return fieldErrorf("{BatchSize} must be at least 1, got %d", c.BatchSize)
	case c.Epochs < 1:
		return fieldErrorf("{Epochs} must be at least 1, got %d", c.Epochs)
	case c.Workers < 0:
		return fieldErrorf("{Workers} must not be negative, got %d", c.Workers)
	case !(c.Momentum >= 0):
		return fieldErrorf("{Momentum} must not be negative, got %g", c.Momentum)
	case !(c.WeightDecay >= 0):
		return fieldErrorf("{WeightDecay} must not be negative, got %g", c.WeightDecay)
	case c.MaxStepsPerEpoch < 0:
		return fieldErrorf("{MaxStepsPerEpoch} must not be negative, got %d", c.MaxStepsPerEpoch)
	case c.Threads < 0:
		return fieldErrorf("{Threads} must not be negative, got %d", c.Threads)
	case c.Precision.Check(c.Device) != nil:
		return fieldErrorf("{Precision}: %v", c.Precision.Check(c.Device))
	case c.Resume != "" && c.ModelPath != "":
		return fieldErrorf("{Resume} and {ModelPath} exclude each other: {Resume} continues a run, {ModelPath} starts one from given weights")
	case c.Pretrained != "" && c.Name != models.NameResNet18:
		return fieldErrorf("{Pretrained} is for %s (torchvision's ImageNet weights), not %s", models.NameResNet18, c.Name)
	case c.Pretrained != "" && (c.Resume != "" || c.ModelPath != ""):
		return fieldErrorf("{Pretrained} starts a run from ImageNet weights: it excludes {Resume} and {ModelPath}")
	}
	if _, _, err := c.Augment.OutputSize(16, 16); err != nil {
		return augmentError(err)
	}
	loss, err := losses.New(c.Loss)
	if err != nil {
		return fieldErrorf("{Loss}: %w", err)
	}
	if outputs := models.Outputs(c.Name); !outputs.Has(loss.Tasks()) {
		return fieldErrorf("{Loss} %s trains %s, but %s has outputs for %s only: use {Loss} %s", loss, loss.Tasks(), c.Name, outputs, losses.BCEOnly)
	}
	if err := c.schedule().Validate(); err != nil {
		return err
	}
	if err := isDir("{DataDir}", c.DataDir); err != nil {
		return err
	}
	return isDir("{ListDir}", c.ListDir)
}

// augmentFields are the Config fields of oct.Augment's fields.
var augmentFields = map[oct.Field]string{
	oct.FieldResize: "{Augment.Resize}",
	oct.FieldRotate: "{Augment.Rotate}",
	oct.FieldScale:  "{Augment.Scale}",
	oct.FieldCrop:   "{Augment.Crop}",
}

// augmentError turns an oct.FieldError into a FieldError of Config.
func augmentError(err error) error {
	var fe *oct.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	flags := make([]string, len(fe.Fields))
	for i, f := range fe.Fields {
		flags[i] = augmentFields[f]
	}
	return fieldErrorf("%s: %s", strings.Join(flags, " and "), fe.Msg)
}

func isDir(field, path string) error {
	if path == "" {
		return fieldErrorf("%s is required", field)
	}
	if err := oct.CheckFolder(path); err != nil {
		return fieldErrorf("%s: %w", field, err)
	}
	return nil
}
