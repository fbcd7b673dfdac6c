package models

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
	"github.com/stretchr/testify/require"
)

// Tensors travel to and from testdata/reference_models.py as PREFIX.json,
// an index of keys, dtypes, shapes and byte offsets, beside PREFIX.bin, the
// raw elements.

type indexEntry struct {
	Key    string  `json:"key"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Offset int64   `json:"offset"`
}

func writeTensors(t *testing.T, prefix string, named []nn.Named) {
	t.Helper()
	var index []indexEntry
	var data []byte
	for _, n := range named {
		shape := append([]int64{}, n.Tensor.Shape()...) // [] rather than null for scalars
		index = append(index, indexEntry{Key: n.Name, DType: n.Tensor.DType().String(), Shape: shape, Offset: int64(len(data))})
		data = append(data, n.Tensor.Bytes()...)
	}
	js, err := json.Marshal(index)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(prefix+".json", js, 0o644))
	require.NoError(t, os.WriteFile(prefix+".bin", data, 0o644))
}

// readTensors returns the tensors in file order; the caller frees them.
func readTensors(t *testing.T, prefix string) []nn.Named {
	t.Helper()
	js, err := os.ReadFile(prefix + ".json")
	require.NoError(t, err)
	var index []indexEntry
	require.NoError(t, json.Unmarshal(js, &index))
	data, err := os.ReadFile(prefix + ".bin")
	require.NoError(t, err)
	out := make([]nn.Named, len(index))
	for i, e := range index {
		dtype, err := torch.ParseDType(e.DType)
		require.NoError(t, err)
		n := int64(dtype.Size())
		for _, s := range e.Shape {
			n *= s
		}
		require.LessOrEqual(t, e.Offset+n, int64(len(data)), "tensor %s runs past the end of %s.bin", e.Key, prefix)
		out[i] = nn.Named{Name: e.Key, Tensor: torch.FromBytes(data[e.Offset:e.Offset+n], dtype, e.Shape...)}
	}
	return out
}

func byName(named []nn.Named) map[string]*torch.Tensor {
	m := make(map[string]*torch.Tensor, len(named))
	for _, n := range named {
		m[n.Name] = n.Tensor
	}
	return m
}
