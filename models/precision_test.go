package models

import (
	"testing"

	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePrecision(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Precision
		err  string
	}{
		{"", Float32, ""}, {"fp32", Float32, ""}, {"bf16", BF16, ""}, {"fp16", FP16, ""},
		{"float16", "", `precision "float16": want bf16, fp16 or fp32`},
	} {
		got, err := ParsePrecision(tc.in)
		if tc.err != "" {
			assert.EqualError(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
	assert.ErrorContains(t, FP16.Check(torch.CPU), "fp16 runs on CUDA only")
	assert.NoError(t, FP16.Check(torch.CUDA(0)))
	assert.NoError(t, BF16.Check(torch.CPU))
}

// TestBF16ForwardIsCloseToFloat32 runs each network's evaluation pass in
// bfloat16 mixed precision: the outputs come back as float32, within
// bfloat16's precision of the float32 pass (its 8-bit mantissa rounds
// each convolution's inputs to about 0.4 %): probabilities within 0.05,
// and nearly every pixel labelled alike.
func TestBF16ForwardIsCloseToFloat32(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			torch.ManualSeed(3)
			m, err := New(name)
			require.NoError(t, err)
			defer m.Free()
			m.Eval()
			x := torch.Randn([]int64{2, 3, 64, 64}, torch.Float32CPU)
			var seg32, det32, seg16, det16 *torch.Tensor
			torch.InferenceMode(func() {
				seg32, det32, err = Float32.Forward(torch.CPU, func() (*torch.Tensor, *torch.Tensor, error) { return m.Forward(x) })
				require.NoError(t, err)
				seg16, det16, err = BF16.Forward(torch.CPU, func() (*torch.Tensor, *torch.Tensor, error) { return m.Forward(x) })
				require.NoError(t, err)
			})
			assert.Equal(t, torch.Float32, det16.DType())
			detDiff := det16.Sub(det32).Abs().Max().Item()
			assert.Less(t, detDiff, 0.05, "detection probabilities")
			assert.Positive(t, detDiff, "the pass ran in bfloat16")
			if seg32 == nil {
				assert.Nil(t, seg16)
				return
			}
			assert.Equal(t, torch.Float32, seg16.DType())
			probDiff := seg16.Exp().Sub(seg32.Exp()).Abs().Max().Item()
			agree := seg16.Argmax(1, false).Eq(seg32.Argmax(1, false)).To(torch.Float32).Mean().Item()
			t.Logf("largest probability difference %.4f, detection %.4f, labels agreeing %.4f", probDiff, detDiff, agree)
			assert.Less(t, probDiff, 0.05)
			assert.Greater(t, agree, 0.95)
		})
	}
}
