// Package synth writes a synthetic retinal-edema OCT data set in exactly the
// folder layout of the real AI Challenger 2018 data, so that every command
// of the project runs end to end without the (non-public) real data.
//
// The B-scans look like macular OCT: a layered retina on a bowl-shaped,
// tilted Bruch's membrane with a foveal pit, a bright pigment epithelium,
// dark vitreous above and a textured choroid below, retinal vessels with
// their shadows, axial motion between slices and multiplicative speckle.
// Lesions are 3-D domes spanning neighbouring slices: retinal edema areas
// (REA, label 255) are swollen, cystic, darker regions inside the retina
// that thicken it; subretinal fluid (SRF, 191) is a black dome on the
// pigment epithelium lifting the retina; pigment epithelial detachments
// (PED, 128) raise the pigment epithelium over a dark pocket. Some cubes
// lack some lesion classes and many slices have none; every class occurs in
// every set.
//
// Generate writes, under its output folder DIR:
//
//	Edema_trainingset/{original_images,label_images,trans3channel_images}/…
//	Edema_validationset/{original_images,label_images,trans3channel_images}/…
//	Edema_validationset/groundtruth/<CUBE>_volumes.npy, <CUBE>_detections.npy
//	Edema_testset/{original_images,trans3channel_images}/…
//	test_groundtruth/<CUBE>_volumes.npy, <CUBE>_detections.npy
//	data_path/{train,val}_{images,labels}.txt, test_images.txt, info.json, info_test.json
//
// The test set has no labels, as in the challenge; its reference files sit
// in test_groundtruth, outside the data layout, so that a submission for the
// synthetic test set can be scored. Reference volumes are uint8 S×H×W arrays
// of classes 0..3 and detections uint8 S×3 arrays of 0/1 (REA, SRF, PED).
//
// The output depends only on the options (and not on Workers): the same
// seed gives byte-identical files on the same platform.
package synth

import (
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"codeberg.org/sbinet/npyio"

	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/oct"
)

// Options says what to generate.
type Options struct {
	Train, Val, Test int    // cubes per set
	Slices           int    // B-scans per cube
	Width, Height    int    // B-scan size in pixels, multiples of 16
	Seed             uint64 // everything drawn derives from it
	Workers          int    // cubes generated at once; all CPUs when ≤ 0
	// Progress, when set, hears of each cube written ("cubes"), then of
	// the passes of oct.Prep ("stacked cubes") and oct.WriteLists.
	Progress oct.Progress
}

// DefaultOptions renders in seconds and trains in minutes.
func DefaultOptions() Options {
	return Options{Train: 6, Val: 2, Test: 2, Slices: 32, Width: 128, Height: 256, Seed: 1}
}

// Limits of the options.
const (
	MinWidth, MinHeight = 32, 64
	MaxSize             = 4096
	MaxSlices           = 999 // three-digit stack names, as in the original
	MaxCubes            = 1000
)

// Validate reports options that cannot make a usable data set.
func (o Options) Validate() error {
	switch {
	case o.Train < 1:
		return fmt.Errorf("--train %d: need at least one training cube", o.Train)
	case o.Val < 0:
		return fmt.Errorf("--val %d: cannot be negative", o.Val)
	case o.Test < 0:
		return fmt.Errorf("--test %d: cannot be negative", o.Test)
	case o.Train+o.Val+o.Test > MaxCubes:
		return fmt.Errorf("%d cubes: at most %d", o.Train+o.Val+o.Test, MaxCubes)
	case o.Slices < 2 || o.Slices > MaxSlices:
		return fmt.Errorf("--slices %d: must be 2..%d", o.Slices, MaxSlices)
	case o.Width%16 != 0 || o.Width < MinWidth || o.Width > MaxSize:
		return fmt.Errorf("--width %d: must be a multiple of 16 in %d..%d (the networks halve it four times)", o.Width, MinWidth, MaxSize)
	case o.Height%16 != 0 || o.Height < MinHeight || o.Height > MaxSize:
		return fmt.Errorf("--height %d: must be a multiple of 16 in %d..%d (the networks halve it four times)", o.Height, MinHeight, MaxSize)
	}
	return nil
}

// Folders of the output beside the data layout.
const (
	TestGroundTruth = "test_groundtruth"
	ListDir         = "data_path"
)

// CubeInfo describes a generated cube.
type CubeInfo struct {
	Set    oct.Set
	Name   string
	Slices int
	// SlicesWith counts the slices in which each lesion class (REA, SRF,
	// PED) occurs.
	SlicesWith [oct.NumLesions]int
}

// Report tells what Generate wrote.
type Report struct {
	Dir   string
	Cubes []CubeInfo
	Lists *oct.ListStats
}

// plannedCube is a cube before it is drawn.
type plannedCube struct {
	set  oct.Set
	name string
	seed uint64
	has  [oct.NumLesions]bool
}

// plan draws the names, seeds and lesion classes of every cube. Lesion
// classes are drawn per cube, then any class missing from a set is given to
// one of its cubes, so that every set has every class.
func plan(o Options) []plannedCube {
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	names := newNamer(rng)
	var cubes []plannedCube
	for _, set := range []struct {
		set oct.Set
		n   int
	}{{oct.Training, o.Train}, {oct.Validation, o.Val}, {oct.Test, o.Test}} {
		first := len(cubes)
		for range set.n {
			c := plannedCube{set: set.set, name: names.next(o.Width, o.Slices), seed: rng.Uint64()}
			for l, p := range []float64{0.8, 0.6, 0.5} {
				c.has[l] = rng.Float64() < p
			}
			cubes = append(cubes, c)
		}
		if set.n == 0 {
			continue
		}
		for l := range oct.NumLesions {
			found := false
			for _, c := range cubes[first:] {
				found = found || c.has[l]
			}
			if !found {
				cubes[first+rng.IntN(set.n)].has[l] = true
			}
		}
	}
	return cubes
}

// namer draws cube names in the style of the real ones, such as
// P0012_MacularCube512x128_8-7-2014_13-29-39_OS_sn27946_cube_z, with
// increasing serial numbers so that no two cubes share a name.
type namer struct {
	rng    *rand.Rand
	serial int
}

func newNamer(rng *rand.Rand) *namer {
	return &namer{rng: rng, serial: 1000 + rng.IntN(20000)}
}

func (n *namer) next(width, slices int) string {
	r := n.rng
	n.serial += 1 + r.IntN(400)
	patient := fmt.Sprintf("P%04d", r.IntN(10000))
	if r.IntN(5) == 0 {
		patient = fmt.Sprintf("PC%03d", r.IntN(100))
	}
	eye := "OD"
	if r.IntN(2) == 0 {
		eye = "OS"
	}
	return fmt.Sprintf("%s_MacularCube%dx%d_%d-%d-%d_%d-%d-%d_%s_sn%d_cube_z",
		patient, width, slices,
		1+r.IntN(12), 1+r.IntN(28), 2013+r.IntN(6),
		7+r.IntN(11), r.IntN(60), r.IntN(60),
		eye, n.serial)
}

// Generate writes a synthetic data set into dir, which must not exist or be
// empty, prepares its 3-channel stacks and writes its list folder
// dir/data_path.
func Generate(dir string, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, int, int) {}
	}
	cubes := plan(o)
	infos := make([]CubeInfo, len(cubes))
	var mu sync.Mutex
	written := 0
	err := parallel(len(cubes), workers, func(i int) error {
		info, err := writeCube(dir, o, cubes[i])
		infos[i] = info
		mu.Lock()
		written++
		progress("cubes", written, len(cubes))
		mu.Unlock()
		return err
	})
	if err != nil {
		return nil, err
	}
	stacked := func(_ string, done, total int) { progress("stacked cubes", done, total) }
	if _, err := oct.Prep(dir, workers, stacked); err != nil {
		return nil, err
	}
	lists, err := oct.WriteLists(dir, filepath.Join(dir, ListDir), workers, progress)
	if err != nil {
		return nil, err
	}
	return &Report{Dir: dir, Cubes: infos, Lists: lists}, nil
}

// emptyDir makes sure dir exists and is empty, so that no stale cube of an
// earlier run ends up in the lists.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: give a new or empty folder", dir)
	}
	return nil
}

// writeCube draws one cube and writes its B-scans, labels (training and
// validation) and reference files (validation and test).
func writeCube(dir string, o Options, p plannedCube) (CubeInfo, error) {
	info := CubeInfo{Set: p.set, Name: p.name, Slices: o.Slices}
	model := newCubeModel(rand.New(rand.NewPCG(p.seed, 1)), o.Width, o.Height, o.Slices, p.has)

	scans := filepath.Join(dir, filepath.FromSlash(p.set.OriginalDir(p.name)))
	labels := filepath.Join(dir, filepath.FromSlash(p.set.LabelDir(p.name)))
	writeLabels := p.set != oct.Test
	if err := os.MkdirAll(scans, 0o755); err != nil {
		return info, err
	}
	if writeLabels {
		if err := os.MkdirAll(labels, 0o755); err != nil {
			return info, err
		}
	}
	area := o.Width * o.Height
	var volume []uint8 // S×H×W classes, for the reference files
	if p.set != oct.Training {
		volume = make([]uint8, o.Slices*area)
	}
	detections := make([][oct.NumLesions]uint8, o.Slices)
	img := image.NewGray(image.Rect(0, 0, o.Width, o.Height))
	lab := image.NewGray(image.Rect(0, 0, o.Width, o.Height))
	for z := range o.Slices {
		clear(lab.Pix)
		// Each slice has its own speckle stream.
		model.renderSlice(z, rand.New(rand.NewPCG(p.seed, 2+uint64(z))), img.Pix, lab.Pix)
		if err := oct.WriteSlice(filepath.Join(scans, oct.SliceFile(z+1)), img); err != nil {
			return info, err
		}
		if writeLabels {
			if err := oct.WriteSlice(filepath.Join(labels, oct.SliceFile(z+1)), lab); err != nil {
				return info, err
			}
		}
		classes := lab.Pix
		for i, v := range classes {
			classes[i] = oct.ClassOfLabel(v)
		}
		for l, present := range oct.Presence(classes) {
			if present == 1 {
				detections[z][l] = 1
				info.SlicesWith[l]++
			}
		}
		if volume != nil {
			copy(volume[z*area:(z+1)*area], classes)
		}
	}

	var refDir string
	switch p.set {
	case oct.Validation:
		refDir = filepath.Join(dir, filepath.FromSlash(p.set.GroundTruthDir()))
	case oct.Test:
		refDir = filepath.Join(dir, TestGroundTruth)
	default:
		return info, nil
	}
	if err := os.MkdirAll(refDir, 0o755); err != nil {
		return info, err
	}
	return info, WriteReference(refDir, p.name, volume, detections, o.Slices, o.Height, o.Width)
}

// WriteReference writes a cube's reference files in the official format:
// <CUBE>_volumes.npy, uint8 S×H×W classes 0..3, and <CUBE>_detections.npy,
// uint8 S×3 presence of REA, SRF and PED per slice.
func WriteReference(dir, cube string, volume []uint8, detections [][oct.NumLesions]uint8, s, h, w int) error {
	if len(volume) != s*h*w || len(detections) != s {
		return fmt.Errorf("reference of %s: %d voxels and %d detections for %d×%d×%d", cube, len(volume), len(detections), s, h, w)
	}
	// npyio takes the shape from nested slices; these share volume's memory.
	nested := make([][][]uint8, s)
	for z := range nested {
		nested[z] = make([][]uint8, h)
		for y := range nested[z] {
			off := (z*h + y) * w
			nested[z][y] = volume[off : off+w]
		}
	}
	write := func(name string, v any) error {
		return atomicfile.Write(filepath.Join(dir, name), func(wr io.Writer) error { return npyio.Write(wr, v) })
	}
	if err := write(cube+"_volumes.npy", nested); err != nil {
		return err
	}
	return write(cube+"_detections.npy", detections)
}

// parallel calls fn(0) … fn(n-1) from up to workers goroutines and returns
// the error of the lowest index that failed.
func parallel(n, workers int, fn func(i int) error) error {
	errs := make([]error, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range jobs {
				errs[i] = fn(i)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
