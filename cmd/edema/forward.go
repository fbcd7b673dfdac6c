package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/internal/npyheader"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// forwardCommand runs a network on a NumPy array, the way to check a
// ported network against PyTorch.
func forwardCommand() *cli.Command {
	return &cli.Command{
		Name:  "forward",
		Usage: "run a network in evaluation mode on a .npy input and write its raw outputs as .npy",
		Description: "Reads --input, a float32 N×3×H×W NumPy array of already normalised slices (H and W multiples\n" +
			"of 16), runs the network of --checkpoint in evaluation mode and writes --seg-out, the float32\n" +
			"N×4×H×W log-probabilities, and --cls-out, the float32 N×3 detection probabilities: what the\n" +
			"PyTorch model returns on the same input, for comparing the two.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "network: " + strings.Join(models.Names(), " | ")},
			&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "its checkpoint (the original's or ours, any PyTorch format or safetensors)"},
			&cli.StringFlag{Name: "input", Required: true, Usage: "X.npy: float32 N×3×H×W"},
			&cli.StringFlag{Name: "seg-out", Required: true, Usage: "where to write the float32 N×4×H×W log-probabilities"},
			&cli.StringFlag{Name: "cls-out", Required: true, Usage: "where to write the float32 N×3 detection probabilities"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu | cuda | cuda:N"},
			&cli.IntFlag{Name: "batch-size", Value: models.DefaultBatchSize, Usage: "slices per forward pass"},
		},
		Action: func(c *cli.Context) error {
			if err := runForward(c); err != nil {
				return fmt.Errorf("forward: %w", err)
			}
			return nil
		},
	}
}

func runForward(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	device, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	batch := c.Int("batch-size")
	if batch < 1 {
		return fmt.Errorf("--batch-size must be at least 1, got %d", batch)
	}
	if samePath(c.String("seg-out"), c.String("cls-out")) {
		return fmt.Errorf("--seg-out and --cls-out are the same file %s: one output would replace the other", c.String("seg-out"))
	}
	if samePath(c.String("input"), c.String("seg-out")) || samePath(c.String("input"), c.String("cls-out")) {
		return fmt.Errorf("an output is the --input file %s: it would be replaced", c.String("input"))
	}
	x, shape, err := readInputNPY(c.String("input"))
	if err != nil {
		return err
	}
	n, h, w := shape[0], shape[2], shape[3]
	m, err := inference.LoadNetwork(c.String("model"), c.String("checkpoint"), device)
	if err != nil {
		return err
	}
	defer m.Free()

	seg := make([]float32, n*4*h*w)
	det := make([]float32, n*oct.NumLesions)
	in, out := 3*h*w, 4*h*w
	for at := 0; at < n; at += batch {
		k := min(batch, n-at)
		if err := forwardBatch(m, x[at*in:(at+k)*in], k, h, w, seg[at*out:(at+k)*out], det[at*oct.NumLesions:(at+k)*oct.NumLesions]); err != nil {
			return err
		}
	}
	if err := writeFloat32NPY(c.String("seg-out"), seg, []int{n, 4, h, w}); err != nil {
		return err
	}
	if err := writeFloat32NPY(c.String("cls-out"), det, []int{n, oct.NumLesions}); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s on %d×3×%d×%d: wrote %s (%d×4×%d×%d log-probabilities) and %s (%d×3 detection probabilities)\n",
		m.Name(), n, h, w, c.String("seg-out"), n, h, w, c.String("cls-out"), n)
	return nil
}

// samePath reports whether two paths name the same file, by their cleaned
// absolute paths or, for existing files, by identity (links included).
func samePath(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	if errA == nil && errB == nil && absA == absB {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// forwardBatch runs k slices through the network and copies its outputs
// into seg and det.
func forwardBatch(m *models.Model, images []float32, k, h, w int, seg, det []float32) (err error) {
	defer torch.Recover(&err)
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.FromSlice(images, int64(k), 3, int64(h), int64(w)).ToDevice(m.Device())
		var sg, dt *torch.Tensor
		if sg, dt, err = m.Forward(x); err != nil {
			return
		}
		torch.CopyInto(seg, sg.To(torch.Float32))
		torch.CopyInto(det, dt.To(torch.Float32))
	})
	return err
}

// readInputNPY reads a little-endian float32 N×3×H×W array in C order, H
// and W multiples of 16, with an error that names what is wrong.
func readInputNPY(path string) ([]float32, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// npyio reads the header in exact pieces, so the file's offset then
	// marks the start of the data; the data, which it reads one element at
	// a time, go through a buffer.
	src := &switchReader{r: f}
	r, err := npyheader.NewReader(src)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a NumPy .npy file: %w", path, err)
	}
	hdr := r.Header.Descr
	if hdr.Type != "'<f4'" && hdr.Type != "<f4" {
		return nil, nil, fmt.Errorf("%s holds %s, want little-endian float32 ('<f4'): convert with x.astype('<f4')", path, dtypeName(hdr.Type))
	}
	if hdr.Fortran {
		return nil, nil, fmt.Errorf("%s is in Fortran order, want C order: save np.ascontiguousarray(x)", path)
	}
	shape := hdr.Shape
	if len(shape) != 4 || shape[1] != 3 || shape[0] < 1 {
		return nil, nil, fmt.Errorf("%s has shape %s, want N×3×H×W with N ≥ 1 (the slice and its two neighbours)", path, shapeString(shape))
	}
	h, w := shape[2], shape[3]
	if h < 1 || w < 1 || h%models.DivisibleBy != 0 || w%models.DivisibleBy != 0 {
		return nil, nil, fmt.Errorf("%s has shape %s: H and W must be positive multiples of %d", path, shapeString(shape), models.DivisibleBy)
	}
	const maxElements = 1 << 34
	count := int64(shape[0]) * 3 * int64(h) * int64(w)
	if count > maxElements {
		return nil, nil, fmt.Errorf("%s has shape %s, too large", path, shapeString(shape))
	}
	offset, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if got, want := st.Size()-offset, 4*count; got != want {
		return nil, nil, fmt.Errorf("%s holds %d bytes of data, its shape %s needs %d", path, got, shapeString(shape), want)
	}
	src.buffer()
	data := make([]float32, count)
	if err := r.Read(&data); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, shape, nil
}

// switchReader reads straight from r until buffer is called, then through
// a buffer.
type switchReader struct {
	r io.Reader
}

func (s *switchReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *switchReader) buffer() {
	s.r = bufio.NewReaderSize(s.r, 1<<20)
}

// writeFloat32NPY writes data as a little-endian float32 array of the
// given shape, replacing path atomically.
func writeFloat32NPY(path string, data []float32, shape []int) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		if err := npyheader.WriteHeader(w, "<f4", shape); err != nil {
			return err
		}
		buf := make([]byte, 0, 1<<16)
		for i, v := range data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) || i == len(data)-1 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return nil
	})
}

func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, s := range shape {
		parts[i] = fmt.Sprint(s)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// dtypeName names a NumPy dtype descr such as '<f8' (float64) for people.
func dtypeName(descr string) string {
	d := strings.Trim(descr, "'\"")
	names := map[string]string{
		"f2": "float16", "f4": "float32", "f8": "float64",
		"i1": "int8", "i2": "int16", "i4": "int32", "i8": "int64",
		"u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64", "b1": "bool",
	}
	if len(d) == 3 {
		if name, ok := names[d[1:]]; ok {
			if d[0] == '>' {
				return "big-endian " + name + " ('" + d + "')"
			}
			return name + " ('" + d + "')"
		}
	}
	return "dtype " + descr
}
