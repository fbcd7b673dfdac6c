package submission

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/edema/edema/metrics"

	"github.com/edema/edema/oct"
)

// Reference file names: <CUBE>_volumes.npy and <CUBE>_detections.npy.
const (
	volumesSuffix    = "_volumes.npy"
	detectionsSuffix = "_detections.npy"
	labelMark        = "_labelMark"
)

// Result is the challenge's official score of a submission.
type Result struct {
	// Cubes holds the figures of each reference cube, sorted by name.
	Cubes []metrics.CubeScores
	// Detection holds per lesion class the ROC AUC of the detection
	// probabilities of all slices of all cubes pooled together, as the
	// organisers' scorer computes it.
	Detection metrics.PerLesion
	// CubeAUC holds per lesion class the mean over cubes of each cube's own
	// detection AUC, over the cubes where it is defined. It is not part of
	// the score: it shows the ranking within cubes, whatever the
	// calibration of the probabilities across cubes.
	CubeAUC metrics.PerLesion
	// Segmentation holds per lesion class the mean over cubes of the Dice,
	// over the cubes where the class occurs in the ground truth.
	Segmentation metrics.PerLesion
	// AvgDetection and AvgSegmentation are the means of their three
	// classes (of the defined ones, see metrics.PerLesion.Mean).
	AvgDetection, AvgSegmentation float64
	// Score is the leaderboard score, (AvgDetection + AvgSegmentation) / 2.
	Score float64
	// Undefined says, one line each, why a figure is undefined (where the
	// organisers' scorer would have crashed); such figures are left out of
	// the averages.
	Undefined []string
}

// Official returns the challenge's official figures of an evaluation:
// per class the detection AUC pooled over all slices of all cubes and the
// mean over cubes of the Dice, their averages and the score.
func Official(ev *metrics.Evaluation) Result {
	r := Result{
		Cubes:        ev.Cubes(),
		Detection:    ev.PooledAUC(),
		CubeAUC:      ev.CubeAUC(),
		Segmentation: ev.Dice(),
	}
	for _, task := range []oct.Tasks{oct.Segmentation, oct.Detection} {
		if ev.Absent.Has(task) {
			r.Undefined = append(r.Undefined, fmt.Sprintf("%s is absent: the network does not do it, and there is no score", task))
		}
	}
	positive, slices := ev.PooledTargets()
	for c, name := range oct.LesionNames {
		switch {
		case ev.Absent.Has(oct.Detection) || !math.IsNaN(r.Detection[c]):
		case positive[c] == 0:
			r.Undefined = append(r.Undefined, fmt.Sprintf("detection AUC of %s is undefined: no slice of any reference cube contains %s", name, name))
		default:
			r.Undefined = append(r.Undefined, fmt.Sprintf("detection AUC of %s is undefined: all %d slices of the reference cubes contain %s", name, slices, name))
		}
		if math.IsNaN(r.Segmentation[c]) && !ev.Absent.Has(oct.Segmentation) {
			r.Undefined = append(r.Undefined, fmt.Sprintf("segmentation Dice of %s is undefined: no reference cube contains %s", name, name))
		}
	}
	r.AvgDetection = r.Detection.Mean()
	r.AvgSegmentation = r.Segmentation.Mean()
	r.Score = (r.AvgDetection + r.AvgSegmentation) / 2
	return r
}

// Score computes the official score of a submission against a reference
// folder holding per cube <CUBE>_volumes.npy (labels 0..3, S×H×W, any
// integer dtype) and <CUBE>_detections.npy (targets 0 or 1, S×3, any
// numeric dtype).
//
// The submission is a .zip file or a folder; one that holds a single entry,
// a folder, stands for that folder, as in the organisers' scorer. It must
// hold for every reference cube its volume (uint8, the reference's shape)
// and its detection probabilities (float32 or float64, S×3); a submission
// that holds no volume at all, that of a network that only detects, or no
// detections at all, is scored on its other task, the figures of the
// missing one absent. Each is found
// by the reference file's name, else by that name with _labelMark removed,
// else with _labelMark added before the suffix, so that both spellings work
// on either side; other files are ignored. Every malformed or missing file
// is an error that names it. progress, when not nil, is called after each
// cube ("cubes").
func Score(submitted, reference string, progress oct.Progress) (Result, error) {
	cubes, err := referenceCubes(reference)
	if err != nil {
		return Result{}, err
	}
	sub, err := openSubmission(submitted)
	if err != nil {
		return Result{}, err
	}
	defer sub.Close()
	ref := &source{name: reference, fsys: os.DirFS(reference)}

	var eval metrics.Evaluation
	for _, part := range []struct {
		suffix string
		task   oct.Tasks
	}{{volumesSuffix, oct.Segmentation}, {detectionsSuffix, oct.Detection}} {
		if !sub.holdsAny(cubes, part.suffix) {
			eval.Absent |= part.task
		}
	}
	if eval.Absent == oct.BothTasks {
		return Result{}, fmt.Errorf("%s holds no file of any reference cube (such as %s)", sub.name, VolumesFile(cubes[0]))
	}
	for i, cube := range cubes {
		if err := scoreCube(&eval, cube, sub, ref); err != nil {
			return Result{}, err
		}
		if progress != nil {
			progress("cubes", i+1, len(cubes))
		}
	}
	return Official(&eval), nil
}

// referenceCubes lists the cubes of a reference folder, sorted.
func referenceCubes(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the reference: %w", err)
	}
	var cubes []string
	for _, e := range entries {
		if cube, ok := strings.CutSuffix(e.Name(), volumesSuffix); ok && !e.IsDir() {
			cubes = append(cubes, cube)
		}
	}
	if len(cubes) == 0 {
		return nil, fmt.Errorf("reference %s holds no *%s file", dir, volumesSuffix)
	}
	slices.Sort(cubes)
	return cubes, nil
}

// source is a folder or an opened .zip file.
type source struct {
	name   string
	fsys   fs.FS
	closer io.Closer
}

func openSubmission(path string) (*source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("opening the submission: %w", err)
	}
	s := &source{name: path, fsys: os.DirFS(path)}
	if !info.IsDir() {
		z, err := zip.OpenReader(path)
		if err != nil {
			return nil, fmt.Errorf("submission %s is neither a folder nor a readable .zip file: %w", path, err)
		}
		s = &source{name: path, fsys: z, closer: z}
	}
	entries, err := fs.ReadDir(s.fsys, ".")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("reading the submission %s: %w", path, err)
	}
	if len(entries) == 1 && entries[0].IsDir() {
		// A submission zipped with its folder: the organisers' scorer
		// descends into a single entry.
		sub, err := fs.Sub(s.fsys, entries[0].Name())
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("reading the submission %s: %w", path, err)
		}
		s.fsys, s.name = sub, path+"/"+entries[0].Name()
	}
	return s, nil
}

func (s *source) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}

// find returns the first of names that the source holds.
func (s *source) find(names ...string) (string, error) {
	for _, name := range names {
		_, err := fs.Stat(s.fsys, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %s: %w", s.name, name, err)
		}
	}
	alternatives := ""
	if len(names) > 1 {
		alternatives = " (or " + strings.Join(names[1:], ", ") + ")"
	}
	return "", fmt.Errorf("%s lacks %s%s", s.name, names[0], alternatives)
}

// open opens a .npy file of the source and checks its header: its dtype
// with accept and its shape against want, where a negative dimension
// accepts any size.
func (s *source) open(name string, accept func(dtype) bool, wantDtype string, want []int) (*npyArray, error) {
	arr, err := openNPY(s.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.name, name, err)
	}
	fail := func(format string, args ...any) (*npyArray, error) {
		arr.Close()
		return nil, fmt.Errorf("%s: %s: %s", s.name, name, fmt.Sprintf(format, args...))
	}
	if !accept(arr.dtype) {
		return fail("dtype %s, want %s", arr.dtype, wantDtype)
	}
	ok := len(arr.shape) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = want[i] < 0 || arr.shape[i] == want[i]
	}
	if !ok {
		wanted := make([]string, len(want))
		for i, d := range want {
			wanted[i] = fmt.Sprint(d)
			if d < 0 {
				wanted[i] = "any"
			}
		}
		return fail("shape %s, want (%s)", shapeString(arr.shape), strings.Join(wanted, ", "))
	}
	return arr, nil
}

// read opens, checks and decodes one file with decode.
func read[T any](s *source, name string, accept func(dtype) bool, wantDtype string, want []int, decode func(*npyArray) ([]T, error)) ([]T, []int, error) {
	arr, err := s.open(name, accept, wantDtype, want)
	if err != nil {
		return nil, nil, err
	}
	defer arr.Close()
	data, err := decode(arr)
	if err == nil {
		err = arr.finish()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", s.name, name, err)
	}
	return data, arr.shape, nil
}

func anyInteger(d dtype) bool { return d.integer() }
func anyNumber(dtype) bool    { return true }
func onlyUint8(d dtype) bool  { return d == uint8Type }
func anyFloat(d dtype) bool   { return d == float32Type || d == float64Type }

// submittedNames returns the names under which a submission may hold the
// file of a reference cube, in the order they are tried: the reference's
// own name and, as the organisers' scorer does, that name without
// _labelMark; then, for references named without it, the name that
// WriteCube gives.
func submittedNames(cube, suffix string) []string {
	names := []string{cube + suffix}
	if stripped := strings.ReplaceAll(cube, labelMark, ""); stripped != cube {
		names = append(names, stripped+suffix)
	} else {
		names = append(names, cube+labelMark+suffix)
	}
	return names
}

// holdsAny reports whether s holds the file of suffix of any of cubes.
func (s *source) holdsAny(cubes []string, suffix string) bool {
	for _, cube := range cubes {
		if _, err := s.find(submittedNames(cube, suffix)...); err == nil {
			return true
		}
	}
	return false
}

func scoreCube(eval *metrics.Evaluation, cube string, sub, ref *source) error {
	truth, shape, err := read(ref, cube+volumesSuffix, anyInteger, "integer labels", []int{-1, -1, -1}, readLabels)
	if err != nil {
		return err
	}
	nslices := shape[0]
	targetValues, _, err := read(ref, cube+detectionsSuffix, anyNumber, "numbers", []int{nslices, oct.NumLesions}, readNumbers)
	if err != nil {
		return err
	}
	for i, v := range targetValues {
		if v != 0 && v != 1 {
			return fmt.Errorf("%s: %s: element %d is %g, want 0 or 1", ref.name, cube+detectionsSuffix, i, v)
		}
	}

	// The files of an absent task are not read: its figures are NaN,
	// whatever stands in for them.
	var name string
	pred := make([]uint8, len(truth))
	if !eval.Absent.Has(oct.Segmentation) {
		if name, err = sub.find(submittedNames(cube, volumesSuffix)...); err != nil {
			return err
		}
		if pred, _, err = read(sub, name, onlyUint8, "uint8", shape, readLabels); err != nil {
			return err
		}
	}
	detections := make([]float64, nslices*oct.NumLesions)
	if !eval.Absent.Has(oct.Detection) {
		if name, err = sub.find(submittedNames(cube, detectionsSuffix)...); err != nil {
			return err
		}
		if detections, _, err = read(sub, name, anyFloat, "float32 or float64", []int{nslices, oct.NumLesions}, readNumbers); err != nil {
			return err
		}
	}
	for i, p := range detections {
		if math.IsNaN(p) || math.IsInf(p, 0) {
			return fmt.Errorf("%s: %s: element %d is %g", sub.name, name, i, p)
		}
	}
	return eval.Add64(cube, pred, truth, detections, targetValues)
}

// WriteTable writes the figures of r as an aligned table: per lesion class
// the detection AUC (pooled, the official one), the segmentation Dice and,
// outside the score, the mean of the per-cube AUCs; their averages, the
// score, and a line for each undefined figure. Undefined figures read
// "n/a".
func (r Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "class\tdetection AUC\tsegmentation Dice\t(AUC per cube, not scored)\n")
	for c, name := range oct.LesionNames {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, figure(r.Detection[c]), figure(r.Segmentation[c]), figure(r.CubeAUC[c]))
	}
	fmt.Fprintf(tw, "average\t%s\t%s\t%s\n", figure(r.AvgDetection), figure(r.AvgSegmentation), figure(r.CubeAUC.Mean()))
	fmt.Fprintf(tw, "score\t%s\n", figure(r.Score))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range r.Undefined {
		if _, err := fmt.Fprintf(w, "note: %s\n", line); err != nil {
			return err
		}
	}
	return nil
}

// WriteCubeTable writes the figures of each cube as an aligned table.
func (r Result) WriteCubeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	header := []string{"cube"}
	for _, name := range oct.LesionNames {
		header = append(header, "AUC "+name)
	}
	for _, name := range oct.LesionNames {
		header = append(header, "Dice "+name)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, cube := range r.Cubes {
		row := []string{cube.Name}
		for _, v := range cube.AUC {
			row = append(row, figure(v))
		}
		for _, v := range cube.Dice {
			row = append(row, figure(v))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func figure(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4f", v)
}
