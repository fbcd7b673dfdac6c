package oct

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/edema/edema/internal/npyheader"
)

// Slices and cubes that arrive as bytes rather than as files of a data
// folder: an uploaded slice image, a cube's B-scans in a .zip, a cube as a
// .npy array. Each decoder checks what the bytes claim (sizes, counts,
// numbering) before it allocates for it.

// MaxCubeSlices is the most slices a cube read from bytes may have: four
// times the challenge's 128.
const MaxCubeSlices = 512

// Kind is what a body of bytes holds, told by its first bytes.
type Kind int

const (
	UnknownKind Kind = iota
	PNGKind
	BMPKind
	ZipKind
	NPYKind
)

func (k Kind) String() string {
	switch k {
	case PNGKind:
		return "PNG"
	case BMPKind:
		return "BMP"
	case ZipKind:
		return "zip"
	case NPYKind:
		return ".npy"
	}
	return "unknown"
}

// Sniff tells what data holds from its first bytes.
func Sniff(data []byte) Kind {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return PNGKind
	case bytes.HasPrefix(data, []byte("BM")):
		return BMPKind
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return ZipKind
	case bytes.HasPrefix(data, []byte("\x93NUMPY")):
		return NPYKind
	}
	return UnknownKind
}

// DecodeSliceImage decodes one slice given as an image: a colour PNG is a
// stack as trans3channel_images holds it (red the next slice, green the
// slice, blue the previous one); a grey PNG or a BMP is a single B-scan,
// which stands for its own neighbours.
func DecodeSliceImage(data []byte) (*Stack, error) {
	switch Sniff(data) {
	case PNGKind:
		return DecodeStack(bytes.NewReader(data))
	case BMPKind:
		g, err := DecodeSlice(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return StackSlices(g, g, g), nil
	}
	return nil, errors.New("not a PNG or BMP image")
}

// StackScans builds the stacks of a cube from its B-scans in slice order,
// as the original preprocessing does: each slice with the one before and
// after it, the first and last slices standing for their missing
// neighbours. The scans must share one size.
func StackScans(scans []*image.Gray) ([]*Stack, error) {
	if len(scans) == 0 {
		return nil, errors.New("no slice")
	}
	size := scans[0].Rect.Size()
	for i, g := range scans {
		if g.Rect.Size() != size {
			return nil, fmt.Errorf("slice %d is %d×%d pixels, slice 1 %d×%d (width×height)", i+1, g.Rect.Dx(), g.Rect.Dy(), size.X, size.Y)
		}
	}
	last := len(scans) - 1
	stacks := make([]*Stack, len(scans))
	for i := range scans {
		stacks[i] = StackSlices(scans[max(i-1, 0)], scans[i], scans[min(i+1, last)])
	}
	return stacks, nil
}

// DecodeScanZip reads a cube's B-scans from a .zip in the challenge's
// layout: 1.bmp … S.bmp, at the root or all in one folder (as zipping a
// cube's folder gives), without a gap in the numbering. Other files are
// ignored. maxBytes bounds the uncompressed size of each scan.
func DecodeScanZip(data []byte, maxBytes int64) ([]*image.Gray, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a readable zip: %w", err)
	}
	byNumber := map[int]*zip.File{}
	dir := ""
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasPrefix(path.Base(f.Name), ".") || strings.HasPrefix(f.Name, "__MACOSX/") {
			continue
		}
		n, err := fileNumber(path.Base(f.Name), ".bmp")
		if err != nil {
			continue
		}
		d := path.Dir(f.Name)
		if len(byNumber) == 0 {
			dir = d
		} else if d != dir {
			return nil, fmt.Errorf("zip holds slices in two folders, %q and %q: one cube per zip", dir, d)
		}
		if _, dup := byNumber[n]; dup {
			return nil, fmt.Errorf("zip holds slice %d twice", n)
		}
		if len(byNumber) == MaxCubeSlices {
			return nil, fmt.Errorf("zip holds more than %d slices", MaxCubeSlices)
		}
		byNumber[n] = f
	}
	if len(byNumber) == 0 {
		return nil, errors.New("zip holds no slice: want 1.bmp … S.bmp")
	}
	numbers := make([]int, 0, len(byNumber))
	for n := range byNumber {
		numbers = append(numbers, n)
	}
	slices.Sort(numbers)
	for i, n := range numbers {
		if n != i+1 {
			return nil, fmt.Errorf("zip lacks slice %d.bmp (it has %d slices, up to %d.bmp)", i+1, len(numbers), numbers[len(numbers)-1])
		}
	}
	scans := make([]*image.Gray, len(numbers))
	for i, n := range numbers {
		f := byNumber[n]
		if f.UncompressedSize64 > uint64(maxBytes) {
			return nil, fmt.Errorf("%s: %d bytes uncompressed, more than the %d a slice may have", f.Name, f.UncompressedSize64, maxBytes)
		}
		b, err := readZipFile(f, maxBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		if scans[i], err = DecodeSlice(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return scans, nil
}

// readZipFile reads a zip entry, refusing more than maxBytes whatever its
// header says.
func readZipFile(f *zip.File, maxBytes int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("more than %d bytes uncompressed", maxBytes)
	}
	return b, nil
}

// DecodeCubeNPY reads a cube from a .npy array of unsigned bytes in C
// order: S×H×W grey B-scans, stacked as the preprocessing stacks them, or
// S×3×H×W stacks in the channel order of Stack.
func DecodeCubeNPY(data []byte) ([]*Stack, error) {
	r := bytes.NewReader(data)
	rd, err := npyheader.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a NumPy .npy file: %w", err)
	}
	descr := rd.Header.Descr
	if t := strings.Trim(descr.Type, "'"); t != "|u1" && t != "u1" && t != "<u1" {
		return nil, fmt.Errorf(".npy holds %s, want unsigned bytes ('|u1'): convert with x.astype(np.uint8)", t)
	}
	if descr.Fortran {
		return nil, errors.New(".npy is in Fortran order, want C order: save np.ascontiguousarray(x)")
	}
	shape := descr.Shape
	grey := len(shape) == 3
	if !grey && (len(shape) != 4 || shape[1] != 3) {
		return nil, fmt.Errorf(".npy has shape %v, want S×H×W B-scans or S×3×H×W stacks", shape)
	}
	s, h, w := shape[0], shape[len(shape)-2], shape[len(shape)-1]
	if s < 1 || s > MaxCubeSlices || h < 1 || w < 1 || h > MaxImageSide || w > MaxImageSide || h*w > MaxImagePixels {
		return nil, fmt.Errorf(".npy has shape %v: want 1 to %d slices of at most %d×%d pixels", shape, MaxCubeSlices, MaxImageSide, MaxImageSide)
	}
	channels := 3
	if grey {
		channels = 1
	}
	pix := data[len(data)-r.Len():]
	if want := s * channels * h * w; len(pix) != want {
		return nil, fmt.Errorf(".npy holds %d bytes of data, its shape %v needs %d", len(pix), shape, want)
	}
	if !grey {
		stacks := make([]*Stack, s)
		for i := range stacks {
			stacks[i] = &Stack{W: w, H: h, Pix: pix[i*3*h*w : (i+1)*3*h*w]}
		}
		return stacks, nil
	}
	scans := make([]*image.Gray, s)
	for i := range scans {
		scans[i] = &image.Gray{Pix: pix[i*h*w : (i+1)*h*w], Stride: w, Rect: image.Rect(0, 0, w, h)}
	}
	return StackScans(scans)
}

// EncodeLabelsNPY writes classes as the .npy array of unsigned bytes of
// the given shape, as numpy.save writes it.
func EncodeLabelsNPY(w io.Writer, classes []uint8, shape ...int) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(classes) {
		return fmt.Errorf("%d classes for shape %v", len(classes), shape)
	}
	if err := npyheader.WriteHeader(w, "|u1", shape); err != nil {
		return err
	}
	_, err := w.Write(classes)
	return err
}
