// Package submission writes the test output of the AI Challenger 2018
// retinal-edema track and computes the challenge's official score of such
// an output against a reference.
//
// A submission holds per test cube <CUBE>_labelMark_volumes.npy (uint8
// labels 0..3, S×H×W) and <CUBE>_labelMark_detections.npy (float32
// per-slice lesion probabilities, S×3), flat in submission.zip.
package submission

import (
	"archive/zip"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"codeberg.org/sbinet/npyio"

	"github.com/edema/edema/internal/atomicfile"

	"github.com/edema/edema/oct"
)

// ZipName is the name of the archive Zip writes.
const ZipName = "submission.zip"

// VolumesFile returns the name of a cube's label volume in a submission.
func VolumesFile(cube string) string { return cube + "_labelMark_volumes.npy" }

// DetectionsFile returns the name of a cube's detection probabilities in a
// submission.
func DetectionsFile(cube string) string { return cube + "_labelMark_detections.npy" }

// Cube is the output of one test cube.
type Cube struct {
	Name                  string
	Slices, Height, Width int
	// Labels holds the predicted label (0..3) of every voxel, S×H×W.
	Labels []uint8
	// Detections holds per slice the probability of each lesion class, S×3.
	Detections []float32
}

func (c *Cube) check() error {
	if c.Name == "" || strings.ContainsAny(c.Name, `/\`) || c.Name == "." || c.Name == ".." {
		return fmt.Errorf("invalid cube name %q", c.Name)
	}
	if c.Slices <= 0 || c.Height <= 0 || c.Width <= 0 {
		return fmt.Errorf("cube %s: invalid shape %d×%d×%d", c.Name, c.Slices, c.Height, c.Width)
	}
	if len(c.Labels) != c.Slices*c.Height*c.Width {
		return fmt.Errorf("cube %s: %d labels for a %d×%d×%d volume", c.Name, len(c.Labels), c.Slices, c.Height, c.Width)
	}
	if len(c.Detections) != c.Slices*oct.NumLesions {
		return fmt.Errorf("cube %s: %d detection probabilities for %d slices of %d classes", c.Name, len(c.Detections), c.Slices, oct.NumLesions)
	}
	for i, l := range c.Labels {
		if l >= oct.NumClasses {
			return fmt.Errorf("cube %s: voxel %d has label %d, want 0..%d", c.Name, i, l, oct.NumClasses-1)
		}
	}
	for i, d := range c.Detections {
		if math.IsNaN(float64(d)) || math.IsInf(float64(d), 0) {
			return fmt.Errorf("cube %s: detection probability %d is %g", c.Name, i, d)
		}
	}
	return nil
}

// WriteCube writes a cube's two files into dir, each to a temporary file
// renamed into place, so that no half-written file is ever left.
func WriteCube(dir string, c Cube) error {
	if err := c.check(); err != nil {
		return err
	}
	detections := make([][oct.NumLesions]float32, c.Slices)
	for s := range detections {
		copy(detections[s][:], c.Detections[s*oct.NumLesions:])
	}

	if err := atomicfile.Write(filepath.Join(dir, VolumesFile(c.Name)), func(w io.Writer) error {
		return oct.EncodeLabelsNPY(w, c.Labels, c.Slices, c.Height, c.Width)
	}); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, DetectionsFile(c.Name)), func(w io.Writer) error {
		return npyio.Write(w, detections)
	})
}

// Zip writes dir/submission.zip holding, at its top level, the two files of
// each cube, as WriteCube wrote them into dir. It returns the archive's
// path.
func Zip(dir string, cubes []string) (string, error) {
	if len(cubes) == 0 {
		return "", fmt.Errorf("no cube to zip")
	}
	seen := make(map[string]bool, len(cubes))
	for _, cube := range cubes {
		if seen[cube] {
			return "", fmt.Errorf("cube %s listed twice", cube)
		}
		seen[cube] = true
	}
	path := filepath.Join(dir, ZipName)
	err := atomicfile.Write(path, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for _, cube := range cubes {
			for _, name := range []string{VolumesFile(cube), DetectionsFile(cube)} {
				if err := addToZip(zw, dir, name); err != nil {
					return err
				}
			}
		}
		return zw.Close()
	})
	if err != nil {
		return "", err
	}
	return path, nil
}

// zipTime is the modification time of every member of a submission.zip:
// the earliest a zip file can record.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func addToZip(zw *zip.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	// A fixed time and mode make the archive a function of its files, so
	// the same predictions give the same bytes whoever wrote them and when
	// (one process or the ranks of a job).
	header := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: zipTime}
	header.SetMode(0o644)
	w, err := zw.CreateHeader(header)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("adding %s to %s: %w", name, ZipName, err)
	}
	return nil
}
