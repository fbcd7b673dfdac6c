package oct

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
)

func TestClassOfLabel(t *testing.T) {
	for v := range 256 {
		want := uint8(Background)
		switch v {
		case 255:
			want = REA
		case 191:
			want = SRF
		case 128:
			want = PED
		}
		assert.Equal(t, want, ClassOfLabel(uint8(v)), "grey level %d", v)
	}
	for c := range uint8(NumClasses) {
		assert.Equal(t, c, ClassOfLabel(LabelOfClass(c)))
	}
}

func TestPresence(t *testing.T) {
	tests := []struct {
		classes []uint8
		want    [NumLesions]float32
	}{
		{[]uint8{0, 0, 0}, [3]float32{0, 0, 0}},
		{[]uint8{0, REA, 0}, [3]float32{1, 0, 0}},
		{[]uint8{SRF}, [3]float32{0, 1, 0}},
		{[]uint8{PED, 0, PED}, [3]float32{0, 0, 1}},
		{[]uint8{PED, REA, SRF, 0}, [3]float32{1, 1, 1}},
		{nil, [3]float32{0, 0, 0}},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, Presence(tc.classes), "%v", tc.classes)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func encodeBMP(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, bmp.Encode(&buf, img))
	return buf.Bytes()
}

// TestReadSliceFormats reads the same grey levels stored as 8-bit grey,
// 8-bit palette (with a palette that is not the identity), 24-bit and
// 32-bit BMPs.
func TestReadSliceFormats(t *testing.T) {
	const w, h = 7, 3 // odd width exercises BMP row padding
	want := greyImage(w, h, func(x, y int) uint8 { return uint8(40*y + 31*x) })

	pal := make(color.Palette, 256)
	for i := range pal {
		v := uint8(255 - i)
		pal[i] = color.RGBA{v, v, v, 255}
	}
	paletted := image.NewPaletted(want.Rect, pal)
	rgb := image.NewRGBA(want.Rect)
	nrgba := image.NewNRGBA(want.Rect)
	for i, v := range want.Pix {
		paletted.Pix[i] = 255 - v
		copy(rgb.Pix[4*i:], []uint8{v, v, v, 255})
		copy(nrgba.Pix[4*i:], []uint8{v, v, v, 200})
	}
	dir := t.TempDir()
	for name, img := range map[string]image.Image{"grey": want, "palette": paletted, "rgb": rgb, "rgba": nrgba} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".bmp")
			writeFile(t, path, encodeBMP(t, img))
			got, err := ReadSlice(path)
			require.NoError(t, err)
			assert.Equal(t, want.Rect, got.Rect)
			assert.Equal(t, want.Pix, got.Pix)
		})
	}
}

func TestReadLabelMapsClasses(t *testing.T) {
	levels := []uint8{0, 255, 191, 128, 0}
	img := greyImage(len(levels), 1, func(x, _ int) uint8 { return levels[x] })
	path := filepath.Join(t.TempDir(), "1.bmp")
	require.NoError(t, WriteSlice(path, img))
	m, err := ReadLabel(path, len(levels), 1)
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, REA, SRF, PED, 0}, m.Class)
	assert.Equal(t, [3]float32{1, 1, 1}, m.Targets())
}

// Grey levels close to the classes', as a lossy round trip gives, would
// all read as background: they are an error that counts them.
func TestReadLabelRefusesLevelsOfNoClass(t *testing.T) {
	levels := []uint8{0, 255, 254, 190, 190, 127, 1, 129, 192, 64, 191}
	img := greyImage(len(levels), 1, func(x, _ int) uint8 { return levels[x] })
	path := filepath.Join(t.TempDir(), "1.bmp")
	require.NoError(t, WriteSlice(path, img))
	_, err := ReadLabel(path, len(levels), 1)
	var grey *UnexpectedGreyError
	require.ErrorAs(t, err, &grey)
	assert.Equal(t, 8, grey.Pixels)
	assert.Equal(t, map[uint8]int{1: 1, 64: 1, 127: 1, 129: 1, 190: 2, 192: 1, 254: 1}, grey.Levels)
	assert.Equal(t, path+": 8 label pixels have grey levels of no class (1 × 1, 1 × 64, 1 × 127, 1 × 129, 2 × 190, and 2 more levels); "+
		"labels hold only 0 (background), 255 (REA), 191 (SRF) and 128 (PED)", err.Error())
}

// TestBadFilesAreNamed checks that every read error names the file.
func TestBadFilesAreNamed(t *testing.T) {
	dir := t.TempDir()
	good := greyImage(16, 16, func(x, y int) uint8 { return uint8(x + y) })
	goodBMP := encodeBMP(t, good)
	var goodPNG bytes.Buffer
	require.NoError(t, png.Encode(&goodPNG, good))

	label := greyImage(16, 16, func(x, y int) uint8 { return []uint8{0, LabelREA, LabelSRF, LabelPED}[(x+y)%4] })
	files := map[string][]byte{
		"label.bmp":     encodeBMP(t, label),
		"huge.bmp":      hugeBMP(1<<30, 1<<30),
		"wide.bmp":      hugeBMP(1<<20, 1),
		"huge.png":      hugePNG(t, 1<<30, 1<<30),
		"wide.png":      hugePNG(t, 1<<20, 1<<20),
		"garbage.bmp":   []byte("this is not a bitmap"),
		"truncated.bmp": goodBMP[:len(goodBMP)/2],
		"empty.bmp":     nil,
		"good.bmp":      goodBMP,
		"garbage.png":   []byte("\x89PNG\r\n\x1a\n not really"),
		"truncated.png": goodPNG.Bytes()[:goodPNG.Len()-20],
		"good.png":      goodPNG.Bytes(),
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	read := map[string]func(path string) error{
		"slice": func(p string) error { _, err := ReadSlice(p); return err },
		"label": func(p string) error { _, err := ReadLabel(p, 16, 16); return err },
		"label of other size": func(p string) error {
			_, err := ReadLabel(p, 32, 16)
			return err
		},
		"stack":               func(p string) error { _, err := ReadStack(p, 16, 16); return err },
		"stack of other size": func(p string) error { _, err := ReadStack(p, 16, 32); return err },
	}
	tests := []struct {
		read, file, want string
	}{
		{"slice", "garbage.bmp", ""},
		{"slice", "truncated.bmp", ""},
		{"slice", "empty.bmp", ""},
		{"slice", "missing.bmp", "no such file"},
		{"label", "garbage.bmp", ""},
		{"label", "missing.bmp", "no such file"},
		{"label of other size", "label.bmp", "image is 16×16 (width×height), want 32×16"},
		{"label", "good.bmp", "label pixels have grey levels of no class"},
		{"slice", "huge.bmp", "header claims 1073741824×1073741824 pixels"},
		{"label", "wide.bmp", "header claims 1048576×1 pixels"},
		{"stack", "huge.png", ""}, // the PNG decoder refuses it itself
		{"stack", "wide.png", "header claims 1048576×1048576 pixels"},
		{"stack", "garbage.png", ""},
		{"stack", "truncated.png", ""},
		{"stack", "missing.png", "no such file"},
		{"stack of other size", "good.png", "image is 16×16 (width×height), want 16×32"},
	}
	for _, tc := range tests {
		t.Run(tc.read+" "+tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			err := read[tc.read](path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// The good files do read.
	_, err := ReadLabel(filepath.Join(dir, "label.bmp"), 16, 16)
	assert.NoError(t, err)
	_, err = ReadStack(filepath.Join(dir, "good.png"), 16, 16)
	assert.NoError(t, err)
}

func TestStackRoundTrip(t *testing.T) {
	prev := greyImage(16, 8, func(x, y int) uint8 { return uint8(x) })
	cur := greyImage(16, 8, func(x, y int) uint8 { return uint8(100 + y) })
	next := greyImage(16, 8, func(x, y int) uint8 { return uint8(200 + x ^ y) })
	s := StackSlices(prev, cur, next)
	assert.Equal(t, next.Pix, s.Channel(0))
	assert.Equal(t, cur.Pix, s.Channel(1))
	assert.Equal(t, prev.Pix, s.Channel(2))
	assert.Equal(t, cur.Pix, s.Grey().Pix)

	path := filepath.Join(t.TempDir(), "000.png")
	require.NoError(t, WriteStack(path, s))
	got, err := ReadStack(path, 16, 8)
	require.NoError(t, err)
	assert.Equal(t, s, got)

	// A grey PNG reads as three equal channels.
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, cur))
	writeFile(t, path, buf.Bytes())
	got, err = ReadStack(path, 0, 0)
	require.NoError(t, err)
	for c := range 3 {
		assert.Equal(t, cur.Pix, got.Channel(c))
	}
}

// hugeBMP is the header of a 24-bit BMP that claims w×h pixels and holds
// none.
func hugeBMP(w, h int) []byte {
	b := make([]byte, 54)
	copy(b, "BM")
	binary.LittleEndian.PutUint32(b[2:], 54)
	binary.LittleEndian.PutUint32(b[10:], 54)
	binary.LittleEndian.PutUint32(b[14:], 40)
	binary.LittleEndian.PutUint32(b[18:], uint32(w))
	binary.LittleEndian.PutUint32(b[22:], uint32(h))
	binary.LittleEndian.PutUint16(b[26:], 1)
	binary.LittleEndian.PutUint16(b[28:], 24)
	return b
}

// hugePNG is a valid 1×1 PNG whose header, checksum included, claims w×h.
func hugePNG(t testing.TB, w, h int) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))))
	b := buf.Bytes()
	// Signature (8), IHDR length (4), "IHDR" (4), width, height, ...
	binary.BigEndian.PutUint32(b[16:], uint32(w))
	binary.BigEndian.PutUint32(b[20:], uint32(h))
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}
