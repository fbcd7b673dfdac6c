package oct

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/edema/edema/internal/atomicfile"
)

// Files of a list folder (LIST_DIR). Every line of a list is a path relative
// to DATA_DIR.
const (
	TrainImagesList = "train_images.txt" // one stack PNG per line
	TrainLabelsList = "train_labels.txt" // its label BMP, line by line
	ValImagesList   = "val_images.txt"   // one cube folder of stacks per line
	ValLabelsList   = "val_labels.txt"   // its label folder, line by line
	TestImagesList  = "test_images.txt"  // one cube folder of stacks per line
	InfoFile        = "info.json"        // statistics of the training stacks
	TestInfoFile    = "info_test.json"   // statistics of the test stacks
)

// Sample is one training slice: its stack PNG and label BMP, relative to
// DATA_DIR.
type Sample struct {
	Image, Label string
}

// CubeEntry is one validation or test cube: its folder of stack PNGs and,
// when labelled, its folder of label BMPs, relative to DATA_DIR.
type CubeEntry struct {
	Images, Labels string
}

// Name is the cube's name.
func (e CubeEntry) Name() string { return CubeName(e.Images) }

// ReadTrainList reads train_images.txt and train_labels.txt of a list folder.
func ReadTrainList(listDir string) ([]Sample, error) {
	images, labels, err := readPairedLists(listDir, TrainImagesList, TrainLabelsList)
	if err != nil {
		return nil, err
	}
	samples := make([]Sample, len(images))
	for i := range images {
		samples[i] = Sample{Image: images[i], Label: labels[i]}
	}
	return samples, nil
}

// ReadValList reads val_images.txt and val_labels.txt of a list folder.
func ReadValList(listDir string) ([]CubeEntry, error) {
	images, labels, err := readPairedLists(listDir, ValImagesList, ValLabelsList)
	if err != nil {
		return nil, err
	}
	cubes := make([]CubeEntry, len(images))
	for i := range images {
		cubes[i] = CubeEntry{Images: images[i], Labels: labels[i]}
	}
	return cubes, nil
}

// ReadTestList reads test_images.txt of a list folder.
func ReadTestList(listDir string) ([]CubeEntry, error) {
	images, err := readList(filepath.Join(listDir, TestImagesList))
	if err != nil {
		return nil, err
	}
	cubes := make([]CubeEntry, len(images))
	for i, im := range images {
		cubes[i] = CubeEntry{Images: im}
	}
	return cubes, nil
}

func readPairedLists(listDir, imageList, labelList string) (images, labels []string, err error) {
	imagePath, labelPath := filepath.Join(listDir, imageList), filepath.Join(listDir, labelList)
	if images, err = readList(imagePath); err != nil {
		return nil, nil, err
	}
	if labels, err = readList(labelPath); err != nil {
		return nil, nil, err
	}
	if len(images) != len(labels) {
		return nil, nil, fmt.Errorf("%s has %d lines but %s has %d", imagePath, len(images), labelPath, len(labels))
	}
	return images, labels, nil
}

// readList reads the non-empty lines of a list file.
func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: empty list", path)
	}
	return lines, nil
}

// writeList writes one path per line, replacing path atomically.
func writeList(path string, lines []string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		for _, l := range lines {
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListStats tells what WriteLists wrote.
type ListStats struct {
	TrainSlices int   // lines of train_images.txt; 0 without a training set
	ValCubes    int   // lines of val_images.txt; 0 without a validation set
	TestCubes   int   // lines of test_images.txt; 0 without a test set
	Info        *Info // statistics written to info.json, if any
	TestInfo    *Info // statistics written to info_test.json, if any
}

// WriteLists writes the list folder of a prepared data folder (see Prep):
// the list files of every set present, info.json over all training stacks
// and info_test.json over all test stacks. The statistics are those of
// pixel/255 per channel over every pixel of every stack, the standard
// deviation being the population one (NumPy's np.std, ddof = 0). (The
// original computed them once over 2000 randomly drawn training slices.)
// workers bounds the number of files read at once; progress, when not
// nil, is called after each stack the statistics read ("training stacks",
// then "test stacks").
func WriteLists(dataDir, listDir string, workers int, progress Progress) (*ListStats, error) {
	present := map[Set]bool{}
	for _, s := range Sets {
		st, err := os.Stat(inData(dataDir, string(s)))
		switch {
		case err == nil && st.IsDir():
			present[s] = true
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if len(present) == 0 {
		return nil, fmt.Errorf("%s holds none of %s, %s, %s", dataDir, Training, Validation, Test)
	}
	if err := os.MkdirAll(listDir, 0o755); err != nil {
		return nil, err
	}
	stats := &ListStats{}

	if present[Training] {
		samples, err := trainingSamples(dataDir)
		if err != nil {
			return nil, err
		}
		images := make([]string, len(samples))
		labels := make([]string, len(samples))
		for i, s := range samples {
			images[i], labels[i] = s.Image, s.Label
		}
		info, err := computeInfo(dataDir, images, workers, progress, "training stacks")
		if err != nil {
			return nil, err
		}
		if err := writeList(filepath.Join(listDir, TrainImagesList), images); err != nil {
			return nil, err
		}
		if err := writeList(filepath.Join(listDir, TrainLabelsList), labels); err != nil {
			return nil, err
		}
		if err := WriteInfo(filepath.Join(listDir, InfoFile), info); err != nil {
			return nil, err
		}
		stats.TrainSlices, stats.Info = len(samples), &info
	}

	if present[Validation] {
		cubes, err := preparedCubes(dataDir, Validation)
		if err != nil {
			return nil, err
		}
		var images, labels []string
		for _, c := range cubes {
			if _, err := NumberedFiles(inData(dataDir, Validation.StackDir(c)), ".png"); err != nil {
				return nil, err
			}
			if _, err := NumberedFiles(inData(dataDir, Validation.LabelDir(c)), ".bmp"); err != nil {
				return nil, err
			}
			images = append(images, Validation.StackDir(c))
			labels = append(labels, Validation.LabelDir(c))
		}
		if err := writeList(filepath.Join(listDir, ValImagesList), images); err != nil {
			return nil, err
		}
		if err := writeList(filepath.Join(listDir, ValLabelsList), labels); err != nil {
			return nil, err
		}
		stats.ValCubes = len(cubes)
	}

	if present[Test] {
		cubes, err := preparedCubes(dataDir, Test)
		if err != nil {
			return nil, err
		}
		var folders, stacks []string
		for _, c := range cubes {
			names, err := NumberedFiles(inData(dataDir, Test.StackDir(c)), ".png")
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				stacks = append(stacks, path.Join(Test.StackDir(c), n))
			}
			folders = append(folders, Test.StackDir(c))
		}
		info, err := computeInfo(dataDir, stacks, workers, progress, "test stacks")
		if err != nil {
			return nil, err
		}
		if err := writeList(filepath.Join(listDir, TestImagesList), folders); err != nil {
			return nil, err
		}
		if err := WriteInfo(filepath.Join(listDir, TestInfoFile), info); err != nil {
			return nil, err
		}
		stats.TestCubes, stats.TestInfo = len(cubes), &info
	}
	return stats, nil
}

// preparedCubes lists a set's prepared cubes with an error that says what to
// do when there are none.
func preparedCubes(dataDir string, s Set) ([]string, error) {
	cubes, err := PreparedCubes(dataDir, s)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: run `edema prep` first (%w)", inData(dataDir, string(s)), StackImages, err)
	}
	return cubes, err
}

// trainingSamples pairs every training stack with its label file, which must
// exist.
func trainingSamples(dataDir string) ([]Sample, error) {
	cubes, err := preparedCubes(dataDir, Training)
	if err != nil {
		return nil, err
	}
	var samples []Sample
	for _, c := range cubes {
		names, err := ContiguousFiles(inData(dataDir, Training.StackDir(c)), ".png", 0)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			label, err := LabelFileOfStack(n)
			if err != nil {
				return nil, err
			}
			s := Sample{
				Image: path.Join(Training.StackDir(c), n),
				Label: path.Join(Training.LabelDir(c), label),
			}
			if _, err := os.Stat(inData(dataDir, s.Label)); err != nil {
				return nil, fmt.Errorf("label of %s: %w", s.Image, err)
			}
			samples = append(samples, s)
		}
	}
	return samples, nil
}

// ComputeInfo returns the per-channel mean and population standard
// deviation of pixel/255 over every pixel of the given stacks (paths relative
// to DATA_DIR), reading up to workers files at once.
func ComputeInfo(dataDir string, stacks []string, workers int) (Info, error) {
	return computeInfo(dataDir, stacks, workers, nil, "")
}

func computeInfo(dataDir string, stacks []string, workers int, progress Progress, what string) (Info, error) {
	if len(stacks) == 0 {
		return Info{}, errors.New("no stacks to compute statistics over")
	}
	// Per-channel histograms add up exactly whatever the order of the files,
	// and give mean and variance without loss of precision.
	var (
		mu    sync.Mutex
		total [3][256]uint64
		done  int // stacks read, under mu
	)
	err := forEach(len(stacks), workers, func(i int) error {
		s, err := ReadStack(inData(dataDir, stacks[i]), 0, 0)
		if err != nil {
			return err
		}
		var h [3][256]uint64
		for c := range 3 {
			for _, v := range s.Channel(c) {
				h[c][v]++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for c := range 3 {
			for v := range 256 {
				total[c][v] += h[c][v]
			}
		}
		if done++; progress != nil {
			progress(what, done, len(stacks))
		}
		return nil
	})
	if err != nil {
		return Info{}, err
	}
	var info Info
	for c := range 3 {
		var n, sum float64
		for v, k := range total[c] {
			n += float64(k)
			sum += float64(k) * float64(v)
		}
		mean := sum / n
		var ss float64
		for v, k := range total[c] {
			d := float64(v) - mean
			ss += float64(k) * d * d
		}
		info.Mean[c] = mean / 255
		info.Std[c] = math.Sqrt(ss/n) / 255
	}
	return info, nil
}
