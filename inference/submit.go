package inference

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edema/edema/oct"
	"github.com/edema/edema/submission"
	"github.com/edema/edema/torch/distributed"
)

// SubmitOptions tune WriteSubmission.
type SubmitOptions struct {
	// Workers bounds the files read at once; all CPUs when ≤ 0.
	Workers int
	// Volumes and Detections choose the files written per cube: the label
	// volume <CUBE>_labelMark_volumes.npy, the detection probabilities
	// <CUBE>_labelMark_detections.npy. submission.zip needs both.
	Volumes, Detections bool
	// Progress, when set, is called after each cube.
	Progress func(CubeDone)
	// Group, when set, shards the cubes over the processes of a job, as in
	// EvalOptions: each writes the files of its block of cubes into dir,
	// which all must see (one machine's folder, or a shared file system),
	// and once all are done rank 0 checks that every file is there and
	// writes submission.zip; the other ranks return "".
	Group *distributed.Group
}

// WriteSubmission predicts every cube of a test list (see
// oct.ReadTestList; labels, if any, are ignored) with p, the stacks
// normalised by norm, and writes the chosen files of each cube into dir,
// each through a temporary file renamed into place. With both files chosen
// it then writes dir/submission.zip holding them at its top level and
// returns its path; otherwise it returns "".
func WriteSubmission(ctx context.Context, p *Predictor, dataDir string, cubes []oct.CubeEntry, norm *oct.Normalizer, dir string, opts SubmitOptions) (string, error) {
	if !opts.Volumes && !opts.Detections {
		return "", errors.New("nothing to write: choose the volumes, the detections or both")
	}
	if len(cubes) == 0 {
		return "", errors.New("no cube to predict")
	}
	if opts.Volumes && !p.Tasks().Has(oct.Segmentation) {
		return "", fmt.Errorf("%s does not segment: it has no label volumes to write, only detections", p)
	}
	if opts.Detections && !p.Tasks().Has(oct.Detection) {
		return "", fmt.Errorf("%s does not detect (trained without the detection loss): it has no detections to write, only label volumes", p)
	}
	entries := make([]oct.CubeEntry, len(cubes))
	names := make([]string, len(cubes))
	seen := map[string]bool{}
	for i, e := range cubes {
		entries[i] = oct.CubeEntry{Images: e.Images}
		names[i] = e.Name()
		if seen[names[i]] {
			return "", fmt.Errorf("cube %s is listed twice", names[i])
		}
		seen[names[i]] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	both := opts.Volumes && opts.Detections
	g := opts.Group
	if g == nil {
		if err := writeCubes(ctx, p, dataDir, entries, norm, dir, opts); err != nil {
			return "", err
		}
	} else {
		lo, hi := g.Shard(len(entries))
		err := writeCubes(ctx, p, dataDir, entries[lo:hi], norm, dir, opts)
		if _, err := g.AllGatherResults(nil, err); err != nil {
			return "", err
		}
		if g.Rank() != 0 {
			return "", nil
		}
		if err := checkWritten(dir, names, opts); err != nil {
			return "", err
		}
	}
	if !both {
		return "", nil
	}
	return submission.Zip(dir, names)
}

// checkWritten makes sure, on rank 0 of a sharded submission, that every
// rank's files are in dir as rank 0 sees it.
func checkWritten(dir string, names []string, opts SubmitOptions) error {
	var missing []string
	for _, name := range names {
		files := []string{}
		if opts.Volumes {
			files = append(files, submission.VolumesFile(name))
		}
		if opts.Detections {
			files = append(files, submission.DetectionsFile(name))
		}
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				missing = append(missing, f)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s lacks %d file(s) that other ranks wrote (%s...): the ranks of a sharded submission must share the output folder",
			dir, len(missing), missing[0])
	}
	return nil
}

// writeCubes predicts cubes and writes their files into dir.
func writeCubes(ctx context.Context, p *Predictor, dataDir string, entries []oct.CubeEntry, norm *oct.Normalizer, dir string, opts SubmitOptions) error {
	if len(entries) == 0 {
		return nil
	}
	both := opts.Volumes && opts.Detections
	loader := oct.NewCubeLoader(dataDir, entries, opts.Workers)
	start := time.Now()
	i := 0
	for cube, err := range loader.Cubes(ctx) {
		if err != nil {
			return err
		}
		pred, err := p.PredictCube(ctx, cube, norm)
		if err != nil {
			return err
		}
		out := submission.Cube{
			Name: cube.Name, Slices: pred.Slices, Height: pred.H, Width: pred.W,
			Labels: pred.Labels, Detections: pred.Detections,
		}
		if both {
			err = submission.WriteCube(dir, out)
		} else {
			err = writePart(dir, out, opts.Volumes)
		}
		if err != nil {
			return err
		}
		if opts.Progress != nil {
			opts.Progress(CubeDone{Index: i, Total: len(entries), Name: cube.Name, Took: time.Since(start)})
		}
		i++
		start = time.Now()
	}
	return ctx.Err()
}

// writePart writes one of a cube's two files into dir: the volume when
// volumes is set, else the detections. submission.WriteCube writes both
// atomically; it writes them here into a temporary folder of dir, whence
// the chosen one is renamed into place.
func writePart(dir string, c submission.Cube, volumes bool) error {
	tmp, err := os.MkdirTemp(dir, ".cube-*.tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := submission.WriteCube(tmp, c); err != nil {
		return err
	}
	name := submission.DetectionsFile(c.Name)
	if volumes {
		name = submission.VolumesFile(c.Name)
	}
	return os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name))
}
