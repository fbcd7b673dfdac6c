package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/internal/npyheader"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/jit"
)

// forwardCommand runs a network on a NumPy array, the way to check a
// ported network against PyTorch.
func forwardCommand() *cli.Command {
	return &cli.Command{
		Name:  "forward",
		Usage: "run a network or a TorchScript module in evaluation mode on a .npy input and write its raw outputs as .npy",
		Description: "Reads --input, a float32 N×3×H×W NumPy array of already normalised slices (H and W multiples\n" +
			"of 16), runs the network of --checkpoint in evaluation mode and writes --seg-out, the float32\n" +
			"N×4×H×W log-probabilities, and --cls-out, the float32 N×3 detection probabilities: what the\n" +
			"PyTorch model returns on the same input, for comparing the two.\n\n" +
			"--torchscript FILE runs a TorchScript module instead (torch.jit.save's output, scripted or\n" +
			"traced), in evaluation mode, on batches of --input (float32, any shape N×...) along its first\n" +
			"axis. Its forward returns a tensor, written to --seg-out, or two, written to --seg-out and\n" +
			"--cls-out, each with N as its first axis; every output is written as float32. A module traced\n" +
			"in training mode keeps training-mode batch norm and dropout: trace it after model.eval().",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "network: " + strings.Join(models.Names(), " | ") + " (required without --torchscript)"},
			&cli.StringFlag{Name: "checkpoint", Usage: "its checkpoint (the original's or ours, any PyTorch format or safetensors; required without --torchscript)"},
			&cli.StringFlag{Name: "torchscript", Usage: "a TorchScript module to run instead of a network"},
			&cli.StringFlag{Name: "input", Required: true, Usage: "X.npy: float32 N×3×H×W"},
			&cli.StringFlag{Name: "seg-out", Required: true, Usage: "where to write the float32 N×4×H×W log-probabilities (a TorchScript module's first output)"},
			&cli.StringFlag{Name: "cls-out", Usage: "where to write the float32 N×3 detection probabilities (a TorchScript module's second output; required without --torchscript)"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu | cuda | cuda:N"},
			&cli.IntFlag{Name: "batch-size", Value: models.DefaultBatchSize, Usage: "slices per forward pass"},
			ampFlag(),
			layoutFlag(),
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
	precision, err := precisionFromFlags(c, device)
	if err != nil {
		return err
	}
	script := c.String("torchscript")
	if script != "" {
		for _, flag := range []string{"model", "checkpoint", "channels-last"} {
			if c.IsSet(flag) {
				return &usageErr{fmt.Errorf("--%s does not apply to --torchscript, which holds its own code and weights", flag)}
			}
		}
	} else {
		var missing []string
		for _, flag := range []string{"model", "checkpoint", "cls-out"} {
			if !c.IsSet(flag) {
				missing = append(missing, "--"+flag)
			}
		}
		if len(missing) > 0 {
			return &usageErr{fmt.Errorf("%s required without --torchscript (see --help)", strings.Join(missing, ", "))}
		}
	}
	if c.IsSet("cls-out") && samePath(c.String("seg-out"), c.String("cls-out")) {
		return fmt.Errorf("--seg-out and --cls-out are the same file %s: one output would replace the other", c.String("seg-out"))
	}
	if samePath(c.String("input"), c.String("seg-out")) || samePath(c.String("input"), c.String("cls-out")) {
		return fmt.Errorf("an output is the --input file %s: it would be replaced", c.String("input"))
	}
	x, shape, err := readInputNPY(c.String("input"), script == "")
	if err != nil {
		return err
	}
	if script != "" {
		return forwardTorchScript(c, script, device, precision, batch, x, shape)
	}
	n, h, w := shape[0], shape[2], shape[3]
	if name := c.String("model"); !models.Outputs(name).Has(oct.Segmentation) && models.Outputs(name) != 0 {
		return fmt.Errorf("--model %s has no segmentation output for --seg-out: it only detects (evaluate it with edema eval)", name)
	}
	m, err := inference.LoadNetwork(c.String("model"), c.String("checkpoint"), device)
	if err != nil {
		return err
	}
	defer m.Free()
	if err := layoutFromFlags(c).Apply(m); err != nil {
		return fmt.Errorf("--channels-last: %w", err)
	}

	seg := make([]float32, n*4*h*w)
	det := make([]float32, n*oct.NumLesions)
	in, out := 3*h*w, 4*h*w
	for at := 0; at < n; at += batch {
		k := min(batch, n-at)
		if err := forwardBatch(m, precision, x[at*in:(at+k)*in], k, h, w, seg[at*out:(at+k)*out], det[at*oct.NumLesions:(at+k)*oct.NumLesions]); err != nil {
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
func forwardBatch(m *models.Model, precision models.Precision, images []float32, k, h, w int, seg, det []float32) (err error) {
	defer torch.Recover(&err)
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.FromSlice(images, int64(k), 3, int64(h), int64(w)).ToDevice(m.Device())
		var sg, dt *torch.Tensor
		if sg, dt, err = precision.Forward(m.Device(), func() (*torch.Tensor, *torch.Tensor, error) { return m.Forward(x) }); err != nil {
			return
		}
		torch.CopyInto(seg, sg.To(torch.Float32))
		torch.CopyInto(det, dt.To(torch.Float32))
	})
	return err
}

// readInputNPY reads a little-endian float32 array in C order, with an
// error that names what is wrong: for a network (network set), N×3×H×W
// with H and W multiples of 16; otherwise of any shape N×... with N ≥ 1.
func readInputNPY(path string, network bool) ([]float32, []int, error) {
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
	if network {
		if len(shape) != 4 || shape[1] != 3 || shape[0] < 1 {
			return nil, nil, fmt.Errorf("%s has shape %s, want N×3×H×W with N ≥ 1 (the slice and its two neighbours)", path, shapeString(shape))
		}
		if h, w := shape[2], shape[3]; h < 1 || w < 1 || h%models.DivisibleBy != 0 || w%models.DivisibleBy != 0 {
			return nil, nil, fmt.Errorf("%s has shape %s: H and W must be positive multiples of %d", path, shapeString(shape), models.DivisibleBy)
		}
	} else if len(shape) < 1 || shape[0] < 1 {
		return nil, nil, fmt.Errorf("%s has shape %s, want N×... with N ≥ 1 (a batch along the first axis)", path, shapeString(shape))
	}
	const maxElements = 1 << 34
	count := int64(1)
	for _, d := range shape {
		if d < 1 {
			return nil, nil, fmt.Errorf("%s has shape %s, with an empty axis", path, shapeString(shape))
		}
		if count *= int64(d); count > maxElements {
			return nil, nil, fmt.Errorf("%s has shape %s, too large", path, shapeString(shape))
		}
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

// forwardTorchScript runs the TorchScript module at path in evaluation
// mode on x, batch by batch along its first axis, and writes its one or
// two outputs to --seg-out and --cls-out.
func forwardTorchScript(c *cli.Context, path string, device torch.Device, precision models.Precision, batch int, x []float32, shape []int) error {
	m, err := jit.Load(path, device)
	if err != nil {
		return fmt.Errorf("--torchscript: %w", err)
	}
	defer m.Free()
	if err := m.Eval(); err != nil {
		return err
	}
	n, per := shape[0], len(x)/shape[0]
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	var outs [][]float32 // per output, its elements so far
	var outShapes [][]int
	for at := 0; at < n; at += batch {
		k := min(batch, n-at)
		dims[0] = int64(k)
		got, err := forwardModuleBatch(m, x[at*per:(at+k)*per], dims, device, precision)
		if err != nil {
			return fmt.Errorf("--torchscript %s: %w", path, err)
		}
		if outs == nil {
			// The outputs' count against the flags, before the rest runs.
			switch {
			case len(got) == 1 && c.IsSet("cls-out"):
				return fmt.Errorf("--torchscript %s returns one tensor: --cls-out has nothing to hold", path)
			case len(got) == 2 && !c.IsSet("cls-out"):
				return fmt.Errorf("--torchscript %s returns two tensors: --cls-out must say where the second goes", path)
			}
			outs = make([][]float32, len(got))
			for _, g := range got {
				outShapes = append(outShapes, append([]int{n}, g.shape[1:]...))
			}
		}
		if len(got) != len(outs) {
			return fmt.Errorf("--torchscript %s: %d outputs for one batch, %d for another", path, len(outs), len(got))
		}
		for i, g := range got {
			if g.shape[0] != k || !slices.Equal(g.shape[1:], outShapes[i][1:]) {
				return fmt.Errorf("--torchscript %s: output %d of a batch of %d has shape %s, not a batch of %d outputs of shape %s",
					path, i+1, k, shapeString(g.shape), k, shapeString(outShapes[i][1:]))
			}
			outs[i] = append(outs[i], g.data...)
		}
	}
	files := []string{c.String("seg-out"), c.String("cls-out")}
	var wrote []string
	for i, data := range outs {
		if err := writeFloat32NPY(files[i], data, outShapes[i]); err != nil {
			return err
		}
		wrote = append(wrote, fmt.Sprintf("%s (%s)", files[i], shapeString(outShapes[i])))
	}
	fmt.Fprintf(c.App.Writer, "%s on %s: wrote %s\n", filepath.Base(path), shapeString(shape), strings.Join(wrote, " and "))
	return nil
}

// moduleOutput is one output tensor of a module, as float32 on the host.
type moduleOutput struct {
	data  []float32
	shape []int
}

// forwardModuleBatch runs one batch through m, under autocast in a mixed
// precision: its forward returns a tensor, or a tuple or list of one or
// two.
func forwardModuleBatch(m *jit.Module, images []float32, dims []int64, device torch.Device, precision models.Precision) (outs []moduleOutput, err error) {
	defer torch.Recover(&err)
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		var result any
		x := torch.FromSlice(images, dims...).ToDevice(device)
		if precision == models.Float32 {
			result, err = m.Forward(x)
		} else if aerr := torch.Autocast(device, precision.DType(), func() { result, err = m.Forward(x) }); aerr != nil {
			err = aerr
		}
		if err != nil {
			return
		}
		var tensors []any
		switch r := result.(type) {
		case *torch.Tensor:
			tensors = []any{r}
		case jit.Tuple:
			tensors = r
		case []*torch.Tensor:
			for _, t := range r {
				tensors = append(tensors, t)
			}
		default:
			err = fmt.Errorf("forward returned a %s, want a tensor or a tuple of one or two", describe(result))
			return
		}
		if len(tensors) < 1 || len(tensors) > 2 {
			err = fmt.Errorf("forward returned %d values, want one or two tensors", len(tensors))
			return
		}
		for i, v := range tensors {
			t, ok := v.(*torch.Tensor)
			if !ok {
				err = fmt.Errorf("forward's output %d is a %s, want a tensor", i+1, describe(v))
				return
			}
			shape := make([]int, 0, t.Dim())
			for _, d := range t.Shape() {
				shape = append(shape, int(d))
			}
			if len(shape) == 0 {
				err = fmt.Errorf("forward's output %d is a scalar, want a batch", i+1)
				return
			}
			outs = append(outs, moduleOutput{data: t.To(torch.Float32).Float32s(), shape: shape})
		}
	})
	return outs, err
}

// describe names the Go type of a TorchScript result for an error.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case jit.Tuple:
		return "tuple"
	case []any:
		return "list"
	case map[string]any, map[string]*torch.Tensor, map[int64]any:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}
