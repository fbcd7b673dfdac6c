package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// The optimizers, as the original's -o flag spells them.
const (
	Adam = "Adam"
	SGD  = "SGD"
)

// Config is a training run: the flags of `edema train`. Errors about it
// name the flags, so that the command can print them as they are.
type Config struct {
	Name    string // the network: unet, unet_nested or unet_nested_dilated
	DataDir string // DATA_DIR, the data layout of docs/ORIGINAL.md, "Data"
	ListDir string // LIST_DIR, with the list files and info.json
	// OutDir receives checkpoint/, dice_epoch.txt and curves.png; empty
	// means result/<Name>.
	OutDir string

	BatchSize int
	Workers   int // goroutines decoding training slices
	Epochs    int

	Optimizer   string // Adam or SGD
	LR          float64
	LRMode      string // step or poly
	Step        int    // step mode: the LR drops tenfold every Step epochs
	Momentum    float64
	WeightDecay float64
	Loss        string // mix_3 or mix_33

	// Augment is the original's optional geometry augmentation of the
	// training slices (--resize, --random-rotate, --random-scale,
	// --crop-size), off by default as in the published runs.
	Augment oct.Augment

	// Resume continues the run that wrote this checkpoint (see Run).
	Resume string
	// ModelPath gives the initial weights of a new run.
	ModelPath string
	// SaveEveryCheckpoint also keeps checkpoint_EEE.pth.tar of every epoch.
	SaveEveryCheckpoint bool
	// Overwrite lets a new run start in an output folder that holds
	// another run's log or checkpoints, removing them first; without it
	// (and without Resume) such a folder is refused.
	Overwrite bool

	Device torch.Device
	Seed   uint64
	// MaxStepsPerEpoch caps the training steps of an epoch; 0 runs all.
	MaxStepsPerEpoch int
	// Threads is the number of libtorch threads inside one operation; 0
	// leaves libtorch's setting.
	Threads int
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
		return fmt.Errorf("--name is required (one of %s)", strings.Join(models.Names(), ", "))
	case !slices.Contains(models.Names(), c.Name):
		return fmt.Errorf("unknown --name %q: want one of %s", c.Name, strings.Join(models.Names(), ", "))
	case c.Optimizer != Adam && c.Optimizer != SGD:
		return fmt.Errorf("unknown --optimizer %q: want Adam or SGD", c.Optimizer)
	case c.BatchSize < 1:
		return fmt.Errorf("--batch-size must be at least 1, got %d", c.BatchSize)
	case c.Epochs < 1:
		return fmt.Errorf("--epochs must be at least 1, got %d", c.Epochs)
	case c.Workers < 0:
		return fmt.Errorf("--workers must not be negative, got %d", c.Workers)
	case !(c.Momentum >= 0):
		return fmt.Errorf("--momentum must not be negative, got %g", c.Momentum)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("--weight-decay must not be negative, got %g", c.WeightDecay)
	case c.MaxStepsPerEpoch < 0:
		return fmt.Errorf("--max-steps-per-epoch must not be negative, got %d", c.MaxStepsPerEpoch)
	case c.Threads < 0:
		return fmt.Errorf("--threads must not be negative, got %d", c.Threads)
	case c.Resume != "" && c.ModelPath != "":
		return errors.New("--resume and --model-path exclude each other: --resume continues a run, --model-path starts one from given weights")
	}
	if _, _, err := c.Augment.OutputSize(16, 16); err != nil {
		return augmentError(err)
	}
	if _, err := losses.New(c.Loss); err != nil {
		return fmt.Errorf("--loss: %w", err)
	}
	if err := c.schedule().Validate(); err != nil {
		return err
	}
	if err := isDir("--data-dir", c.DataDir); err != nil {
		return err
	}
	return isDir("--list-dir", c.ListDir)
}

// augmentFlags are the flags of the fields of oct.Augment.
var augmentFlags = map[oct.Field]string{
	oct.FieldResize: "--resize",
	oct.FieldRotate: "--random-rotate",
	oct.FieldScale:  "--random-scale",
	oct.FieldCrop:   "--crop-size",
}

// augmentError names the flags of an oct.FieldError.
func augmentError(err error) error {
	var fe *oct.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	flags := make([]string, len(fe.Fields))
	for i, f := range fe.Fields {
		flags[i] = augmentFlags[f]
	}
	return fmt.Errorf("%s: %s", strings.Join(flags, " and "), fe.Msg)
}

func isDir(flag, path string) error {
	if path == "" {
		return fmt.Errorf("%s is required", flag)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %s is not a folder", flag, path)
	}
	return nil
}
