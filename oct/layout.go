// Package oct reads and prepares the retinal-edema OCT data set of the AI
// Challenger 2018 fundus lesion track, in the folder layout the challenge
// shipped it in, and turns it into the plain Go data the networks are fed:
// normalised N×3×H×W float32 images, N×H×W class labels and per-slice
// detection targets.
//
// The layout under a data folder (DATA_DIR) is
//
//	Edema_trainingset/original_images/<CUBE>.img/<1..S>.bmp
//	Edema_trainingset/label_images/<CUBE>_labelMark/<1..S>.bmp
//	Edema_trainingset/trans3channel_images/<CUBE>.img/<000..S-1>.png
//	Edema_validationset/...            the same, plus groundtruth/
//	Edema_testset/original_images/...  and trans3channel_images/ (no labels)
//
// [Prep] makes trans3channel_images from original_images, [WriteLists] writes
// the list files and normalisation statistics of a list folder (LIST_DIR),
// [TrainLoader] and [CubeLoader] read them back for training, validation and
// test.
package oct

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Set is one part of the data set, named by its folder under DATA_DIR.
type Set string

// The three parts of the challenge data.
const (
	Training   Set = "Edema_trainingset"
	Validation Set = "Edema_validationset"
	Test       Set = "Edema_testset"
)

// Sets lists the parts of the data set in the order they are processed.
var Sets = []Set{Training, Validation, Test}

// Folder names inside a set.
const (
	OriginalImages = "original_images"      // 8-bit grey B-scans, <1..S>.bmp per cube
	LabelImages    = "label_images"         // label masks, <1..S>.bmp per cube
	StackImages    = "trans3channel_images" // 3-channel neighbour stacks, <000..S-1>.png
	GroundTruth    = "groundtruth"          // official reference .npy files (validation)
)

// Suffixes of the per-cube folders.
const (
	imageSuffix = ".img"
	labelSuffix = "_labelMark"
)

// ImageFolder is the name of a cube's folder in original_images and
// trans3channel_images.
func ImageFolder(cube string) string { return cube + imageSuffix }

// LabelFolder is the name of a cube's folder in label_images.
func LabelFolder(cube string) string { return cube + labelSuffix }

// CubeName returns the cube name of a cube folder or list entry such as
// "Edema_testset/trans3channel_images/<CUBE>.img" or ".../<CUBE>_labelMark".
func CubeName(folder string) string {
	base := path.Base(filepath.ToSlash(strings.TrimRight(folder, `/\`)))
	base = strings.TrimSuffix(base, imageSuffix)
	return strings.TrimSuffix(base, labelSuffix)
}

// SliceFile is the file name of B-scan k (counted from 1) in original_images
// and label_images.
func SliceFile(k int) string { return strconv.Itoa(k) + ".bmp" }

// StackFile is the file name of the 3-channel stack of slice i (counted from
// 0) in trans3channel_images.
func StackFile(i int) string { return fmt.Sprintf("%03d.png", i) }

// LabelFileOfStack is the label file of the stack named name: label k.bmp
// belongs to stack (k-1), so "000.png" has label "1.bmp".
func LabelFileOfStack(name string) (string, error) {
	i, err := fileNumber(name, ".png")
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return SliceFile(i + 1), nil
}

// OriginalDir is the folder of a cube's B-scans, relative to DATA_DIR.
func (s Set) OriginalDir(cube string) string {
	return path.Join(string(s), OriginalImages, ImageFolder(cube))
}

// LabelDir is the folder of a cube's labels, relative to DATA_DIR.
func (s Set) LabelDir(cube string) string {
	return path.Join(string(s), LabelImages, LabelFolder(cube))
}

// StackDir is the folder of a cube's 3-channel stacks, relative to DATA_DIR.
func (s Set) StackDir(cube string) string {
	return path.Join(string(s), StackImages, ImageFolder(cube))
}

// GroundTruthDir is the set's folder of reference .npy files, relative to
// DATA_DIR.
func (s Set) GroundTruthDir() string { return path.Join(string(s), GroundTruth) }

// inData turns a path relative to DATA_DIR (as list files hold them) into a
// path on disk.
func inData(dataDir, rel string) string {
	return filepath.Join(dataDir, filepath.FromSlash(rel))
}

// Cubes lists the cubes of a set that have original images, sorted by name.
func Cubes(dataDir string, s Set) ([]string, error) {
	return cubesIn(inData(dataDir, path.Join(string(s), OriginalImages)))
}

// PreparedCubes lists the cubes of a set that have 3-channel stacks, sorted by
// name.
func PreparedCubes(dataDir string, s Set) ([]string, error) {
	return cubesIn(inData(dataDir, path.Join(string(s), StackImages)))
}

// cubesIn lists the <CUBE>.img folders of dir. Hidden entries (".DS_Store"
// and the like) are skipped, as the original scripts did.
func cubesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var cubes []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.IsDir() || !strings.HasSuffix(name, imageSuffix) {
			continue
		}
		cubes = append(cubes, CubeName(name))
	}
	if len(cubes) == 0 {
		return nil, fmt.Errorf("%s: no <CUBE>.img folders", dir)
	}
	slices.Sort(cubes)
	return cubes, nil
}

// CheckFolder checks that path is a folder that exists, such as a data or
// list folder, before any work relies on it.
func CheckFolder(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", path)
	}
	return nil
}

// NumberedFiles lists the files of dir named <number><ext> (ext such as
// ".bmp"), sorted by number rather than as strings, so that 10.bmp follows
// 9.bmp. Hidden files and files with other extensions are skipped; a file
// with the extension whose stem is not a number is an error.
func NumberedFiles(dir, ext string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type numbered struct {
		name string
		n    int
	}
	var files []numbered
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() || !strings.EqualFold(filepath.Ext(name), ext) {
			continue
		}
		n, err := fileNumber(name, ext)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
		files = append(files, numbered{name, n})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no numbered %s files", dir, ext)
	}
	slices.SortFunc(files, func(a, b numbered) int { return a.n - b.n })
	names := make([]string, len(files))
	for i, f := range files {
		if i > 0 && files[i-1].n == f.n {
			return nil, fmt.Errorf("%s: %s and %s have the same number", dir, files[i-1].name, f.name)
		}
		names[i] = f.name
	}
	return names, nil
}

// ContiguousFiles lists the files of dir named <number><ext>, as
// NumberedFiles, and checks that their numbers run from first without a
// gap: a cube is complete or it is refused, naming the first missing
// file, so that a deleted slice can neither shorten a cube nor shift the
// slices after it against their labels.
func ContiguousFiles(dir, ext string, first int) ([]string, error) {
	names, err := NumberedFiles(dir, ext)
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		n, _ := fileNumber(name, ext)
		if n == first+i {
			continue
		}
		last, _ := fileNumber(names[len(names)-1], ext)
		missing := strconv.Itoa(first+i) + ext
		if ext == ".png" {
			missing = StackFile(first + i)
		}
		return nil, fmt.Errorf("%s: slice %s is missing (the files run from %d to %d with %d of them)", dir, missing, first, last, len(names))
	}
	return names, nil
}

var errNotNumbered = errors.New("file name is not <number>")

// fileNumber parses the number of a file named <number><ext>.
func fileNumber(name, ext string) (int, error) {
	stem := name[:len(name)-len(filepath.Ext(name))]
	n, err := strconv.Atoi(stem)
	if err != nil || n < 0 || !strings.EqualFold(filepath.Ext(name), ext) {
		return 0, fmt.Errorf("%w%s", errNotNumbered, ext)
	}
	return n, nil
}
