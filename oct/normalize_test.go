package oct

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The training statistics of the original data set.
var originalInfo = Info{
	Mean: [3]float64{0.143694, 0.143672, 0.143650},
	Std:  [3]float64{0.097954, 0.097920, 0.097885},
}

// TestNormalizerMatchesPyTorch compares every grey level of every channel,
// bit for bit, with the original transforms: ToTensor (float().div(255)) then
// Normalize (sub_(mean).div_(std) per channel on float32 tensors).
func TestNormalizerMatchesPyTorch(t *testing.T) {
	const script = `
import torch
mean = torch.FloatTensor([0.143694, 0.143672, 0.143650])
std = torch.FloatTensor([0.097954, 0.097920, 0.097885])
img = torch.arange(256).to(torch.uint8).view(1, 1, 256).repeat(3, 1, 1)
img = img.float().div(255)
for t, m, s in zip(img, mean, std):
    t.sub_(m).div_(s)
for v in img.view(-1).tolist():
    print(torch.tensor(v, dtype=torch.float32).view(torch.int32).item() & 0xffffffff)
`
	out := pytorchtest.Run(t, "", script)
	fields := strings.Fields(out)
	require.Len(t, fields, 3*256)
	norm, err := NewNormalizer(originalInfo)
	require.NoError(t, err)
	for c := range 3 {
		for v := range 256 {
			bits, err := strconv.ParseUint(fields[c*256+v], 10, 32)
			require.NoError(t, err)
			want := math.Float32frombits(uint32(bits))
			require.Equal(t, want, norm.Value(c, uint8(v)), "channel %d grey %d", c, v)
		}
	}
}

func TestNormalizerFill(t *testing.T) {
	norm, err := NewNormalizer(originalInfo)
	require.NoError(t, err)
	s := NewStack(3, 2)
	for i := range s.Pix {
		s.Pix[i] = uint8(10 * i)
	}
	dst := make([]float32, 18)
	norm.Fill(dst, s, false)
	for i, v := range s.Pix {
		assert.Equal(t, norm.Value(i/6, v), dst[i])
	}
	norm.Fill(dst, s, true)
	for c := range 3 {
		for y := range 2 {
			for x := range 3 {
				assert.Equal(t, norm.Value(c, s.Pix[c*6+y*3+2-x]), dst[c*6+y*3+x])
			}
		}
	}
	_, err = NewNormalizer(Info{Mean: [3]float64{0, 0, 0}, Std: [3]float64{1, 0, 1}})
	assert.ErrorContains(t, err, "std[1]")
}
