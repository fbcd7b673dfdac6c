package oct

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
)

// The decoders of the data path never panic and never allocate for more
// pixels than the limits, whatever a file holds. Their seeds are small
// valid files, files whose headers claim huge sizes, and truncations.

func seedBMPs(f *testing.F, label bool) {
	levels := func(x, y int) uint8 { return uint8(x*7 + y) }
	if label {
		levels = func(x, y int) uint8 { return []uint8{0, LabelREA, LabelSRF, LabelPED}[(x+y)%4] }
	}
	var buf bytes.Buffer
	require.NoError(f, bmp.Encode(&buf, greyImage(16, 8, levels)))
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add(hugeBMP(1<<30, 1<<30))
	f.Add(hugeBMP(1<<20, 1<<20))
}

func FuzzDecodeSlice(f *testing.F) {
	seedBMPs(f, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeSlice(bytes.NewReader(data))
	})
}

func FuzzDecodeLabel(f *testing.F) {
	seedBMPs(f, true)
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeLabel(bytes.NewReader(data), 0, 0)
	})
}

func FuzzDecodeStack(f *testing.F) {
	var buf bytes.Buffer
	require.NoError(f, png.Encode(&buf, greyImage(16, 8, func(x, y int) uint8 { return uint8(x + y) })))
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()-20])
	f.Add(hugePNG(f, 1<<20, 1<<20))
	f.Add(hugePNG(f, 1<<14, 1<<14))
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeStack(bytes.NewReader(data))
	})
}
