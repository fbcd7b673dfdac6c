package train

import (
	"fmt"
	"io"
	"time"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/losses"
	"github.com/edema/edema/metrics"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// Observer follows a run: a progress bar, a log, a service's metrics. Its
// methods are called from the goroutine that runs the training, between
// steps; a slow observer slows the training down.
type Observer interface {
	// Start is called once, before the first step.
	Start(Start)
	// EpochStart is called before the first training step of an epoch
	// (the first one this run takes, for a resumed epoch).
	EpochStart(EpochStart)
	// Step is called after every training step.
	Step(Step)
	// Validate is called when the validation of an epoch begins.
	Validate(epoch int)
	// EpochEnd is called once an epoch is validated, logged and saved.
	EpochEnd(EpochEnd)
}

// NopObserver ignores everything; embed it to implement only some methods.
type NopObserver struct{}

func (NopObserver) Start(Start)           {}
func (NopObserver) EpochStart(EpochStart) {}
func (NopObserver) Step(Step)             {}
func (NopObserver) Validate(int)          {}
func (NopObserver) EpochEnd(EpochEnd)     {}

// Start describes a run about to train.
type Start struct {
	Network    string
	Parameters int64
	Device     torch.Device
	Loss       string
	Optimizer  Optimizer

	TrainSlices int
	ValCubes    int
	BatchSize   int // per process
	// Processes is the number of ranks of a data-parallel job, 1 alone;
	// StepsPerEpoch are each rank's.
	Processes     int
	StepsPerEpoch int
	Epochs        int

	// Epoch and Step are where training begins: 0 and 0 for a new run.
	Epoch, Step int
	// Resumed is the checkpoint a resumed run continues, or "".
	Resumed string
	// FreshOptimizer is set when the resumed checkpoint held no optimizer
	// state (the original's checkpoints do not), so the optimizer starts
	// afresh and the continuation is not exact.
	FreshOptimizer bool
	OutDir         string
	// Notes says, one line each, what claiming the output folder cleaned
	// up: a lock of an ended run taken over, its temporary files removed,
	// the files of an earlier run replaced under Config.Overwrite.
	Notes []string
}

// EpochStart says which steps of an epoch are about to run.
type EpochStart struct {
	Epoch int
	// Done counts the steps done before this run: 0 unless the epoch
	// resumes an interrupted one.
	Done, Steps int
	LR          float64
}

// Step is the progress after one training step.
type Step struct {
	Epoch, Step, Steps int // Step counts from 1 to Steps
	LR                 float64
	Loss               losses.Values
	// MeanLoss and Dice are running figures of the epoch so far: the mean
	// loss and the per-class Dice of the argmax predictions.
	MeanLoss float64
	Dice     metrics.PerLesion
	MeanDice float64
	// Elapsed is the training time of the epoch so far (this session's
	// part of it for a resumed epoch).
	Elapsed time.Duration
}

// EpochEnd reports a finished epoch.
type EpochEnd struct {
	Row  Row  // what dice_epoch.txt got
	Best bool // the validation Dice improved: model_best.pth.tar was updated
	// Checkpoint is the path of checkpoint_latest.pth.tar.
	Checkpoint       string
	Train, Validated time.Duration
	// Communication is the part of Train that this rank of a job spent in
	// collectives (the gradients' all-reduce, the buffers' broadcast, the
	// agreement to go on), waiting for its peers included; 0 alone.
	Communication time.Duration
}

// EpochLines is an Observer for a pipeline that trains several networks in
// turn: it reports every step to Steps (a pass "epoch E/N, steps"; nil for
// none) and writes a line per epoch, starting with Label, to W.
type EpochLines struct {
	NopObserver
	W      io.Writer
	Label  string
	Steps  oct.Progress
	Epochs int
}

func (l *EpochLines) Step(s Step) {
	if l.Steps != nil {
		l.Steps(fmt.Sprintf("epoch %d/%d, steps", s.Epoch+1, l.Epochs), s.Step, s.Steps)
	}
}

func (l *EpochLines) EpochEnd(e EpochEnd) {
	row := e.Row
	fmt.Fprintf(l.W, "  %s epoch %d/%d: train loss %.4f, validation Dice %s (%s), AUC %s, %s\n", l.Label, row.Epoch+1, l.Epochs,
		row.TrainLoss, inference.Figure(row.ValDice), inference.PerLesion(row.ValClassDice), inference.Figure(row.AUC),
		(e.Train + e.Validated).Round(time.Second))
}
