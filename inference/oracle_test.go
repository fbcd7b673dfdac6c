package inference

// Plain-Go oracles of the fusion and the argmax that the predictor does
// with libtorch: the tests compare the predictor against them, and check
// them here against PyTorch.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
)

// fuse returns the weighted mean Σ_k w_k·p_k / Σ_k w_k of equally long
// probability slices, one per model: segmentation probabilities (the exp of
// a network's log-probabilities) or detection probabilities. It computes in
// float32, in model order, so that with weights summing to 1 the result is
// bit for bit PyTorch's w_1*p_1 + w_2*p_2 on float32 tensors.
func fuse(weights []float32, probs ...[]float32) ([]float32, error) {
	if len(probs) == 0 {
		return nil, errors.New("fusing no model")
	}
	if len(weights) != len(probs) {
		return nil, fmt.Errorf("%d weights for %d models", len(weights), len(probs))
	}
	var total float32
	for k, w := range weights {
		if !(w >= 0) {
			return nil, fmt.Errorf("weight %d is %g, want a non-negative number", k, w)
		}
		total += w
	}
	if !(total > 0) {
		return nil, errors.New("the fusion weights sum to 0")
	}
	for k, p := range probs[1:] {
		if len(p) != len(probs[0]) {
			return nil, fmt.Errorf("model %d has %d probabilities, model 0 has %d", k+1, len(p), len(probs[0]))
		}
	}

	fused := make([]float32, len(probs[0]))
	w := weights[0]
	for i, v := range probs[0] {
		fused[i] = w * v
	}
	for k, p := range probs[1:] {
		w := weights[k+1]
		p = p[:len(fused)]
		for i, v := range p {
			// The explicit conversion rounds the product, so that it is
			// never fused into a multiply-add (as PyTorch does not either).
			fused[i] += float32(w * v)
		}
	}
	if total != 1 {
		for i := range fused {
			fused[i] /= total
		}
	}
	return fused, nil
}

// argmax returns the label of each pixel of n images of per-class scores
// (probabilities or log-probabilities) laid out n×classes×H×W: the class of
// the highest score, the lowest such class on a tie and the first NaN if any,
// as torch.argmax and numpy.argmax do. The labels are laid out n×H×W.
func argmax(scores []float32, n, classes int) ([]uint8, error) {
	if n <= 0 || classes <= 0 || classes > 256 {
		return nil, fmt.Errorf("argmax over %d images of %d classes", n, classes)
	}
	if len(scores)%(n*classes) != 0 {
		return nil, fmt.Errorf("%d scores do not make %d images of %d classes", len(scores), n, classes)
	}
	area := len(scores) / (n * classes)
	labels := make([]uint8, n*area)
	best := make([]float32, area)
	for b := range n {
		image := scores[b*classes*area : (b+1)*classes*area]
		out := labels[b*area : (b+1)*area]
		copy(best, image[:area])
		// Class-major sweeps keep every read sequential.
		for c := 1; c < classes; c++ {
			plane := image[c*area : (c+1)*area]
			for i, v := range plane {
				if v > best[i] || v != v && best[i] == best[i] {
					best[i] = v
					out[i] = uint8(c)
				}
			}
		}
	}
	return labels, nil
}

func TestOracleFuse(t *testing.T) {
	got, err := fuse([]float32{0.5, 0.5}, []float32{0.2, 0.4, 1}, []float32{0.6, 0, 1})
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float32{0.4, 0.2, 1}, got, 1e-7)

	// Weights need not sum to 1.
	got, err = fuse([]float32{1, 3}, []float32{1, 0}, []float32{0, 1})
	require.NoError(t, err)
	assert.Equal(t, []float32{0.25, 0.75}, got)

	got, err = fuse([]float32{2}, []float32{0.5, 0.125})
	require.NoError(t, err)
	assert.Equal(t, []float32{0.5, 0.125}, got)
}

func TestOracleFuseBadInput(t *testing.T) {
	p := []float32{0.5, 0.5}
	tests := []struct {
		name    string
		weights []float32
		probs   [][]float32
		want    string
	}{
		{"no model", nil, nil, "fusing no model"},
		{"weight count", []float32{1}, [][]float32{p, p}, "1 weights for 2 models"},
		{"negative weight", []float32{1, -1}, [][]float32{p, p}, "weight 1 is -1"},
		{"NaN weight", []float32{float32(math.NaN()), 1}, [][]float32{p, p}, "weight 0 is NaN"},
		{"zero weights", []float32{0, 0}, [][]float32{p, p}, "sum to 0"},
		{"lengths", []float32{1, 1}, [][]float32{p, p[:1]}, "model 1 has 1 probabilities, model 0 has 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fuse(tt.weights, tt.probs...)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestOracleArgmax(t *testing.T) {
	nan := float32(math.NaN())
	// Two images of three classes over 1×4 pixels.
	scores := []float32{
		// image 0: class 0, 1, 2 planes
		0.5, 0.1, 0.3, 0.2,
		0.2, 0.6, 0.3, 0.4,
		0.3, 0.3, 0.4, 0.4,
		// image 1: ties go to the lowest class; NaN wins, the first one.
		0.3, 0.3, 0.1, 0.1,
		0.3, 0.2, nan, 0.9,
		0.3, 0.3, nan, nan,
	}
	got, err := argmax(scores, 2, 3)
	require.NoError(t, err)
	assert.Equal(t, []uint8{0, 1, 2, 1, 0, 0, 1, 2}, got)

	_, err = argmax(scores[:23], 2, 3)
	assert.ErrorContains(t, err, "23 scores do not make 2 images of 3 classes")
	_, err = argmax(scores, 0, 3)
	assert.ErrorContains(t, err, "argmax over 0 images")
}

const torchFusion = `
import sys
import numpy as np
import torch

n, c, h, w = (int(v) for v in sys.argv[1:5])
a = torch.from_numpy(np.fromfile("a.bin", dtype="<f4").reshape(n, c, h, w))
b = torch.from_numpy(np.fromfile("b.bin", dtype="<f4").reshape(n, c, h, w))
fused = 0.5 * a + 0.5 * b
fused.numpy().astype("<f4").tofile("fused.bin")
fused.argmax(dim=1).numpy().astype(np.uint8).tofile("labels.bin")
`

// TestFusionMatchesPyTorch fuses two models' probabilities with many ties
// and compares the fused values bit for bit and the labels with
// torch.argmax.
func TestOracleFusionMatchesPyTorch(t *testing.T) {
	const n, c, h, w = 3, 4, 8, 16
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	models := make([][]float32, 2)
	for m, name := range []string{"a.bin", "b.bin"} {
		models[m] = make([]float32, n*c*h*w)
		for i := range models[m] {
			// Eighths make exact ties between classes after fusion.
			models[m][i] = float32(rng.IntN(9)) / 8
			if rng.IntN(4) > 0 {
				models[m][i] = rng.Float32()
			}
		}
		writeFloat32s(t, filepath.Join(dir, name), models[m])
	}
	pytorchtest.Run(t, dir, torchFusion, "3", "4", "8", "16")

	fused, err := fuse([]float32{0.5, 0.5}, models...)
	require.NoError(t, err)
	want := readFloat32s(t, filepath.Join(dir, "fused.bin"))
	require.Len(t, fused, len(want))
	for i := range want {
		require.Equal(t, math.Float32bits(want[i]), math.Float32bits(fused[i]), "fused value %d", i)
	}

	labels, err := argmax(fused, n, c)
	require.NoError(t, err)
	wantLabels, err := os.ReadFile(filepath.Join(dir, "labels.bin"))
	require.NoError(t, err)
	assert.Equal(t, wantLabels, labels)
}

func writeFloat32s(t *testing.T, path string, values []float32) {
	t.Helper()
	buf := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	require.NoError(t, os.WriteFile(path, buf, 0o644))
}

func readFloat32s(t *testing.T, path string) []float32 {
	t.Helper()
	buf, err := os.ReadFile(path)
	require.NoError(t, err)
	values := make([]float32, len(buf)/4)
	for i := range values {
		values[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return values
}
