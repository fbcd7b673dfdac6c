package submission

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"codeberg.org/sbinet/npyio"

	"github.com/edema/edema/internal/npyheader"
)

// dtype is the element type of a .npy file: a NumPy kind ('b' bool, 'i'
// signed, 'u' unsigned, 'f' float) and a size in bytes.
type dtype struct {
	kind byte
	size int
}

var (
	uint8Type   = dtype{'u', 1}
	float32Type = dtype{'f', 4}
	float64Type = dtype{'f', 8}
)

// parseDtype reads the descr of a .npy header, such as '<i8' or '|u1'
// (quotes included). Only plain numbers and booleans are recognised.
func parseDtype(descr string) (dtype, error) {
	s := strings.Trim(descr, "'\"")
	if len(s) >= 3 && strings.ContainsRune("<>|=", rune(s[0])) {
		size, err := strconv.Atoi(s[2:])
		if err == nil {
			d := dtype{s[1], size}
			switch {
			case d.kind == 'b' && size == 1,
				(d.kind == 'i' || d.kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8),
				d.kind == 'f' && (size == 4 || size == 8):
				return d, nil
			}
		}
	}
	return dtype{}, fmt.Errorf("unsupported dtype %s", descr)
}

func (d dtype) integer() bool { return d.kind == 'i' || d.kind == 'u' }

func (d dtype) String() string {
	switch d.kind {
	case 'b':
		return "bool"
	case 'i':
		return fmt.Sprintf("int%d", 8*d.size)
	case 'u':
		return fmt.Sprintf("uint%d", 8*d.size)
	case 'f':
		return fmt.Sprintf("float%d", 8*d.size)
	}
	return fmt.Sprintf("%c%d", d.kind, d.size)
}

// npyArray is an open .npy file whose header has been read.
type npyArray struct {
	r       *npyio.Reader
	data    *bufio.Reader
	closer  io.Closer
	dtype   dtype
	shape   []int
	fortran bool
}

// openNPY opens a .npy file of fsys and reads its header. It checks that the
// file is long enough for the data its header announces, so that a corrupt
// shape never leads to a huge allocation.
func openNPY(fsys fs.FS, name string) (arr *npyArray, err error) {
	info, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	data := bufio.NewReaderSize(f, 1<<20)
	header := &countingReader{r: data}
	r, err := npyheader.NewReader(header)
	if err != nil {
		return nil, fmt.Errorf("not a valid .npy file: %w", err)
	}
	d, err := parseDtype(r.Header.Descr.Type)
	if err != nil {
		return nil, err
	}
	arr = &npyArray{r: r, data: data, closer: f, dtype: d, shape: r.Header.Descr.Shape, fortran: r.Header.Descr.Fortran}
	available := info.Size() - header.n
	n := int64(1)
	for _, dim := range arr.shape {
		if dim < 0 {
			return nil, fmt.Errorf("invalid shape %s", shapeString(arr.shape))
		}
		n *= int64(dim)
		if n > available {
			break
		}
	}
	if n*int64(d.size) > available {
		return nil, fmt.Errorf("%d bytes of data are too few for %s data of shape %s", available, d, shapeString(arr.shape))
	}
	return arr, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (a *npyArray) Close() error { return a.closer.Close() }

// finish reads the file to its end after the data has been decoded, so that
// a zip entry's checksum is verified.
func (a *npyArray) finish() error {
	if _, err := io.Copy(io.Discard, a.data); err != nil {
		return fmt.Errorf("reading past the data: %w", err)
	}
	return nil
}

func (a *npyArray) len() int {
	n := 1
	for _, dim := range a.shape {
		n *= dim
	}
	return n
}

func shapeString(shape []int) string {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	if len(dims) == 1 {
		return "(" + dims[0] + ",)"
	}
	return "(" + strings.Join(dims, ", ") + ")"
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// number is an element type npyio decodes.
type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// chunkLen bounds the temporary buffer of a conversion, so that a 64-bit
// volume is never held whole next to its 8-bit copy.
const chunkLen = 1 << 20

// readChunks decodes the data as T, chunk by chunk, handing each chunk and
// the index of its first element to use.
func readChunks[T number](a *npyArray, use func(off int, chunk []T) error) error {
	n := a.len()
	buf := make([]T, min(n, chunkLen))
	for off := 0; off < n; {
		chunk := buf[:min(len(buf), n-off)]
		// npyio reads as many elements as the slice holds, from where the
		// previous read stopped.
		if err := a.r.Read(&chunk); err != nil {
			return fmt.Errorf("reading data: %w", err)
		}
		if err := use(off, chunk); err != nil {
			return err
		}
		off += len(chunk)
	}
	return nil
}

// readLabels decodes integer data holding labels 0..3 into bytes, in C order.
func readLabels(a *npyArray) ([]uint8, error) {
	labels := make([]uint8, a.len())
	var err error
	switch a.dtype {
	case dtype{'u', 1}:
		err = readLabelsAs[uint8](a, labels)
	case dtype{'u', 2}:
		err = readLabelsAs[uint16](a, labels)
	case dtype{'u', 4}:
		err = readLabelsAs[uint32](a, labels)
	case dtype{'u', 8}:
		err = readLabelsAs[uint64](a, labels)
	case dtype{'i', 1}:
		err = readLabelsAs[int8](a, labels)
	case dtype{'i', 2}:
		err = readLabelsAs[int16](a, labels)
	case dtype{'i', 4}:
		err = readLabelsAs[int32](a, labels)
	case dtype{'i', 8}:
		err = readLabelsAs[int64](a, labels)
	default:
		return nil, fmt.Errorf("dtype %s, want integer labels", a.dtype)
	}
	if err != nil {
		return nil, err
	}
	if a.fortran {
		labels = cOrder(labels, a.shape)
	}
	return labels, nil
}

func readLabelsAs[T number](a *npyArray, labels []uint8) error {
	return readChunks(a, func(off int, chunk []T) error {
		for i, v := range chunk {
			if v < 0 || v > 3 {
				return fmt.Errorf("element %d is %v, not a label 0..3", off+i, v)
			}
			labels[off+i] = uint8(v)
		}
		return nil
	})
}

// readNumbers decodes numeric or boolean data as float64, in C order.
func readNumbers(a *npyArray) ([]float64, error) {
	values := make([]float64, a.len())
	var err error
	switch a.dtype {
	case dtype{'b', 1}:
		var flags []bool
		if len(values) > 0 {
			flags = make([]bool, len(values))
			if err := a.r.Read(&flags); err != nil {
				return nil, fmt.Errorf("reading data: %w", err)
			}
		}
		for i, f := range flags {
			if f {
				values[i] = 1
			}
		}
	case dtype{'u', 1}:
		err = readNumbersAs[uint8](a, values)
	case dtype{'u', 2}:
		err = readNumbersAs[uint16](a, values)
	case dtype{'u', 4}:
		err = readNumbersAs[uint32](a, values)
	case dtype{'u', 8}:
		err = readNumbersAs[uint64](a, values)
	case dtype{'i', 1}:
		err = readNumbersAs[int8](a, values)
	case dtype{'i', 2}:
		err = readNumbersAs[int16](a, values)
	case dtype{'i', 4}:
		err = readNumbersAs[int32](a, values)
	case dtype{'i', 8}:
		err = readNumbersAs[int64](a, values)
	case dtype{'f', 4}:
		err = readNumbersAs[float32](a, values)
	case dtype{'f', 8}:
		err = readNumbersAs[float64](a, values)
	default:
		return nil, fmt.Errorf("dtype %s, want numbers", a.dtype)
	}
	if err != nil {
		return nil, err
	}
	if a.fortran {
		values = cOrder(values, a.shape)
	}
	return values, nil
}

func readNumbersAs[T number](a *npyArray, values []float64) error {
	return readChunks(a, func(off int, chunk []T) error {
		for i, v := range chunk {
			values[off+i] = float64(v)
		}
		return nil
	})
}

// cOrder reorders data stored in Fortran order (first index fastest) into
// C order (last index fastest).
func cOrder[T any](data []T, shape []int) []T {
	if len(shape) < 2 {
		return data
	}
	out := make([]T, len(data))
	// strides[k] is the Fortran stride of dimension k.
	strides := make([]int, len(shape))
	stride := 1
	for k, dim := range shape {
		strides[k] = stride
		stride *= dim
	}
	index := make([]int, len(shape))
	src := 0
	for i := range out {
		out[i] = data[src]
		// Advance the multi-index in C order, updating the source offset.
		for k := len(shape) - 1; k >= 0; k-- {
			index[k]++
			src += strides[k]
			if index[k] < shape[k] {
				break
			}
			src -= index[k] * strides[k]
			index[k] = 0
		}
	}
	return out
}
