package oct

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// numbered returns a w×h stack whose channel c holds 100·c + 10·y + x, and
// a label map holding (x + y) % 4.
func numbered(w, h int) (*Stack, *LabelMap) {
	s := NewStack(w, h)
	m := &LabelMap{W: w, H: h, Class: make([]uint8, w*h)}
	for c := range 3 {
		for y := range h {
			for x := range w {
				s.Channel(c)[y*w+x] = uint8(100*c + 10*y + x)
			}
		}
	}
	for y := range h {
		for x := range w {
			m.Class[y*w+x] = uint8((x + y) % 4)
		}
	}
	return s, m
}

func TestReflect(t *testing.T) {
	var got []int
	for i := -7; i <= 9; i++ {
		got = append(got, reflect(i, 4))
	}
	assert.Equal(t, []int{1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3}, got)
	assert.Equal(t, 0, reflect(-5, 1))
}

func TestRotate90(t *testing.T) {
	s, m := numbered(4, 4)
	rs, rm := rotateStack(s, 90), rotateLabel(m, 90)
	// Counter-clockwise: the right column becomes the top row, so the
	// output at (x, y) is the input at (3 − y, x).
	for c := range 3 {
		for y := range 4 {
			for x := range 4 {
				assert.Equal(t, s.Channel(c)[x*4+3-y], rs.Channel(c)[y*4+x], "channel %d (%d, %d)", c, x, y)
			}
		}
	}
	for y := range 4 {
		for x := range 4 {
			assert.Equal(t, m.Class[x*4+3-y], rm.Class[y*4+x], "label (%d, %d)", x, y)
		}
	}
	// Four quarter turns are the identity; −90° undoes 90°.
	back := rotateStack(rs, -90)
	assert.Equal(t, s.Pix, back.Pix)
	full := rs
	for range 3 {
		full = rotateStack(full, 90)
	}
	assert.Equal(t, s.Pix, full.Pix)
}

// A quarter turn of a slice higher than wide brings padding into the
// corners: the image's reflection, the label's IgnoreClass.
func TestRotatePadding(t *testing.T) {
	s, m := numbered(2, 4)
	rs, rm := rotateStack(s, 90), rotateLabel(m, 90)
	// About the centre (1, 2), output (0, 0) samples the centre of source
	// pixel (2, 1) and output (1, 0) that of (2, 2): right of the slice,
	// column 2 reflected to column 0. Output (0, 1) samples pixel (1, 1).
	assert.Equal(t, []uint8{10, 20, 11}, []uint8{rs.Channel(0)[0], rs.Channel(0)[1], rs.Channel(0)[2]})
	assert.Equal(t, []uint8{IgnoreClass, IgnoreClass, m.Class[1*2+1]}, rm.Class[:3])
	for _, c := range rm.Class {
		assert.True(t, c < NumClasses || c == IgnoreClass, "label %d", c)
	}
}

func TestResizeKnownAnswers(t *testing.T) {
	// PIL's bilinear resize of the row [0, 255] to 4 pixels.
	assert.Equal(t, []uint8{0, 64, 191, 255}, resampleChannel([]uint8{0, 255}, 2, 1, 4, 1, bilinear))
	// Shrinking averages over the filter widened twofold: output pixel 0
	// centres on 1.0 and weighs source pixels 0, 1, 2 by 3:3:1, so
	// [0, 0, 255, 255] gives 255/7 and 6·255/7.
	assert.Equal(t, []uint8{36, 219}, resampleChannel([]uint8{0, 0, 255, 255}, 4, 1, 2, 1, bilinear))
	// Every filter keeps a flat image flat.
	flat := make([]uint8, 6*5)
	for i := range flat {
		flat[i] = 77
	}
	for _, f := range []filter{bilinear, bicubic, lanczos} {
		for _, size := range [][2]int{{3, 2}, {13, 11}} {
			for _, v := range resampleChannel(flat, 6, 5, size[0], size[1], f) {
				require.Equal(t, uint8(77), v)
			}
		}
	}

	// Labels: nearest, the source pixel under each output pixel's centre.
	_, m := numbered(2, 2)
	up := resizeLabel(m, 4, 4)
	assert.Equal(t, []uint8{0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 2, 2, 1, 1, 2, 2}, up.Class)
	_, m = numbered(4, 4)
	assert.Equal(t, []uint8{2, 0, 0, 2}, resizeLabel(m, 2, 2).Class) // pixels (1,1), (3,1), (1,3), (3,3)
}

func TestCrop(t *testing.T) {
	t.Run("window inside the slice", func(t *testing.T) {
		s, m := numbered(6, 5)
		a := Augment{Crop: 3}
		seen := map[[2]int]bool{}
		for seed := range uint64(200) {
			cs, cm := a.apply(rand.New(rand.NewPCG(seed, 0)), s, m)
			require.Equal(t, 3, cs.W)
			require.Equal(t, 3, cs.H)
			// The top-left pixel holds 10·y0 + x0.
			x0, y0 := int(cs.Channel(0)[0]%10), int(cs.Channel(0)[0]/10)
			require.LessOrEqual(t, x0, 3)
			require.LessOrEqual(t, y0, 2)
			seen[[2]int{x0, y0}] = true
			for y := range 3 {
				for x := range 3 {
					require.Equal(t, s.Channel(2)[(y0+y)*6+x0+x], cs.Channel(2)[y*3+x])
					require.Equal(t, m.Class[(y0+y)*6+x0+x], cm.Class[y*3+x])
				}
			}
		}
		assert.Len(t, seen, 4*3, "every position is drawn")
	})
	t.Run("padded centrally when smaller", func(t *testing.T) {
		s, m := numbered(2, 2)
		cs, cm := Augment{Crop: 5}.apply(rand.New(rand.NewPCG(1, 2)), s, m)
		// One pixel before, two after, in both directions; the image
		// reflected (columns 1 0 1 0 1), the label ignored around.
		assert.Equal(t, []uint8{
			11, 10, 11, 10, 11,
			1, 0, 1, 0, 1,
			11, 10, 11, 10, 11,
			1, 0, 1, 0, 1,
			11, 10, 11, 10, 11,
		}, cs.Channel(0))
		const I = IgnoreClass
		assert.Equal(t, []uint8{
			I, I, I, I, I,
			I, 0, 1, I, I,
			I, 1, 2, I, I,
			I, I, I, I, I,
			I, I, I, I, I,
		}, cm.Class)
	})
}

func TestAugmentDraws(t *testing.T) {
	s, m := numbered(16, 16)
	// Scale 2 with a crop of 16: each draw resizes to ⌊ratio·16⌋, so the
	// crop is taken from slices between 8 and 32 pixels wide, and the
	// labels stay in the class set plus IgnoreClass.
	a := Augment{Rotate: 30, Scale: 2, Crop: 16}
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		as, am := a.apply(rng, s, m)
		require.Equal(t, 16, as.W)
		require.Equal(t, 16, am.H)
		for _, c := range am.Class {
			require.True(t, c < NumClasses || c == IgnoreClass, "label %d", c)
		}
	}
	// The draws are a function of the generator: the same seed, the same
	// slice.
	x1, _ := a.apply(rand.New(rand.NewPCG(3, 3)), s, m)
	x2, _ := a.apply(rand.New(rand.NewPCG(3, 3)), s, m)
	assert.Equal(t, x1.Pix, x2.Pix)

	// Angles are whole degrees in [−A, A]; every one of them is drawn.
	rng := rand.New(rand.NewPCG(5, 5))
	angles := map[int]bool{}
	for range 2000 {
		angles[rng.IntN(2*3+1)-3] = true
	}
	assert.Len(t, angles, 7)
}

func TestAugmentOutputSize(t *testing.T) {
	tests := []struct {
		a      Augment
		w, h   int
		err    string
		fields []Field
	}{
		{a: Augment{}, w: 128, h: 256},
		{a: Augment{Resize: 64}, w: 64, h: 64},
		{a: Augment{Rotate: 10}, w: 128, h: 256},
		{a: Augment{Resize: 64, Crop: 32}, w: 32, h: 32},
		{a: Augment{Scale: 1.5, Crop: 96}, w: 96, h: 96},
		{a: Augment{Scale: 1}, w: 128, h: 256},
		{a: Augment{Scale: 1.5}, err: "a random scale without a crop", fields: []Field{FieldScale, FieldCrop}},
		{a: Augment{Scale: 0.5, Crop: 16}, err: "scale 0.5 must be 1 to 16", fields: []Field{FieldScale}},
		{a: Augment{Rotate: -1}, err: "rotation -1", fields: []Field{FieldRotate}},
		{a: Augment{Resize: -3}, err: "resize -3", fields: []Field{FieldResize}},
		{a: Augment{Crop: -3}, err: "crop size -3", fields: []Field{FieldCrop}},
	}
	for _, tt := range tests {
		w, h, err := tt.a.OutputSize(128, 256)
		if tt.err != "" {
			var fe *FieldError
			require.ErrorAs(t, err, &fe, "%+v", tt.a)
			assert.Contains(t, err.Error(), tt.err)
			assert.Equal(t, tt.fields, fe.Fields)
			continue
		}
		require.NoError(t, err, "%+v", tt.a)
		assert.Equal(t, [2]int{tt.w, tt.h}, [2]int{w, h}, "%+v", tt.a)
	}
}

// pilImage is a 7×5 grey image, and pilResults what Pillow 9.4 gives for
// it (Image.resize and Image.rotate without expansion), written down once
// from Debian's python3-pil.
var (
	pilImage = []uint8{
		121, 131, 193, 243, 8, 36, 210,
		242, 63, 79, 222, 108, 69, 211,
		65, 104, 164, 140, 21, 7, 221,
		192, 214, 137, 209, 84, 115, 201,
		31, 77, 31, 116, 250, 34, 98,
	}
	pilBicubic11x9 = []uint8{109, 118, 141, 185, 231, 245, 80, 0, 24, 138, 222, 164, 137, 112, 141, 197, 240, 108, 27, 40, 143, 221, 253, 167, 61, 65, 138, 227, 154, 84, 65, 150, 220, 174, 125, 69, 92, 140, 181, 116, 53, 34, 141, 229, 62, 78, 109, 153, 165, 140, 61, 3, 0, 131, 236, 135, 156, 179, 164, 172, 181, 86, 33, 64, 158, 227, 183, 199, 204, 141, 151, 205, 137, 93, 110, 160, 198, 77, 99, 116, 68, 80, 144, 200, 176, 66, 91, 131, 15, 41, 65, 28, 41, 108, 233, 220, 39, 51, 95}
	pilLanczos3x2  = []uint8{144, 130, 107, 119, 129, 118}
	pilBilinear4x3 = []uint8{141, 161, 102, 134, 127, 145, 86, 134, 114, 111, 150, 113}
	pilNearest4x3  = []uint8{121, 193, 8, 210, 65, 164, 21, 221, 31, 31, 250, 98}
	// Rotated by 30° with NEAREST; 0 where Pillow samples outside the
	// image, where the padded rotation here reads the padding instead.
	pilNearestRotate30 = []uint8{0, 0, 243, 8, 69, 211, 0, 131, 193, 222, 108, 21, 7, 201, 242, 63, 164, 140, 84, 115, 98, 242, 104, 164, 209, 209, 250, 34, 0, 192, 214, 31, 116, 0, 0}
)

func TestResamplingMatchesPIL(t *testing.T) {
	assert.Equal(t, pilBicubic11x9, resampleChannel(pilImage, 7, 5, 11, 9, bicubic), "bicubic")
	assert.Equal(t, pilLanczos3x2, resampleChannel(pilImage, 7, 5, 3, 2, lanczos), "lanczos")
	assert.Equal(t, pilBilinear4x3, resampleChannel(pilImage, 7, 5, 4, 3, bilinear), "bilinear")
	m := &LabelMap{W: 7, H: 5, Class: pilImage}
	assert.Equal(t, pilNearest4x3, resizeLabel(m, 4, 3).Class, "nearest")
	rotated := rotateLabel(m, 30).Class
	for i, want := range pilNearestRotate30 {
		if want == 0 {
			assert.Equal(t, IgnoreClass, rotated[i], "pixel %d is padding", i)
			continue
		}
		assert.Equal(t, want, rotated[i], "rotation pixel %d", i)
	}
}
