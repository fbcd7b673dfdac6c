package inference

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edema/edema/metrics"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/picture"
	"github.com/edema/edema/torch/distributed"
)

// CubeDone reports one cube that Evaluate or WriteSubmission has finished.
type CubeDone struct {
	Index, Total int // Index counts from 0
	Name         string
	// Scores are the cube's figures; nil in a submission, which has no
	// ground truth.
	Scores *metrics.CubeScores
	// Took is the time spent on the cube: reading (what the read-ahead did
	// not hide), predicting and writing.
	Took time.Duration
}

// CountCubes returns a CubeDone callback that reports each cube to
// report as a pass over "cubes"; nil when report is nil.
func CountCubes(report oct.Progress) func(CubeDone) {
	if report == nil {
		return nil
	}
	return func(d CubeDone) { report("cubes", d.Index+1, d.Total) }
}

// EvalOptions tune Evaluate.
type EvalOptions struct {
	// Workers bounds the files read at once; all CPUs when ≤ 0.
	Workers int
	// VisDir, when set, receives a picture of every slice (see
	// WriteSlicePictures) in VisDir/<cube index %04d>/.
	VisDir string
	// Opaque paints the lesions of every slice picture (VisDir's and
	// Worst's) in full colour, as the original did, instead of half
	// transparent.
	Opaque bool
	// Progress, when set, is called after each cube.
	Progress func(CubeDone)
	// Worst, when set, collects the slices of lowest Dice per class and
	// their pictures (see WorstSlices); Worst.K says how many.
	Worst *WorstSlices
	// Group, when set, shards the evaluation over the processes of a job:
	// each evaluates its contiguous block of the cubes (Group.Shard), and
	// every one returns the evaluation of all of them, the same as one
	// process's. Progress then counts this process's cubes.
	Group *distributed.Group
}

// Evaluate predicts every cube of a validation list (labelled entries, see
// oct.ReadValList) with p, the stacks normalised by norm, and scores the
// predictions against the labels: Dice per cube and class, detection AUC
// per cube and pooled over all slices. Only the figures are kept, one cube
// is in memory at a time (and the next one being read).
func Evaluate(ctx context.Context, p *Predictor, dataDir string, cubes []oct.CubeEntry, norm *oct.Normalizer, opts EvalOptions) (*metrics.Evaluation, error) {
	if len(cubes) == 0 {
		return nil, fmt.Errorf("no cube to evaluate")
	}
	for _, e := range cubes {
		if e.Labels == "" {
			return nil, fmt.Errorf("cube %s has no label folder: evaluation needs the validation lists", e.Name())
		}
	}
	if g := opts.Group; g != nil {
		orig := opts.Worst
		lo, hi := g.Shard(len(cubes))
		var worst *WorstSlices
		if opts.Worst != nil {
			worst = &WorstSlices{K: opts.Worst.K}
			opts.Worst = worst
		}
		part, err := evaluate(ctx, p, dataDir, cubes[lo:hi], norm, opts, lo)
		var data []byte
		if err == nil {
			data, err = part.MarshalBinary()
		}
		parts, err := g.AllGatherResults(data, err)
		if err != nil {
			return nil, err
		}
		ev := &metrics.Evaluation{Absent: oct.BothTasks &^ p.Tasks()}
		for r, data := range parts {
			var part metrics.Evaluation
			if err := part.UnmarshalBinary(data); err != nil {
				return nil, fmt.Errorf("the evaluation of rank %d: %w", r, err)
			}
			ev.Append(&part)
		}
		if worst != nil {
			if err := gatherWorst(g, worst, orig); err != nil {
				return nil, err
			}
		}
		return ev, nil
	}
	return evaluate(ctx, p, dataDir, cubes, norm, opts, 0)
}

// evaluate is Evaluate on one process; the cubes' pictures are numbered
// from first, their place in the whole list.
func evaluate(ctx context.Context, p *Predictor, dataDir string, cubes []oct.CubeEntry, norm *oct.Normalizer, opts EvalOptions, first int) (*metrics.Evaluation, error) {
	ev := &metrics.Evaluation{Absent: oct.BothTasks &^ p.Tasks()}
	if len(cubes) == 0 {
		return ev, nil
	}
	loader := oct.NewCubeLoader(dataDir, cubes, opts.Workers)
	start := time.Now()
	i := 0
	for cube, err := range loader.Cubes(ctx) {
		if err != nil {
			return nil, err
		}
		pred, err := p.PredictCube(ctx, cube, norm)
		if err != nil {
			return nil, err
		}
		if err := ev.Add(cube.Name, pred.Labels, cube.Labels, pred.Detections, cube.Targets); err != nil {
			return nil, err
		}
		if opts.Worst != nil && !ev.Absent.Has(oct.Segmentation) { // the lowest Dice of no segmentation is no news
			if err := opts.Worst.add(first+i, cube, pred, opts.Opaque); err != nil {
				return nil, err
			}
		}
		if opts.VisDir != "" {
			if err := WriteSlicePictures(filepath.Join(opts.VisDir, fmt.Sprintf("%04d", first+i)), cube, pred, opts.Opaque); err != nil {
				return nil, err
			}
		}
		if opts.Progress != nil {
			scores := ev.Cubes()[i]
			opts.Progress(CubeDone{Index: i, Total: len(cubes), Name: cube.Name, Scores: &scores, Took: time.Since(start)})
		}
		i++
		start = time.Now()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ev, nil
}

// WriteSlicePictures writes into dir one PNG per slice, <slice %03d>.png
// (see SliceFigure), lesions painted opaque when opaque is set.
func WriteSlicePictures(dir string, cube *oct.Cube, pred *models.Prediction, opaque bool) error {
	if pred.Slices != cube.Slices() || pred.H != cube.H || pred.W != cube.W {
		return fmt.Errorf("cube %s: a prediction of %d×%d×%d for a cube of %d×%d×%d", cube.Name, pred.Slices, pred.H, pred.W, cube.Slices(), cube.H, cube.W)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for s := range cube.Slices() {
		fig := SliceFigure(cube, pred, s)
		fig.Opaque = opaque
		img, err := fig.Draw()
		if err != nil {
			return fmt.Errorf("cube %s, slice %d: %w", cube.Name, s, err)
		}
		if err := picture.WritePNG(filepath.Join(dir, fmt.Sprintf("%03d.png", s)), img); err != nil {
			return err
		}
	}
	return nil
}

// SliceFigure returns the picture of slice s of a predicted cube: the
// grey slice (the middle channel of its stack) titled with the cube, the
// slice and its original file, the prediction and, for a labelled cube,
// the ground truth, with the slice's Dice and detection probabilities;
// what the network does not do is left out.
func SliceFigure(cube *oct.Cube, pred *models.Prediction, s int) picture.SliceFigure {
	area := cube.H * cube.W
	fig := picture.SliceFigure{
		Title:  fmt.Sprintf("cube %s, slice %d (%s)", cube.Name, s, oct.SliceFile(s+1)),
		Height: cube.H, Width: cube.W,
		Grey: cube.Stacks[s].Channel(1),
	}
	if !pred.Absent.Has(oct.Segmentation) {
		fig.Pred = pred.Labels[s*area : (s+1)*area]
	}
	if !pred.Absent.Has(oct.Detection) {
		fig.Detections = pred.Detections[s*oct.NumLesions : (s+1)*oct.NumLesions]
	}
	if cube.Labelled() {
		fig.Truth = cube.Labels[s*area : (s+1)*area]
	}
	return fig
}

// gatherWorst merges every rank's lowest-Dice slices into dst.
func gatherWorst(g *distributed.Group, mine, dst *WorstSlices) error {
	data, err := mine.encode()
	parts, err := g.AllGatherResults(data, err)
	if err != nil {
		return err
	}
	for r, data := range parts {
		w, err := decodeWorst(data)
		if err != nil {
			return fmt.Errorf("rank %d: %w", r, err)
		}
		dst.merge(w)
	}
	return nil
}
