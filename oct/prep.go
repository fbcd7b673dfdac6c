package oct

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
)

// PrepStats tells what Prep wrote for one set.
type PrepStats struct {
	Set    Set
	Cubes  int
	Slices int
}

// Progress reports how far a long pass over a data folder is: done of
// total items of what ("cubes", "training stacks", ...).
type Progress func(what string, done, total int)

// Prep makes trans3channel_images from original_images for every set of
// DATA_DIR that has original images, overwriting earlier stacks. workers
// bounds the number of files processed at once (all CPUs when ≤ 0);
// progress, when not nil, is called after each cube.
func Prep(dataDir string, workers int, progress Progress) ([]PrepStats, error) {
	type job struct {
		set  Set
		cube string
	}
	var jobs []job
	sets := map[Set]bool{}
	for _, s := range Sets {
		cubes, err := Cubes(dataDir, s)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sets[s] = true
		for _, c := range cubes {
			jobs = append(jobs, job{s, c})
		}
	}
	var stats []PrepStats
	for _, s := range Sets {
		if sets[s] {
			stats = append(stats, PrepStats{Set: s})
		}
	}
	for i, j := range jobs {
		n, err := PrepCube(inData(dataDir, j.set.OriginalDir(j.cube)), inData(dataDir, j.set.StackDir(j.cube)), workers)
		if err != nil {
			return nil, err
		}
		for k := range stats {
			if stats[k].Set == j.set {
				stats[k].Cubes++
				stats[k].Slices += n
			}
		}
		if progress != nil {
			progress("cubes", i+1, len(jobs))
		}
	}
	if len(stats) == 0 {
		return nil, fmt.Errorf("%s: no set with %s (looked for %s, %s, %s)", dataDir, OriginalImages, Training, Validation, Test)
	}
	return stats, nil
}

// PrepCube stacks the numbered B-scans of srcDir (1.bmp … S.bmp, in numerical
// order) into dstDir/000.png … (S-1).png and returns S. Stack i holds slices
// (i+1, i, i-1) as channels (red, green, blue), the first and last slices
// standing in for their missing neighbours: stack 0 is (1, 0, 0) and stack
// S-1 is (S-1, S-1, S-2). This is the order in which the original
// preprocessing's OpenCV BGR write left the slices (i-1, i, i+1), and the
// order ported weights expect.
func PrepCube(srcDir, dstDir string, workers int) (int, error) {
	scans, err := ReadScans(srcDir, workers)
	if err != nil {
		return 0, err
	}
	stacks, err := StackScans(scans)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return 0, err
	}
	err = forEach(len(stacks), workers, func(i int) error {
		return WriteStack(filepath.Join(dstDir, StackFile(i)), stacks[i])
	})
	if err != nil {
		return 0, err
	}
	// Stacks of an earlier prep of a longer cube would read as slices of
	// this one.
	if err := removeStaleStacks(dstDir, len(scans)); err != nil {
		return 0, err
	}
	return len(scans), nil
}

// removeStaleStacks removes the stacks of dir numbered n or more.
func removeStaleStacks(dir string, n int) error {
	names, err := NumberedFiles(dir, ".png")
	if err != nil {
		return err
	}
	for _, name := range names {
		if k, _ := fileNumber(name, ".png"); k >= n {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("removing the stale stack of an earlier prep: %w", err)
			}
		}
	}
	return nil
}

// ReadScans reads the B-scans 1.bmp … S.bmp of a cube folder of
// original_images, numbered without a gap, all of one size. Up to workers
// files are read at once (all CPUs when ≤ 0).
func ReadScans(dir string, workers int) ([]*image.Gray, error) {
	names, err := ContiguousFiles(dir, ".bmp", 1)
	if err != nil {
		return nil, err
	}
	scans := make([]*image.Gray, len(names))
	err = forEach(len(names), workers, func(i int) error {
		g, err := ReadSlice(filepath.Join(dir, names[i]))
		scans[i] = g
		return err
	})
	if err != nil {
		return nil, err
	}
	size := scans[0].Rect.Size()
	for i, g := range scans {
		if err := checkSize(filepath.Join(dir, names[i]), g.Rect.Dx(), g.Rect.Dy(), size.X, size.Y); err != nil {
			return nil, fmt.Errorf("%w (like %s)", err, names[0])
		}
	}
	return scans, nil
}
