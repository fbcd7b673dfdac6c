package oct

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Augment is the original training script's optional geometry
// augmentation, off in its published runs. Each training slice and its
// label go through the steps that are set, in this order, before the
// random horizontal flip:
//
//   - Resize N: both to N×N (image bilinear, label nearest).
//   - Rotate A: an integer angle drawn uniformly from [−A, A] degrees,
//     counter-clockwise about the slice's centre; the image is extended by
//     reflection and the label with IgnoreClass by the slice's own width
//     and height on every side first, so the corners rotate in real
//     pixels (image bilinear, label nearest).
//   - Scale S: a ratio drawn uniformly from [1/S, S]; both resized to
//     ⌊ratio·W⌋×⌊ratio·H⌋ (image Lanczos-antialiased when shrinking,
//     bicubic when enlarging; label nearest).
//   - Crop C: a slice smaller than C×C is first padded centrally (image by
//     reflection, label with IgnoreClass), then a C×C window at a uniformly
//     random position is kept.
//
// Resizing is PIL's, which the original used, to the grey level: separable
// filters over pixel centres whose support widens by the scale factor when
// shrinking, in PIL's fixed-point arithmetic. Rotation samples as PIL's
// does where the source is inside the slice; where it is not, it reads the
// padding (PIL's would read zeros at the border of the padded image). The
// zero value does nothing.
type Augment struct {
	Resize int     // side of the square the slices are resized to; 0: off
	Rotate int     // largest rotation in degrees; 0: off
	Scale  float64 // largest scale ratio, ≥ 1; 0 or 1: off
	Crop   int     // side of the square crop; 0: off
}

// Field is one setting of Augment, for errors that name it.
type Field int

// The fields of Augment.
const (
	FieldResize Field = iota
	FieldRotate
	FieldScale
	FieldCrop
)

// FieldError is a bad Augment setting or combination.
type FieldError struct {
	Fields []Field
	Msg    string
}

func (e *FieldError) Error() string { return e.Msg }

// Active reports whether any step is set.
func (a Augment) Active() bool {
	return a.Resize != 0 || a.Rotate != 0 || a.scaled() || a.Crop != 0
}

func (a Augment) scaled() bool { return a.Scale != 0 && a.Scale != 1 }

// OutputSize returns the size of every augmented slice of a w×h slice.
// It fails, naming the settings, where the settings are invalid or where
// the slices would differ in size (scaling without a crop), since the
// slices of a batch must stack.
func (a Augment) OutputSize(w, h int) (int, int, error) {
	switch {
	case a.Resize < 0:
		return 0, 0, &FieldError{[]Field{FieldResize}, fmt.Sprintf("resize %d must not be negative", a.Resize)}
	case a.Rotate < 0 || a.Rotate > 180:
		return 0, 0, &FieldError{[]Field{FieldRotate}, fmt.Sprintf("rotation %d must be 0 to 180 degrees", a.Rotate)}
	case a.Scale != 0 && !(a.Scale >= 1 && a.Scale <= 16):
		return 0, 0, &FieldError{[]Field{FieldScale}, fmt.Sprintf("scale %g must be 1 to 16 (or 0: off)", a.Scale)}
	case a.Crop < 0:
		return 0, 0, &FieldError{[]Field{FieldCrop}, fmt.Sprintf("crop size %d must not be negative", a.Crop)}
	case a.scaled() && a.Crop == 0:
		return 0, 0, &FieldError{[]Field{FieldScale, FieldCrop}, "a random scale without a crop gives slices of different sizes, which do not stack into batches"}
	}
	if a.Resize > 0 {
		w, h = a.Resize, a.Resize
	}
	if a.Crop > 0 {
		w, h = a.Crop, a.Crop
	}
	return w, h, nil
}

// apply augments a stack and its label map with the draws of rng, in
// the order Augment describes. The inputs are not modified.
func (a Augment) apply(rng *rand.Rand, s *Stack, m *LabelMap) (*Stack, *LabelMap) {
	if a.Resize > 0 && (s.W != a.Resize || s.H != a.Resize) {
		s, m = resizeStack(s, a.Resize, a.Resize, bilinear), resizeLabel(m, a.Resize, a.Resize)
	}
	if a.Rotate > 0 {
		angle := rng.IntN(2*a.Rotate+1) - a.Rotate
		if angle != 0 {
			s, m = rotateStack(s, float64(angle)), rotateLabel(m, float64(angle))
		}
	}
	if a.scaled() {
		ratio := 1/a.Scale + rng.Float64()*(a.Scale-1/a.Scale)
		w, h := int(ratio*float64(s.W)), int(ratio*float64(s.H))
		if ratio != 1 && (w != s.W || h != s.H) {
			f := bicubic
			if ratio < 1 {
				f = lanczos
			}
			s, m = resizeStack(s, max(w, 1), max(h, 1), f), resizeLabel(m, max(w, 1), max(h, 1))
		}
	}
	if a.Crop > 0 {
		s, m = padStack(s, a.Crop), padLabel(m, a.Crop)
		x0, y0 := rng.IntN(s.W-a.Crop+1), rng.IntN(s.H-a.Crop+1)
		s, m = cropStack(s, x0, y0, a.Crop), cropLabel(m, x0, y0, a.Crop)
	}
	return s, m
}

// reflect maps an index of a line of n pixels extended without end by
// mirroring about its first and last pixels (…2 1 0 1 2… n−2 n−1 n−2…),
// the extension OpenCV calls BORDER_REFLECT_101 and the original applies
// again and again where the padding is wider than the slice.
func reflect(i, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i %= period
	if i < 0 {
		i += period
	}
	if i >= n {
		i = period - i
	}
	return i
}

// filter is a resampling kernel of PIL's: its support at scale 1 and its
// weight at a distance.
type filter struct {
	support float64
	at      func(x float64) float64
}

var (
	bilinear = filter{1, func(x float64) float64 {
		return max(0, 1-math.Abs(x))
	}}
	// bicubic is PIL's cubic convolution with a = −0.5.
	bicubic = filter{2, func(x float64) float64 {
		const a = -0.5
		x = math.Abs(x)
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}}
	lanczos = filter{3, func(x float64) float64 {
		if x == 0 {
			return 1
		}
		if x <= -3 || x >= 3 {
			return 0
		}
		px := math.Pi * x
		return 3 * math.Sin(px) * math.Sin(px/3) / (px * px)
	}}
)

// weights are the source pixels and fixed-point weights of each output
// pixel of a 1-D resampling from n to m pixels.
type weights struct {
	first []int
	w     [][]int64
}

// precision is the number of fraction bits of PIL's fixed-point weights
// for 8-bit images.
const precision = 22

// resampleWeights computes PIL's weights: output pixel i centres at
// (i + 0.5)·n/m in the source, and the filter widens by n/m when
// shrinking, which is what antialiases. Normalised in float64, they are
// rounded to fixed point (half away from zero) as PIL does, so that the
// sums round as PIL's.
func resampleWeights(n, m int, f filter) weights {
	scale := float64(n) / float64(m)
	fscale := max(scale, 1)
	support := f.support * fscale
	out := weights{first: make([]int, m), w: make([][]int64, m)}
	for i := range m {
		centre := (float64(i) + 0.5) * scale
		lo := max(int(centre-support+0.5), 0)
		hi := min(int(centre+support+0.5), n)
		ws := make([]float64, hi-lo)
		var sum float64
		for j := range ws {
			ws[j] = f.at((float64(lo+j) - centre + 0.5) / fscale)
			sum += ws[j]
		}
		fixed := make([]int64, len(ws))
		for j, w := range ws {
			if sum != 0 {
				w /= sum
			}
			if w < 0 {
				fixed[j] = int64(-0.5 + w*(1<<precision))
			} else {
				fixed[j] = int64(0.5 + w*(1<<precision))
			}
		}
		out.first[i], out.w[i] = lo, fixed
	}
	return out
}

// clampFixed turns a fixed-point sum into a grey level.
func clampFixed(v int64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255<<precision:
		return 255
	}
	return uint8(v >> precision)
}

func clampUint8(v float64) uint8 {
	return uint8(min(max(math.Round(v), 0), 255))
}

// resampleChannel resizes one w×h channel to dw×dh, horizontally then
// vertically, in PIL's fixed point with 8 bits between the passes.
func resampleChannel(src []uint8, w, h, dw, dh int, f filter) []uint8 {
	const half = 1 << (precision - 1)
	tmp := src
	if dw != w {
		tmp = make([]uint8, dw*h)
		ws := resampleWeights(w, dw, f)
		for y := range h {
			row := src[y*w : (y+1)*w]
			for x := range dw {
				v := int64(half)
				for j, wt := range ws.w[x] {
					v += wt * int64(row[ws.first[x]+j])
				}
				tmp[y*dw+x] = clampFixed(v)
			}
		}
	}
	if dh == h {
		return tmp
	}
	out := make([]uint8, dw*dh)
	ws := resampleWeights(h, dh, f)
	for y := range dh {
		for x := range dw {
			v := int64(half)
			for j, wt := range ws.w[y] {
				v += wt * int64(tmp[(ws.first[y]+j)*dw+x])
			}
			out[y*dw+x] = clampFixed(v)
		}
	}
	return out
}

func resizeStack(s *Stack, w, h int, f filter) *Stack {
	out := NewStack(w, h)
	for c := range 3 {
		copy(out.Channel(c), resampleChannel(s.Channel(c), s.W, s.H, w, h, f))
	}
	return out
}

// nearestIndex is the source pixel of output pixel i of a nearest
// resampling from n to m pixels: the one under its centre.
func nearestIndex(i, n, m int) int {
	return min(int((float64(i)+0.5)*float64(n)/float64(m)), n-1)
}

func resizeLabel(l *LabelMap, w, h int) *LabelMap {
	out := &LabelMap{W: w, H: h, Class: make([]uint8, w*h)}
	for y := range h {
		sy := nearestIndex(y, l.H, h)
		for x := range w {
			out.Class[y*w+x] = l.Class[sy*l.W+nearestIndex(x, l.W, w)]
		}
	}
	return out
}

// rotation returns, for a counter-clockwise rotation by angle degrees
// about the centre of a w×h slice, the map from an output pixel centre to
// the source point it samples, with cos and sin rounded to 15 decimals as
// PIL does (so that multiples of 90° are exact).
func rotation(angle float64, w, h int) func(x, y int) (float64, float64) {
	rad := angle * math.Pi / 180
	cos := math.Round(math.Cos(rad)*1e15) / 1e15
	sin := math.Round(math.Sin(rad)*1e15) / 1e15
	cx, cy := float64(w)/2, float64(h)/2
	return func(x, y int) (float64, float64) {
		dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
		return cos*dx - sin*dy + cx, sin*dx + cos*dy + cy
	}
}

// inPadded reports whether source point (sx, sy) lies in the slice padded
// by its own width and height on every side; beyond it the original's
// rotation samples nothing and fills 0.
func inPadded(sx, sy float64, w, h int) bool {
	return sx >= -float64(w) && sx < 2*float64(w) && sy >= -float64(h) && sy < 2*float64(h)
}

func rotateStack(s *Stack, angle float64) *Stack {
	src := rotation(angle, s.W, s.H)
	out := NewStack(s.W, s.H)
	for y := range s.H {
		for x := range s.W {
			sx, sy := src(x, y)
			if !inPadded(sx, sy, s.W, s.H) {
				continue
			}
			// Bilinear between the four pixel centres around the point,
			// read through the reflected extension.
			fx, fy := sx-0.5, sy-0.5
			x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
			ax, ay := fx-float64(x0), fy-float64(y0)
			xa, xb := reflect(x0, s.W), reflect(x0+1, s.W)
			ya, yb := reflect(y0, s.H), reflect(y0+1, s.H)
			for c := range 3 {
				ch := s.Channel(c)
				top := (1-ax)*float64(ch[ya*s.W+xa]) + ax*float64(ch[ya*s.W+xb])
				bottom := (1-ax)*float64(ch[yb*s.W+xa]) + ax*float64(ch[yb*s.W+xb])
				out.Channel(c)[y*s.W+x] = clampUint8((1-ay)*top + ay*bottom)
			}
		}
	}
	return out
}

func rotateLabel(l *LabelMap, angle float64) *LabelMap {
	src := rotation(angle, l.W, l.H)
	out := &LabelMap{W: l.W, H: l.H, Class: make([]uint8, len(l.Class))}
	for y := range l.H {
		for x := range l.W {
			sx, sy := src(x, y)
			if !inPadded(sx, sy, l.W, l.H) {
				continue // background, as the original's fill
			}
			px, py := int(math.Floor(sx)), int(math.Floor(sy))
			if px < 0 || px >= l.W || py < 0 || py >= l.H {
				out.Class[y*l.W+x] = IgnoreClass
				continue
			}
			out.Class[y*l.W+x] = l.Class[py*l.W+px]
		}
	}
	return out
}

// centralPadding returns the padding before a line of n pixels that
// centres it in size pixels (none when it is as long already).
func centralPadding(n, size int) int {
	return max(size-n, 0) / 2
}

func padStack(s *Stack, size int) *Stack {
	w, h := max(s.W, size), max(s.H, size)
	if w == s.W && h == s.H {
		return s
	}
	left, top := centralPadding(s.W, size), centralPadding(s.H, size)
	out := NewStack(w, h)
	for c := range 3 {
		src, dst := s.Channel(c), out.Channel(c)
		for y := range h {
			sy := reflect(y-top, s.H)
			for x := range w {
				dst[y*w+x] = src[sy*s.W+reflect(x-left, s.W)]
			}
		}
	}
	return out
}

func padLabel(l *LabelMap, size int) *LabelMap {
	w, h := max(l.W, size), max(l.H, size)
	if w == l.W && h == l.H {
		return l
	}
	left, top := centralPadding(l.W, size), centralPadding(l.H, size)
	out := &LabelMap{W: w, H: h, Class: make([]uint8, w*h)}
	for i := range out.Class {
		out.Class[i] = IgnoreClass
	}
	for y := range l.H {
		copy(out.Class[(y+top)*w+left:], l.Class[y*l.W:(y+1)*l.W])
	}
	return out
}

func cropStack(s *Stack, x0, y0, size int) *Stack {
	out := NewStack(size, size)
	for c := range 3 {
		src, dst := s.Channel(c), out.Channel(c)
		for y := range size {
			copy(dst[y*size:(y+1)*size], src[(y0+y)*s.W+x0:])
		}
	}
	return out
}

func cropLabel(l *LabelMap, x0, y0, size int) *LabelMap {
	out := &LabelMap{W: size, H: size, Class: make([]uint8, size*size)}
	for y := range size {
		copy(out.Class[y*size:(y+1)*size], l.Class[(y0+y)*l.W+x0:])
	}
	return out
}

// errAugmentSize is returned where an augmented slice does not come out at
// the loader's size, which OutputSize rules out.
var errAugmentSize = errors.New("augmented slice has an unexpected size")
