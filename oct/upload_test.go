package oct

import (
	"archive/zip"
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/npyheader"
)

// scan returns a w×h grey B-scan whose pixels depend on seed.
func scan(w, h, seed int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = uint8(i*7 + seed*31)
	}
	return g
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// zipOf returns a zip holding files name → contents, in the given order.
func zipOf(t *testing.T, files ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i < len(files); i += 2 {
		f, err := zw.Create(files[i].(string))
		require.NoError(t, err)
		_, err = f.Write(files[i+1].([]byte))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func npyOf(t *testing.T, descr string, shape []int, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, npyheader.WriteHeader(&b, descr, shape))
	b.Write(data)
	return b.Bytes()
}

func TestSniff(t *testing.T) {
	g := scan(16, 16, 1)
	for _, tc := range []struct {
		data []byte
		want Kind
	}{
		{encodePNG(t, g), PNGKind},
		{encodeBMP(t, g), BMPKind},
		{zipOf(t, "1.bmp", encodeBMP(t, g)), ZipKind},
		{npyOf(t, "|u1", []int{1}, []byte{0}), NPYKind},
		{[]byte("GIF89a"), UnknownKind},
		{nil, UnknownKind},
	} {
		assert.Equal(t, tc.want, Sniff(tc.data), tc.want.String())
	}
}

func TestDecodeSliceImage(t *testing.T) {
	g := scan(32, 16, 3)
	want := StackSlices(g, g, g)
	for name, data := range map[string][]byte{"grey BMP": encodeBMP(t, g), "grey PNG": encodePNG(t, g)} {
		s, err := DecodeSliceImage(data)
		require.NoError(t, err, name)
		assert.Equal(t, want, s, "%s: a lone B-scan is its own neighbours", name)
	}
	// A colour PNG is a stack: red next, green the slice, blue previous.
	rgb := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	rgb.Set(0, 0, color.NRGBA{1, 2, 3, 255})
	rgb.Set(1, 0, color.NRGBA{4, 5, 6, 255})
	s, err := DecodeSliceImage(encodePNG(t, rgb))
	require.NoError(t, err)
	assert.Equal(t, []uint8{1, 4, 2, 5, 3, 6}, s.Pix)

	for name, data := range map[string][]byte{
		"GIF":          []byte("GIF89a..."),
		"empty":        nil,
		"truncated":    encodePNG(t, g)[:40],
		"lying header": lyingBMP(t),
	} {
		_, err := DecodeSliceImage(data)
		assert.Error(t, err, name)
	}
}

// lyingBMP returns a BMP whose header claims 100000×100000 pixels.
func lyingBMP(t *testing.T) []byte {
	b := encodeBMP(t, scan(16, 16, 0))
	b[18], b[19], b[20], b[21] = 0xa0, 0x86, 0x01, 0x00 // width 100000
	b[22], b[23], b[24], b[25] = 0xa0, 0x86, 0x01, 0x00 // height 100000
	return b
}

func TestDecodeScanZip(t *testing.T) {
	scans := []*image.Gray{scan(16, 32, 0), scan(16, 32, 1), scan(16, 32, 2)}
	files := func(dir string, order ...int) []any {
		var f []any
		for _, k := range order {
			f = append(f, dir+SliceFile(k), encodeBMP(t, scans[k-1]))
		}
		return f
	}
	for name, z := range map[string][]byte{
		"root":             zipOf(t, files("", 1, 2, 3)...),
		"one folder":       zipOf(t, files("cube_01/", 3, 1, 2)...),
		"with other files": zipOf(t, append(files("c/", 1, 2, 3), "c/.DS_Store", []byte("x"), "__MACOSX/c/._1.bmp", []byte("y"), "c/notes.txt", []byte("z"))...),
	} {
		got, err := DecodeScanZip(z, 1<<20)
		require.NoError(t, err, name)
		require.Len(t, got, 3, name)
		for i := range scans {
			assert.Equal(t, scans[i].Pix, got[i].Pix, "%s: slice %d", name, i+1)
		}
	}
	bad := []struct {
		name string
		zip  []byte
		want string
	}{
		{"missing slice", zipOf(t, files("", 1, 3)...), "zip lacks slice 2.bmp (it has 2 slices, up to 3.bmp)"},
		{"no slice", zipOf(t, "readme.txt", []byte("hi")), "zip holds no slice"},
		{"two folders", zipOf(t, append(files("a/", 1), files("b/", 2)...)...), `zip holds slices in two folders, "a" and "b"`},
		{"corrupt slice", zipOf(t, "1.bmp", []byte("BMnot really")), "1.bmp:"},
		{"too large", zipOf(t, files("", 1)...), "more than the 100 a slice may have"},
		{"not a zip", []byte("PK\x03\x04garbage"), "not a readable zip"},
	}
	for _, tc := range bad {
		limit := int64(1 << 20)
		if tc.name == "too large" {
			limit = 100
		}
		_, err := DecodeScanZip(tc.zip, limit)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
}

func TestDecodeCubeNPY(t *testing.T) {
	scans := []*image.Gray{scan(16, 16, 0), scan(16, 16, 1)}
	grey := append(append([]byte{}, scans[0].Pix...), scans[1].Pix...)
	want, err := StackScans(scans)
	require.NoError(t, err)
	got, err := DecodeCubeNPY(npyOf(t, "|u1", []int{2, 16, 16}, grey))
	require.NoError(t, err)
	assert.Equal(t, want, got, "B-scans are stacked as prep stacks them")

	var stacked []byte
	for _, s := range want {
		stacked = append(stacked, s.Pix...)
	}
	got, err = DecodeCubeNPY(npyOf(t, "|u1", []int{2, 3, 16, 16}, stacked))
	require.NoError(t, err)
	assert.Equal(t, want, got)

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"float", npyOf(t, "<f4", []int{1, 16, 16}, make([]byte, 4*256)), "want unsigned bytes"},
		{"2-D", npyOf(t, "|u1", []int{16, 16}, make([]byte, 256)), "want S×H×W B-scans or S×3×H×W stacks"},
		{"4 channels", npyOf(t, "|u1", []int{1, 4, 16, 16}, make([]byte, 4*256)), "want S×H×W"},
		{"short data", npyOf(t, "|u1", []int{2, 16, 16}, make([]byte, 256)), "holds 256 bytes of data, its shape [2 16 16] needs 512"},
		{"too many slices", npyOf(t, "|u1", []int{MaxCubeSlices + 1, 16, 16}, nil), "want 1 to 512 slices"},
		{"lying shape", npyOf(t, "|u1", []int{1, 1 << 20, 1 << 20}, nil), "want 1 to 512 slices of at most"},
		{"not npy", []byte("\x93NUMPY\x01"), "not a NumPy .npy file"},
	} {
		_, err := DecodeCubeNPY(tc.data)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
}

func TestStackScansRefusesMixedSizes(t *testing.T) {
	_, err := StackScans([]*image.Gray{scan(16, 16, 0), scan(32, 16, 0)})
	assert.ErrorContains(t, err, "slice 2 is 32×16 pixels, slice 1 16×16")
	_, err = StackScans(nil)
	assert.ErrorContains(t, err, "no slice")
}

func TestEncodeLabelsNPY(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, EncodeLabelsNPY(&b, []uint8{0, 1, 2, 3, 0, 1}, 1, 2, 3))
	r, err := npyheader.NewReader(bytes.NewReader(b.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3}, r.Header.Descr.Shape)
	assert.Equal(t, []byte{0, 1, 2, 3, 0, 1}, b.Bytes()[b.Len()-6:])
	assert.ErrorContains(t, EncodeLabelsNPY(&b, []uint8{0}, 2), "1 classes for shape [2]")
}
