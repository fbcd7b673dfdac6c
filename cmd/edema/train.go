package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/optim"
	"github.com/edema/edema/train"
)

// trainCommand trains a network as the original training script does.
func trainCommand() *cli.Command {
	def := train.DefaultConfig()
	return &cli.Command{
		Name:  "train",
		Usage: "train a network on a data folder, validating, logging and checkpointing every epoch",
		Description: "Trains --name on the slices of LIST_DIR/train_images.txt and validates every epoch on the\n" +
			"cubes of val_images.txt, as the original train.py does. OUT (default result/NAME) receives\n" +
			"checkpoint/checkpoint_latest.pth.tar after every epoch, checkpoint/model_best.pth.tar when\n" +
			"the validation Dice improves, dice_epoch.txt (one row per epoch) and curves.png; the\n" +
			"checkpoints load in PyTorch as the original's do.\n\n" +
			"Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves checkpoint_latest.pth.tar and\n" +
			"exits; --resume on it continues exactly where it stopped, inside the epoch too.\n\n" +
			"The published recipes (docs/ORIGINAL.md): UNet++: --name unet_nested --loss mix_33 --lr 0.001\n" +
			"--lr-mode poly --batch-size 16 --epochs 100; UNet: --name unet --loss mix_3 --lr 0.001\n" +
			"--lr-mode step --step 20 --batch-size 32 --epochs 100.\n\n" +
			"Augmentation, as the original's flags (off in the published runs): --resize, --random-rotate,\n" +
			"--random-scale and --crop-size apply in this order, before the random horizontal flip; padding\n" +
			"is ignored by the loss. See docs/TRAINING.md.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "name", Required: true, Usage: "network: " + strings.Join(models.Names(), " | ")},
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Required: true, Usage: "DATA_DIR, the data folder"},
			&cli.StringFlag{Name: "list-dir", Aliases: []string{"l"}, Required: true, Usage: "LIST_DIR, with the list files and info.json (edema synth writes DATA_DIR/data_path)"},
			&cli.StringFlag{Name: "out", Usage: "output folder (default: result/NAME)"},
			&cli.IntFlag{Name: "batch-size", Value: def.BatchSize, Usage: "training slices per step"},
			&cli.IntFlag{Name: "workers", Aliases: []string{"j"}, Value: def.Workers, Usage: "goroutines reading slices"},
			&cli.IntFlag{Name: "epochs", Value: def.Epochs, Usage: "epochs to train"},
			&cli.StringFlag{Name: "optimizer", Aliases: []string{"o"}, Value: string(def.Optimizer), Usage: "Adam (betas 0.9, 0.99) | SGD"},
			&cli.StringFlag{Name: "optimizer-layout", Value: "1.13", Usage: "layout of the optimizer state in checkpoints: that of PyTorch 1.13 | 2 (both load either)"},
			&cli.Float64Flag{Name: "lr", Value: def.LR, Usage: "initial learning rate"},
			&cli.StringFlag{Name: "lr-mode", Value: string(def.LRMode), Usage: "learning-rate schedule: step (lr·0.1^(epoch // step)) | poly (lr·(1 − epoch/epochs)^0.9)"},
			&cli.IntFlag{Name: "step", Value: def.Step, Usage: "epochs between tenfold drops of the learning rate (--lr-mode step)"},
			&cli.Float64Flag{Name: "momentum", Value: def.Momentum, Usage: "SGD momentum"},
			&cli.Float64Flag{Name: "weight-decay", Aliases: []string{"wd"}, Value: def.WeightDecay, Usage: "L2 weight decay"},
			&cli.StringFlag{Name: "loss", Value: def.Loss, Usage: "mix_3 (WCE + Dice + BCE) | mix_33 (WCE + exp-log Dice + BCE) | mix_2 (WCE + Dice: segmentation alone) | bce (detection alone, for resnet18); the original's default, wce, has no detection term, hence mix_3"},
			&cli.StringFlag{Name: "resume", Usage: "continue the run of this checkpoint (checkpoint_latest.pth.tar)"},
			&cli.StringFlag{Name: "model-path", Usage: "initial weights (a checkpoint of the same network)"},
			&cli.StringFlag{Name: "pretrained", Usage: "resnet18: start from torchvision's ImageNet weights (resnet18-f37072fd.pth), all but the classifier"},
			&cli.BoolFlag{Name: "save-every-checkpoint", Usage: "also keep checkpoint/checkpoint_EEE.pth.tar of every epoch"},
			&cli.BoolFlag{Name: "overwrite", Usage: "start a new run in an --out that holds another run's log or checkpoints, removing them"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu | cuda | cuda:N"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "random seed of the initial weights, data order, flips and dropout"},
			&cli.IntFlag{Name: "max-steps-per-epoch", Usage: "train at most this many steps an epoch (0: all), for quick runs"},
			&cli.IntFlag{Name: "threads", Value: runtime.NumCPU(), Usage: "libtorch threads inside one operation"},
			&cli.IntFlag{Name: "resize", Usage: "resize every training slice and its label to N×N (0: off)"},
			&cli.IntFlag{Name: "random-rotate", Usage: "rotate every training slice by a random whole angle in [−A, A] degrees (0: off)"},
			&cli.Float64Flag{Name: "random-scale", Usage: "scale every training slice by a random ratio in [1/S, S] (0: off; needs --crop-size)"},
			&cli.IntFlag{Name: "crop-size", Aliases: []string{"s"}, Usage: "train on random C×C crops, padding smaller slices (0: off)"},
			&cli.BoolFlag{Name: "sync-bn", Usage: "in a job of several processes, normalise batches with the statistics of all the ranks' batches together (SyncBatchNorm)"},
			ampFlag(),
			channelsLastFlag(),
			&cli.BoolFlag{Name: "fast-path", Usage: "compute the transposed convolutions by phases, as evaluation does: faster steps on the CPU (see docs/BENCHMARKS.md), equal to PyTorch's up to rounding instead of bit for bit"},
		}, jobFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("train: unexpected argument %q", c.Args().First())
			}
			device, err := torch.ParseDevice(c.String("device"))
			if err != nil {
				return fmt.Errorf("train: --device: %w", err)
			}
			precision, err := models.ParsePrecision(c.String("amp"))
			if err != nil {
				return &usageErr{fmt.Errorf("train: --amp: %w", err)}
			}
			layout, ok := optimizerLayouts[c.String("optimizer-layout")]
			if !ok {
				return &usageErr{fmt.Errorf("train: --optimizer-layout %q: want 1.13 or 2", c.String("optimizer-layout"))}
			}
			cfg := train.Config{
				OptimizerLayout: layout,
				Name:            c.String("name"), DataDir: c.String("data-dir"), ListDir: c.String("list-dir"), OutDir: c.String("out"),
				BatchSize: c.Int("batch-size"), Workers: c.Int("workers"), Epochs: c.Int("epochs"),
				Optimizer: train.Optimizer(c.String("optimizer")), LR: c.Float64("lr"), LRMode: train.LRMode(c.String("lr-mode")), Step: c.Int("step"),
				Momentum: c.Float64("momentum"), WeightDecay: c.Float64("weight-decay"), Loss: c.String("loss"),
				Resume: c.String("resume"), ModelPath: c.String("model-path"), Pretrained: c.String("pretrained"), SaveEveryCheckpoint: c.Bool("save-every-checkpoint"), Overwrite: c.Bool("overwrite"),
				Device: device, Precision: precision, ChannelsLast: c.Bool("channels-last"), FastPath: c.Bool("fast-path"), Seed: c.Uint64("seed"), MaxStepsPerEpoch: c.Int("max-steps-per-epoch"), Threads: c.Int("threads"),
				SyncBN: c.Bool("sync-bn"),
				Augment: oct.Augment{
					Resize: c.Int("resize"), Rotate: c.Int("random-rotate"), Scale: c.Float64("random-scale"), Crop: c.Int("crop-size"),
				},
			}
			j, err := joinJob(c, "train")
			if err != nil || j.launched {
				return err
			}
			defer j.close()
			cfg.Group, cfg.Threads, cfg.Device = j.group, j.threads(c), j.device(device, c.String("device"))
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			finished := make(chan struct{})
			defer close(finished)
			go func() {
				select {
				case <-ctx.Done():
					select {
					case <-finished:
						return
					default:
					}
					// A second signal ends the process at once.
					stop()
					if j.rank0() {
						fmt.Fprintln(c.App.ErrWriter, "\nedema train: stopping after the current step and saving (signal again to quit at once)")
					}
				case <-finished:
				}
			}()
			if err := runTraining(ctx, cfg, j.output(c.App.Writer), isTerminal(c.App.Writer) && j.rank0()); err != nil {
				return fmt.Errorf("train: %w", withFlagNames(err))
			}
			return nil
		},
	}
}

// trainFlags are the flags of train.Config's fields, for the messages of
// train.FieldError, which name the fields.
var trainFlags = map[string]string{
	"Name": "--name", "DataDir": "--data-dir", "ListDir": "--list-dir", "OutDir": "--out",
	"BatchSize": "--batch-size", "Workers": "--workers", "Epochs": "--epochs",
	"Optimizer": "--optimizer", "OptimizerLayout": "--optimizer-layout", "LR": "--lr", "LRMode": "--lr-mode", "Step": "--step",
	"Momentum": "--momentum", "WeightDecay": "--weight-decay", "Loss": "--loss",
	"Resume": "--resume", "ModelPath": "--model-path", "Pretrained": "--pretrained", "SaveEveryCheckpoint": "--save-every-checkpoint",
	"Overwrite": "--overwrite", "Device": "--device", "Precision": "--amp", "ChannelsLast": "--channels-last", "FastPath": "--fast-path", "Seed": "--seed",
	"MaxStepsPerEpoch": "--max-steps-per-epoch", "Threads": "--threads",
	"Augment.Resize": "--resize", "Augment.Rotate": "--random-rotate",
	"Augment.Scale": "--random-scale", "Augment.Crop": "--crop-size",
}

func trainFlag(field string) string { return trainFlags[field] }

// optimizerLayouts are the values of --optimizer-layout.
var optimizerLayouts = map[string]optim.Layout{"1.13": optim.PyTorch113, "2": optim.PyTorch2}

// withFlagNames writes an error that holds a train.FieldError, wrapped
// or not, with the flags of the fields its message names.
func withFlagNames(err error) error {
	var fe *train.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	return errors.New(strings.Replace(err.Error(), fe.Error(), fe.Named(trainFlag), 1))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runTraining runs cfg, reporting to w with a progress bar on a terminal
// and plain lines otherwise.
func runTraining(ctx context.Context, cfg train.Config, w io.Writer, terminal bool) error {
	r := &trainReport{w: w, terminal: terminal}
	sum, err := train.Run(ctx, cfg, r)
	r.closeBar()
	if err != nil {
		return err
	}
	if sum.Interrupted {
		fmt.Fprintf(w, "interrupted at epoch %d, step %d of %d: the state is saved in %s; continue with --resume %s\n",
			sum.Epoch+1, sum.Step, r.start.StepsPerEpoch, sum.Checkpoint, sum.Checkpoint)
		return errInterrupted // exit status 130, the message said above
	}
	fmt.Fprintf(w, "done: %d epochs; best validation %s %s", len(sum.Rows), sum.Selection, figure(sum.BestDice))
	if sum.Best != "" {
		fmt.Fprintf(w, " (%s)", sum.Best)
	}
	fmt.Fprintln(w)
	return nil
}

// trainReport shows a run's progress.
type trainReport struct {
	w        io.Writer
	terminal bool
	start    train.Start
	bar      *progressbar.ProgressBar
	first    int // steps of the current epoch done before this run
}

func (r *trainReport) Start(s train.Start) {
	r.start = s
	for _, note := range s.Notes {
		fmt.Fprintln(r.w, "note:", train.Named(note, trainFlag))
	}
	on := s.Device.String()
	if s.Processes > 1 {
		on = fmt.Sprintf("%d processes (rank 0 on %s), each taking", s.Processes, s.Device)
	}
	fmt.Fprintf(r.w, "training %s (%d parameters) on %s: loss %s, %s; %d slices, %d steps of %d an epoch; %d validation cubes; output %s\n",
		s.Network, s.Parameters, on, s.Loss, s.Optimizer, s.TrainSlices, s.StepsPerEpoch,
		s.BatchSize, s.ValCubes, s.OutDir)
	if s.Resumed != "" {
		fmt.Fprintf(r.w, "resuming %s at epoch %d, step %d\n", s.Resumed, s.Epoch+1, s.Step)
		if s.FreshOptimizer {
			fmt.Fprintf(r.w, "warning: %s holds no optimizer state; the optimizer starts afresh\n", s.Resumed)
		}
	}
}

func (r *trainReport) EpochStart(e train.EpochStart) {
	r.first = e.Done
	if r.terminal {
		r.bar = newProgressBar(r.w, e.Steps-e.Done, fmt.Sprintf("epoch %d/%d", e.Epoch+1, r.start.Epochs), "steps")
	}
}

func (r *trainReport) Step(s train.Step) {
	desc := fmt.Sprintf("epoch %d/%d loss %.4f Dice %s", s.Epoch+1, r.start.Epochs, s.MeanLoss, figure(s.MeanDice))
	if r.bar != nil {
		r.bar.Describe(desc)
		r.bar.Set(s.Step - r.first)
		return
	}
	// Plain lines: about ten an epoch, and the last step.
	every := max(1, s.Steps/10)
	if s.Step%every != 0 && s.Step != s.Steps {
		return
	}
	rate := float64(s.Step-r.first) / s.Elapsed.Seconds()
	eta := time.Duration(float64(s.Steps-s.Step) / rate * float64(time.Second))
	fmt.Fprintf(r.w, "%s step %d/%d (%.2f steps/s, ETA %s)\n", desc, s.Step, s.Steps, rate, eta.Round(time.Second))
}

func (r *trainReport) Validate(epoch int) {
	r.closeBar()
	if !r.terminal {
		fmt.Fprintf(r.w, "epoch %d/%d: validating\n", epoch+1, r.start.Epochs)
	}
}

func (r *trainReport) EpochEnd(e train.EpochEnd) {
	row := e.Row
	fmt.Fprintf(r.w, "epoch %d/%d: lr %.3g, train loss %.4f, Dice %s | validation Dice %s (%s), AUC %s (%s) | %s + %s",
		row.Epoch+1, r.start.Epochs, row.LR, row.TrainLoss, figure(row.TrainDice),
		figure(row.ValDice), perLesion(row.ValClassDice), figure(row.AUC), perLesion(row.ClassAUC),
		e.Train.Round(time.Second), e.Validated.Round(time.Second))
	if slices := r.start.StepsPerEpoch * r.start.BatchSize * max(r.start.Processes, 1); e.Train > 0 && r.first == 0 {
		fmt.Fprintf(r.w, " | %.2f slices/s", float64(slices)/e.Train.Seconds())
	}
	if e.Communication > 0 && e.Train > 0 {
		fmt.Fprintf(r.w, " | communication %.1f%% of training", 100*e.Communication.Seconds()/e.Train.Seconds())
	}
	if e.Best {
		fmt.Fprint(r.w, " | best so far")
	}
	fmt.Fprintln(r.w)
}

func (r *trainReport) closeBar() {
	if r.bar != nil {
		r.bar.Finish()
		fmt.Fprintln(r.w)
		r.bar = nil
	}
}

func figure(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}

func perLesion(p [oct.NumLesions]float64) string {
	parts := make([]string, len(p))
	for i, v := range p {
		parts[i] = oct.LesionNames[i] + " " + figure(v)
	}
	return strings.Join(parts, ", ")
}
