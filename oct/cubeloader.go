package oct

import (
	"context"
	"fmt"
	"iter"
	"path"
	"runtime"
)

// Cube is one whole cube in memory: its stacks in slice order and, when
// labelled, its label volume and per-slice detection targets.
type Cube struct {
	Name   string
	W, H   int
	Stacks []*Stack
	// Paths names each stack file, relative to DATA_DIR.
	Paths []string
	// Labels holds the S×H×W classes 0..3 slice by slice (the layout of the
	// official reference <CUBE>_volumes.npy); nil for unlabelled cubes.
	Labels []uint8
	// Targets holds S×3 detection targets (REA, SRF, PED presence per
	// slice); nil for unlabelled cubes.
	Targets []float32
}

// Slices is the number of slices S of the cube.
func (c *Cube) Slices() int { return len(c.Stacks) }

// Labelled tells whether the cube has labels.
func (c *Cube) Labelled() bool { return c.Labels != nil }

// LoadCube reads a whole cube: the stacks 000.png … of e.Images in numerical
// order and, when e.Labels is set, the label (i+1).bmp of every stack i.
// Every file must have the size of the first stack, a multiple of 16. Up to
// workers files are read at once (all CPUs when ≤ 0).
func LoadCube(dataDir string, e CubeEntry, workers int) (*Cube, error) {
	dir := inData(dataDir, e.Images)
	names, err := ContiguousFiles(dir, ".png", 0)
	if err != nil {
		return nil, err
	}
	first := path.Join(e.Images, names[0])
	w, h, err := pngSize(inData(dataDir, first))
	if err != nil {
		return nil, err
	}
	if err := checkMultipleOf16(inData(dataDir, first), w, h); err != nil {
		return nil, err
	}
	c := &Cube{
		Name:   e.Name(),
		W:      w,
		H:      h,
		Stacks: make([]*Stack, len(names)),
		Paths:  make([]string, len(names)),
	}
	area := w * h
	if e.Labels != "" {
		c.Labels = make([]uint8, len(names)*area)
		c.Targets = make([]float32, len(names)*NumLesions)
	}
	err = forEach(len(names), workers, func(i int) error {
		c.Paths[i] = path.Join(e.Images, names[i])
		s, err := ReadStack(inData(dataDir, c.Paths[i]), w, h)
		if err != nil {
			return err
		}
		c.Stacks[i] = s
		if e.Labels == "" {
			return nil
		}
		labelName, err := LabelFileOfStack(names[i])
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		m, err := ReadLabel(inData(dataDir, path.Join(e.Labels, labelName)), w, h)
		if err != nil {
			return err
		}
		copy(c.Labels[i*area:(i+1)*area], m.Class)
		t := m.Targets()
		copy(c.Targets[i*NumLesions:(i+1)*NumLesions], t[:])
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// CubeLoader reads validation or test cubes one after the other, the next
// cube being read while the current one is in use.
type CubeLoader struct {
	dataDir string
	entries []CubeEntry
	workers int
}

// NewCubeLoader returns a loader of the cubes of entries (see ReadValList
// and ReadTestList); workers bounds the files read at once (all CPUs when
// ≤ 0).
func NewCubeLoader(dataDir string, entries []CubeEntry, workers int) *CubeLoader {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	return &CubeLoader{dataDir: dataDir, entries: entries, workers: workers}
}

// Len is the number of cubes.
func (l *CubeLoader) Len() int { return len(l.entries) }

// Cubes yields the cubes in list order. The sequence ends early with an
// error when a cube cannot be read or ctx is done; breaking out of the loop
// waits for the cube being read ahead.
func (l *CubeLoader) Cubes(ctx context.Context) iter.Seq2[*Cube, error] {
	return func(yield func(*Cube, error) bool) {
		type loaded struct {
			cube *Cube
			err  error
		}
		load := func(i int) chan loaded {
			ch := make(chan loaded, 1)
			go func() {
				c, err := LoadCube(l.dataDir, l.entries[i], l.workers)
				ch <- loaded{c, err}
			}()
			return ch
		}
		if len(l.entries) == 0 {
			return
		}
		next := load(0)
		for i := range l.entries {
			var got loaded
			select {
			case got = <-next:
			case <-ctx.Done():
				<-next // wait for the read so that nothing is left running
			}
			// A cancelled ctx wins over a cube that happened to be ready.
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if got.err != nil {
				yield(nil, got.err)
				return
			}
			if i+1 < len(l.entries) {
				next = load(i + 1)
			}
			if !yield(got.cube, nil) {
				if i+1 < len(l.entries) {
					<-next
				}
				return
			}
		}
	}
}
