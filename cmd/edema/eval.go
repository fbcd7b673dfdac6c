package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/outdir"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/submission"
	"github.com/edema/edema/torch"
)

// evalCommand scores a network or a fusion on the validation cubes, as the
// original eval.py does, and with the challenge's official scoring.
func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "score a network or a fusion on the validation cubes: Dice, detection AUC and the official score",
		Description: "Predicts every cube of LIST_DIR/val_images.txt (normalised with info.json) with one network\n" +
			"(--seg-name, --seg-path) or a fusion (--fusion), and prints per cube and in all the Dice per\n" +
			"class (REA, SRF, PED), the detection AUC pooled over all slices as the original eval.py does,\n" +
			"and the challenge's official figures (the same pooled AUC): avg_detection, avg_segmentation, score.\n" +
			"OUT (default result/eval/NAME, or result/eval/fusion) receives dice_epoch.txt (the original's\n" +
			"columns), cubes.tsv (per cube), score.txt (official), roc.png and report.html (all of them\n" +
			"in one self-contained page, with the slices of lowest Dice per class); with --vis, also\n" +
			"vis/<cube %04d>/<slice %03d>.png: the slice, the prediction and the ground truth side by side\n" +
			"(REA blue, SRF green, PED red, half transparent; --opaque paints them in full colour as the\n" +
			"original did), titled, with a colour key and the slice's Dice and detection probabilities;\n" +
			"slices under 512 pixels high are scaled up.\n\n" +
			"--fusion alone fuses result/unet_nested/checkpoint/model_best.pth.tar and\n" +
			"result/unet/checkpoint/model_best.pth.tar at 0.5 each (what `edema train` writes by default);\n" +
			"--fusion-model NAME=PATH:WEIGHT, repeated, chooses the networks and weights (summing to 1).\n" +
			"Checkpoints may be the original's or ours, in any PyTorch format or safetensors.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Required: true, Usage: "DATA_DIR, the data folder"},
			&cli.StringFlag{Name: "list-dir", Aliases: []string{"l"}, Required: true, Usage: "LIST_DIR, with val_images.txt, val_labels.txt and info.json"},
			&cli.StringFlag{Name: "out", Usage: "output folder (default: result/eval/NAME or result/eval/fusion)"},
			&cli.BoolFlag{Name: "vis", Usage: "also write a picture of every slice (roc.png is always written for a network that detects)"},
			&cli.BoolFlag{Name: "opaque", Usage: "paint the lesions of the slice pictures in full colour, as the original did (default: half transparent)"},
			jsonFlag(),
			workersFlag(),
		}, append(predictorFlags(), jobFlags()...)...),
		Action: func(c *cli.Context) error {
			if err := runEval(c); err != nil {
				return fmt.Errorf("eval: %w", err)
			}
			return nil
		},
	}
}

func runEval(c *cli.Context) error {
	job, err := newPredictionJob(c, "eval", oct.ReadValList, oct.InfoFile)
	if err != nil || job == nil {
		return err
	}
	defer job.close()
	cubes, norm, p, out := job.cubes, job.norm, job.p, job.out
	// Results on stdout; what eval says while it works on stderr; in a
	// job, rank 0 alone speaks and writes the report.
	w, status := job.dist.output(c.App.Writer), job.dist.output(c.App.ErrWriter)
	progress := newCubeProgress(status, "evaluating", job.share(len(cubes)))
	opts := inference.EvalOptions{Workers: c.Int("workers"), Progress: progress.done, Group: job.dist.group,
		Worst: &inference.WorstSlices{K: inference.DefaultWorstSlices}, Opaque: c.Bool("opaque")}
	if c.Bool("vis") {
		opts.VisDir = filepath.Join(out, "vis")
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(status, "evaluating %s on %d validation cubes (%s, batch %d)\n", p, len(cubes), p.Device(), p.Options().BatchSize)
	ev, err := inference.Evaluate(ctx, p, c.String("data-dir"), cubes, norm, opts)
	progress.close()
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(status, "eval: interrupted")
		return errInterrupted
	}
	if err != nil {
		return err
	}
	if !job.dist.rank0() {
		return nil
	}
	if err := inference.WriteReport(out, p.String(), ev, opts.Worst); err != nil {
		return err
	}
	if c.Bool("json") {
		err = writeJSONTo(w, newScoreJSON(submission.Official(ev)))
	} else {
		err = inference.WriteSummary(w, ev)
	}
	if err != nil {
		return err
	}
	files := []string{filepath.Join(out, inference.LogName), inference.CubesName, inference.ScoreName}
	if !ev.Absent.Has(oct.Detection) { // no ROC of no detection
		files = append(files, inference.ROCName)
	}
	fmt.Fprintf(status, "wrote %s and %s", strings.Join(files, ", "), inference.ReportName)
	if opts.VisDir != "" {
		fmt.Fprintf(status, "; slice pictures in %s", opts.VisDir)
	}
	fmt.Fprintln(status)
	return nil
}

// predictorFlags choose and tune the networks of eval and test.
func predictorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "seg-name", Usage: "network of --seg-path: " + strings.Join(models.Names(), " | ")},
		&cli.StringFlag{Name: "seg-path", Usage: "checkpoint of the network (the original's or ours, any PyTorch format or safetensors)"},
		&cli.BoolFlag{Name: "fusion", Usage: "fuse networks (default: UNet++ and UNet, 0.5 each, from result/<name>/checkpoint/model_best.pth.tar)"},
		&cli.StringSliceFlag{Name: "fusion-model", Usage: "a network of the fusion as NAME=PATH:WEIGHT (repeat it; the weights sum to 1)"},
		&cli.StringFlag{Name: "tta", Value: string(inference.NoTTA), Usage: "test-time augmentation: none | flip (average with the mirrored slice)"},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu | cuda | cuda:N"},
		&cli.IntFlag{Name: "batch-size", Value: models.DefaultBatchSize, Usage: "slices per forward pass"},
		&cli.IntFlag{Name: "in-flight", Value: 1, Usage: "batches of a cube predicted at once, each on its own goroutine (with --threads 1 and as many batches as cores, see docs/BENCHMARKS.md)"},
		ampFlag(),
		layoutFlag(),
	}
}

// channelsLastFlag lays the networks out channels last in training,
// where it is off unless given.
func channelsLastFlag() cli.Flag {
	return &cli.BoolFlag{Name: "channels-last", Usage: "train on channels-last (N×H×W×C) weights and batches: for GPUs' tensor cores; slower on a CPU (see docs/BENCHMARKS.md)"}
}

// layoutFlag lays the networks out channels last or not for inference,
// where the default depends on the device (inference.DefaultLayout).
func layoutFlag() cli.Flag {
	return &cli.BoolFlag{Name: "channels-last", Usage: "run the convolutions on channels-last (N×H×W×C) data (default: on the CPU, where the evaluation fast path is faster so, see docs/BENCHMARKS.md; --channels-last=false turns it off)"}
}

// layoutFromFlags returns the layout that layoutFlag asks for.
func layoutFromFlags(c *cli.Context) inference.Layout {
	switch {
	case !c.IsSet("channels-last"):
		return inference.DefaultLayout
	case c.Bool("channels-last"):
		return inference.ChannelsLast
	}
	return inference.Contiguous
}

// ampFlag chooses the forward pass's precision (models.Precision).
func ampFlag() cli.Flag {
	return &cli.StringFlag{Name: "amp", Value: "fp32", Usage: "precision of the forward passes: fp32 | bf16 | fp16 (automatic mixed precision, torch.autocast's; fp16 on CUDA only)"}
}

// precisionFromFlags reads --amp for a run on device.
func precisionFromFlags(c *cli.Context, device torch.Device) (models.Precision, error) {
	p, err := models.ParsePrecision(c.String("amp"))
	if err == nil {
		err = p.Check(device)
	}
	if err != nil {
		return "", fmt.Errorf("--amp: %w", err)
	}
	return p, nil
}

// predictorFromFlags loads what predictorFlags chose and returns it with a
// name for its output folder: the network's, or "fusion", with "_flip"
// under --tta flip.
func predictorFromFlags(c *cli.Context) (*inference.Predictor, string, error) {
	specs, label, err := specsFromFlags(c)
	if err != nil {
		return nil, "", err
	}
	tta, err := inference.ParseTTA(c.String("tta"))
	if err != nil {
		return nil, "", fmt.Errorf("--tta: %w", err)
	}
	if tta != inference.NoTTA {
		label += "_" + string(tta)
	}
	device, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return nil, "", fmt.Errorf("--device: %w", err)
	}
	if c.Int("batch-size") < 1 {
		return nil, "", fmt.Errorf("--batch-size must be at least 1, got %d", c.Int("batch-size"))
	}
	if c.Int("in-flight") < 1 {
		return nil, "", fmt.Errorf("--in-flight must be at least 1, got %d", c.Int("in-flight"))
	}
	precision, err := precisionFromFlags(c, device)
	if err != nil {
		return nil, "", err
	}
	p, err := inference.Load(specs, device, inference.Options{BatchSize: c.Int("batch-size"), TTA: tta, InFlight: c.Int("in-flight"), Precision: precision, Layout: layoutFromFlags(c)})
	if err != nil {
		return nil, "", err
	}
	return p, label, nil
}

// specsFromFlags reads --seg-name and --seg-path, or --fusion and
// --fusion-model.
func specsFromFlags(c *cli.Context) ([]inference.Spec, string, error) {
	name, path := c.String("seg-name"), c.String("seg-path")
	members := c.StringSlice("fusion-model")
	if !c.Bool("fusion") {
		switch {
		case len(members) > 0:
			return nil, "", errors.New("--fusion-model needs --fusion")
		case name == "" && path == "":
			return nil, "", errors.New("choose a network with --seg-name and --seg-path, or --fusion")
		case name == "":
			return nil, "", fmt.Errorf("--seg-path needs --seg-name (one of %s)", strings.Join(models.Names(), ", "))
		case path == "":
			return nil, "", errors.New("--seg-name needs --seg-path, the network's checkpoint")
		}
		return []inference.Spec{{Name: name, Checkpoint: path, Weight: 1}}, name, nil
	}
	if name != "" || path != "" {
		return nil, "", errors.New("--fusion excludes --seg-name and --seg-path (name the fusion's networks with --fusion-model NAME=PATH:WEIGHT)")
	}
	if len(members) == 0 {
		specs := inference.DefaultFusion("")
		for _, s := range specs {
			if _, err := os.Stat(s.Checkpoint); err != nil {
				return nil, "", fmt.Errorf("--fusion: the default fusion needs %s, which is missing (train it with `edema train --name %s`, or name the networks with --fusion-model NAME=PATH:WEIGHT)", s.Checkpoint, s.Name)
			}
		}
		return specs, "fusion", nil
	}
	specs := make([]inference.Spec, len(members))
	for i, m := range members {
		s, err := inference.ParseSpec(m)
		if err != nil {
			return nil, "", fmt.Errorf("--fusion-model: %w", err)
		}
		specs[i] = s
	}
	return specs, "fusion", nil
}

// readNormalizer reads the statistics of info.json or info_test.json.
// predictionJob is what eval and test both start from: the cubes of a
// list, the normaliser of the list's info file, the predictor the flags
// name and the output folder.
type predictionJob struct {
	dist  job // the job of processes this one belongs to, if any
	cubes []oct.CubeEntry
	norm  *oct.Normalizer
	p     *inference.Predictor
	out   string // --out, or result/<command>/<network or fusion>
	claim *outdir.Claim
}

// close frees the predictor, releases the output folder and leaves the
// job.
func (j *predictionJob) close() {
	j.p.Free()
	j.claim.Release()
	j.dist.close()
}

// newPredictionJob reads them for command (eval or test), with readList
// and infoFile the command's list and info file, and claims the output
// folder once every input is valid, so that nothing is created before.
// With --nproc-per-node N > 1 it starts the N processes that do the work
// instead and returns a nil job once they are done. The caller closes the
// job.
func newPredictionJob(c *cli.Context, command string, readList func(string) ([]oct.CubeEntry, error), infoFile string) (*predictionJob, error) {
	if c.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	if err := oct.CheckFolder(c.String("data-dir")); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	listDir := c.String("list-dir")
	cubes, err := readList(listDir)
	if err != nil {
		return nil, err
	}
	norm, err := oct.ReadNormalizer(filepath.Join(listDir, infoFile))
	if err != nil {
		return nil, err
	}
	if _, _, err := specsFromFlags(c); err != nil {
		return nil, err // before any process is started
	}
	dist, err := joinJob(c, command)
	if err != nil || dist.launched {
		return nil, err
	}
	if n := dist.threads(c); n > 0 {
		torch.SetNumThreads(n)
	}
	p, label, err := predictorFromFlags(c)
	if err != nil {
		if g := dist.group; g != nil {
			_, _ = g.AllGatherResults(nil, err) // the others learn it too
		}
		dist.close()
		return nil, err
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Join("result", command, label)
	}
	var claim *outdir.Claim
	if dist.rank0() {
		// The other ranks of a job write only their cubes' files, into
		// the folder rank 0 holds.
		if claim, err = outdir.Acquire(out); err != nil {
			err = fmt.Errorf("--out: %w", err)
		}
	}
	if g := dist.group; g != nil {
		// Every rank learns whether all could start before any writes a
		// file: rank 0's claim of the folder comes first.
		if _, gerr := g.AllGatherResults(nil, err); gerr != nil && err == nil {
			err = gerr
		}
	}
	if err != nil {
		p.Free()
		claim.Release()
		dist.close()
		return nil, err
	}
	if claim != nil {
		for _, note := range claim.Notes {
			fmt.Fprintln(c.App.ErrWriter, "note:", note)
		}
	}
	return &predictionJob{dist: dist, cubes: cubes, norm: norm, p: p, out: out, claim: claim}, nil
}

// share is the number of the n cubes this process predicts.
func (j *predictionJob) share(n int) int {
	if j.dist.group == nil {
		return n
	}
	lo, hi := j.dist.group.Shard(n)
	return hi - lo
}
