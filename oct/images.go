package oct

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/edema/edema/internal/atomicfile"
	"golang.org/x/image/bmp"
)

// LabelMap is the class of every pixel of one slice, row-major, 0..3.
type LabelMap struct {
	W, H  int
	Class []uint8
}

// Targets returns the slice's detection target: 1 for each lesion class
// (REA, SRF, PED) present in the map, else 0.
func (m *LabelMap) Targets() [NumLesions]float32 {
	return Presence(m.Class)
}

// Presence returns, for classes holding values 0..3, 1 for each lesion class
// that occurs and 0 for each that does not.
func Presence(classes []uint8) [NumLesions]float32 {
	var seen [NumClasses]bool
	for _, c := range classes {
		if c < NumClasses {
			seen[c] = true
		}
	}
	var t [NumLesions]float32
	for l := range NumLesions {
		if seen[l+1] {
			t[l] = 1
		}
	}
	return t
}

// Stack is the 3-channel image of one slice as fed to the networks, channel
// by channel: Pix[c*H*W + y*W + x]. Channel 0 (the PNG's red) is the next
// slice, channel 1 (green) the slice itself and channel 2 (blue) the
// previous slice.
type Stack struct {
	W, H int
	Pix  []uint8
}

// NewStack returns a black stack of the given size.
func NewStack(w, h int) *Stack {
	return &Stack{W: w, H: h, Pix: make([]uint8, 3*w*h)}
}

// Channel returns channel c (0, 1 or 2) of the stack, row-major.
func (s *Stack) Channel(c int) []uint8 {
	n := s.W * s.H
	return s.Pix[c*n : (c+1)*n]
}

// Grey returns the middle channel, the slice itself, as a grey image sharing
// the stack's pixels.
func (s *Stack) Grey() *image.Gray {
	return &image.Gray{Pix: s.Channel(1), Stride: s.W, Rect: image.Rect(0, 0, s.W, s.H)}
}

// StackSlices builds the stack of a slice from the slice before it, the slice
// and the slice after it, in the channel order the original preprocessing
// produced: channel 0 = next, 1 = cur, 2 = prev. The three must be the same
// size.
func StackSlices(prev, cur, next *image.Gray) *Stack {
	b := cur.Bounds()
	s := NewStack(b.Dx(), b.Dy())
	for c, g := range []*image.Gray{next, cur, prev} {
		dst := s.Channel(c)
		for y := range s.H {
			copy(dst[y*s.W:(y+1)*s.W], g.Pix[y*g.Stride:y*g.Stride+s.W])
		}
	}
	return s
}

// Limits on the size an image header may claim, checked before any pixel
// is decoded so that a lying header cannot make the decoder allocate
// gigabytes: a side of 16384 pixels and 2^26 pixels in all, 32 times a
// real 512×1024 B-scan.
const (
	MaxImageSide   = 1 << 14
	MaxImagePixels = 1 << 26
)

// decodeImage decodes an image whose header decodeConfig reads first,
// refusing sizes beyond the limits, then decode from the start again.
func decodeImage(r io.ReadSeeker, decodeConfig func(io.Reader) (image.Config, error), decode func(io.Reader) (image.Image, error)) (image.Image, error) {
	cfg, err := decodeConfig(bufio.NewReader(r))
	if err != nil {
		return nil, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxImageSide || cfg.Height > MaxImageSide || cfg.Width*cfg.Height > MaxImagePixels {
		return nil, fmt.Errorf("header claims %d×%d pixels (width×height), beyond the %d×%d an image may have here", cfg.Width, cfg.Height, MaxImageSide, MaxImageSide)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, err := decode(bufio.NewReader(r))
	if err != nil {
		return nil, err
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, fmt.Errorf("decoded %d×%d pixels where the header says %d×%d", b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return img, nil
}

// DecodeSlice decodes a B-scan BMP (8-bit grey or palette, 24- or 32-bit
// colour) as grey levels.
func DecodeSlice(r io.ReadSeeker) (*image.Gray, error) {
	img, err := decodeImage(r, bmp.DecodeConfig, bmp.Decode)
	if err != nil {
		return nil, err
	}
	return toGrey(img), nil
}

// ReadSlice reads a B-scan BMP as grey levels (see DecodeSlice).
func ReadSlice(path string) (*image.Gray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g, err := DecodeSlice(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// UnexpectedGreyError is a label image holding grey levels that are not
// those of a class (0, 128, 191, 255): levels close to them, as a lossy
// round trip or resampling gives, would otherwise all read as background.
type UnexpectedGreyError struct {
	Pixels int           // pixels of unexpected levels
	Levels map[uint8]int // their count per level
}

func (e *UnexpectedGreyError) Error() string {
	levels := make([]int, 0, len(e.Levels))
	for v := range e.Levels {
		levels = append(levels, int(v))
	}
	slices.Sort(levels)
	const shown = 5
	var parts []string
	for i, v := range levels {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more levels", len(levels)-shown))
			break
		}
		parts = append(parts, fmt.Sprintf("%d × %d", e.Levels[uint8(v)], v))
	}
	return fmt.Sprintf("%d label pixels have grey levels of no class (%s); labels hold only 0 (background), %d (REA), %d (SRF) and %d (PED)",
		e.Pixels, strings.Join(parts, ", "), LabelREA, LabelSRF, LabelPED)
}

// DecodeLabel decodes a label BMP and maps its grey levels to classes (see
// ClassOfLabel); a level of no class is an *UnexpectedGreyError. When w
// and h are positive the label must be w×h.
func DecodeLabel(r io.ReadSeeker, w, h int) (*LabelMap, error) {
	g, err := DecodeSlice(r)
	if err != nil {
		return nil, err
	}
	if err := checkSize("", g.Rect.Dx(), g.Rect.Dy(), w, h); err != nil {
		return nil, err
	}
	m := &LabelMap{W: g.Rect.Dx(), H: g.Rect.Dy(), Class: g.Pix}
	var bad *UnexpectedGreyError
	for i, v := range m.Class {
		c := ClassOfLabel(v)
		if c == Background && v != 0 {
			if bad == nil {
				bad = &UnexpectedGreyError{Levels: map[uint8]int{}}
			}
			bad.Pixels++
			bad.Levels[v]++
		}
		m.Class[i] = c
	}
	if bad != nil {
		return nil, bad
	}
	return m, nil
}

// ReadLabel reads a label BMP (see DecodeLabel).
func ReadLabel(path string, w, h int) (*LabelMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := DecodeLabel(f, w, h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// checkSize reports a file whose size is not the expected w×h; w or h ≤ 0
// accepts any size. name prefixes the message, unless it is empty.
func checkSize(name string, gotW, gotH, w, h int) error {
	if w > 0 && h > 0 && (gotW != w || gotH != h) {
		err := fmt.Errorf("image is %d×%d (width×height), want %d×%d", gotW, gotH, w, h)
		if name != "" {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return err
	}
	return nil
}

// toGrey returns the grey level of every pixel. Grey pixels (R = G = B) keep
// their value exactly; colour pixels get their luminance.
func toGrey(img image.Image) *image.Gray {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if g, ok := img.(*image.Gray); ok && g.Stride == w && b.Min == (image.Point{}) {
		return g
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	switch m := img.(type) {
	case *image.Paletted:
		// A corrupt file may hold indices past the palette; they read as 0.
		var lut [256]uint8
		for i, c := range m.Palette {
			lut[i] = color.GrayModel.Convert(c).(color.Gray).Y
		}
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			dst := out.Pix[y*w : (y+1)*w]
			for x, v := range row {
				dst[x] = lut[v]
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			dst := out.Pix[y*w : (y+1)*w]
			for x := range dst {
				dst[x] = greyOf(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			dst := out.Pix[y*w : (y+1)*w]
			for x := range dst {
				dst[x] = greyOf(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	default:
		for y := range h {
			for x := range w {
				out.Pix[y*w+x] = color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
			}
		}
	}
	return out
}

func greyOf(r, g, b uint8) uint8 {
	if r == g && g == b {
		return r
	}
	return color.GrayModel.Convert(color.RGBA{r, g, b, 255}).(color.Gray).Y
}

// DecodeStack decodes a 3-channel PNG of trans3channel_images. A grey PNG
// reads as three equal channels.
func DecodeStack(r io.ReadSeeker) (*Stack, error) {
	img, err := decodeImage(r, png.DecodeConfig, png.Decode)
	if err != nil {
		return nil, err
	}
	return StackOfImage(img), nil
}

// ReadStack reads a stack PNG (see DecodeStack). When w and h are positive
// the image must be w×h.
func ReadStack(path string, w, h int) (*Stack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := DecodeStack(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkSize(path, s.W, s.H, w, h); err != nil {
		return nil, err
	}
	return s, nil
}

// StackOfImage splits an image into the channels of a Stack: red, green
// and blue are channels 0, 1 and 2 (the next slice, the slice, the previous
// slice); a grey image gives three equal channels, a B-scan standing for
// its own neighbours.
func StackOfImage(img image.Image) *Stack {
	b := img.Bounds()
	s := NewStack(b.Dx(), b.Dy())
	r, g, bl := s.Channel(0), s.Channel(1), s.Channel(2)
	switch m := img.(type) {
	case *image.RGBA:
		split4(m.Pix, m.Stride, s, r, g, bl)
	case *image.NRGBA:
		split4(m.Pix, m.Stride, s, r, g, bl)
	case *image.Gray:
		for y := range s.H {
			row := m.Pix[y*m.Stride : y*m.Stride+s.W]
			copy(r[y*s.W:], row)
			copy(g[y*s.W:], row)
			copy(bl[y*s.W:], row)
		}
	default:
		for y := range s.H {
			for x := range s.W {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := y*s.W + x
				r[i], g[i], bl[i] = c.R, c.G, c.B
			}
		}
	}
	return s
}

func split4(pix []uint8, stride int, s *Stack, r, g, b []uint8) {
	for y := range s.H {
		row := pix[y*stride : y*stride+4*s.W]
		i := y * s.W
		for x := range s.W {
			r[i+x], g[i+x], b[i+x] = row[4*x], row[4*x+1], row[4*x+2]
		}
	}
}

// WriteStack writes a stack as an 8-bit RGB PNG (red = channel 0), the way
// the original preprocessing stored it, replacing path atomically.
func WriteStack(path string, s *Stack) error {
	img := image.NewRGBA(image.Rect(0, 0, s.W, s.H))
	r, g, b := s.Channel(0), s.Channel(1), s.Channel(2)
	for i := range s.W * s.H {
		p := img.Pix[4*i : 4*i+4 : 4*i+4]
		p[0], p[1], p[2], p[3] = r[i], g[i], b[i], 255
	}
	// Fast compression: the stacks are written once per slice of the whole
	// data set and read back at every epoch; size matters less than time.
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	return atomicfile.Write(path, func(w io.Writer) error { return enc.Encode(w, img) })
}

// WriteSlice writes a grey image as an 8-bit BMP with a grey palette,
// replacing path atomically. Original B-scans and labels are stored so.
func WriteSlice(path string, g *image.Gray) error {
	return atomicfile.Write(path, func(w io.Writer) error { return bmp.Encode(w, g) })
}
