package optim

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/require"
)

// State dicts cross between Go and Python as JSON in which every value says
// its Python type, so that tuples stay tuples and ints stay ints:
//
//	null, true/false, "str", {"int": n}, {"float": x}, {"list": [...]},
//	{"tuple": [...]}, {"dict": [[key, value], ...]},
//	{"tensor": {"dtype": "float32", "shape": [...], "data": [...]}}
//
// Python's float repr and Go's float parsing round-trip every double, so
// numbers cross exactly.

// fromJSON turns the JSON form into a state dict tree.
func fromJSON(t *testing.T, v any) any {
	t.Helper()
	switch v := v.(type) {
	case nil, bool, string:
		return v
	case map[string]any:
		require.Len(t, v, 1, "tagged value %v", v)
		for tag, x := range v {
			switch tag {
			case "int":
				return int64(x.(float64))
			case "float":
				return x.(float64)
			case "list", "tuple":
				items := x.([]any)
				out := make([]any, len(items))
				for i, item := range items {
					out[i] = fromJSON(t, item)
				}
				if tag == "tuple" {
					return Tuple(out)
				}
				return out
			case "dict":
				d := NewDict()
				for _, kv := range x.([]any) {
					pair := kv.([]any)
					d.Set(fromJSON(t, pair[0]), fromJSON(t, pair[1]))
				}
				return d
			case "tensor":
				return tensorFromJSON(t, x.(map[string]any))
			}
			t.Fatalf("unknown tag %q", tag)
		}
	}
	t.Fatalf("unexpected JSON value %#v", v)
	return nil
}

func tensorFromJSON(t *testing.T, m map[string]any) *torch.Tensor {
	shape := []int64{}
	for _, s := range m["shape"].([]any) {
		shape = append(shape, int64(s.(float64)))
	}
	data := m["data"].([]any)
	switch m["dtype"] {
	case "float32":
		xs := make([]float32, len(data))
		for i, x := range data {
			xs[i] = float32(x.(float64))
		}
		return torch.FromSlice(xs, shape...)
	case "float64":
		xs := make([]float64, len(data))
		for i, x := range data {
			xs[i] = x.(float64)
		}
		return torch.FromSlice(xs, shape...)
	}
	t.Fatalf("unsupported dtype %v", m["dtype"])
	return nil
}

// toJSON turns a state dict tree into the JSON form.
func toJSON(v any) any {
	switch v := v.(type) {
	case nil, bool, string:
		return v
	case int64:
		return map[string]any{"int": v}
	case float64:
		return map[string]any{"float": v}
	case []any:
		return map[string]any{"list": toJSONItems(v)}
	case Tuple:
		return map[string]any{"tuple": toJSONItems(v)}
	case *Dict:
		pairs := []any{}
		for _, k := range v.Keys() {
			x, _ := v.Get(k)
			pairs = append(pairs, []any{toJSON(k), toJSON(x)})
		}
		return map[string]any{"dict": pairs}
	case *torch.Tensor:
		return map[string]any{"tensor": map[string]any{
			"dtype": v.DType().String(),
			"shape": jsonShape(v),
			"data":  v.To(torch.Float64).Float64s(),
		}}
	}
	panic(fmt.Sprintf("no JSON form for %T", v))
}

// jsonShape is the shape for JSON: [] rather than null for a scalar.
func jsonShape(t *torch.Tensor) []int64 { return append([]int64{}, t.Shape()...) }

func toJSONItems(vs []any) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = toJSON(v)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// relTol is how far optimizer results may be from PyTorch's, relative to
// the larger magnitude.
const relTol = 1e-6

// compareTree checks that got has want's structure, keys in the same
// order, and equal values; tensor elements may differ by relTol. PyTorch
// writes integer-valued hyperparameters left at their defaults as ints (a
// weight_decay of 0), so numbers compare by value whatever their type.
func compareTree(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case *Dict:
		g, ok := got.(*Dict)
		require.True(t, ok, "%s: want a dict, got %s", path, describe(got))
		require.Equal(t, w.Keys(), g.Keys(), "%s: keys", path)
		for _, k := range w.Keys() {
			wv, _ := w.Get(k)
			gv, _ := g.Get(k)
			compareTree(t, fmt.Sprintf("%s[%v]", path, k), wv, gv)
		}
	case []any, Tuple:
		require.IsType(t, want, got, "%s", path)
		ws, _ := asSequence(want)
		gs, _ := asSequence(got)
		require.Len(t, gs, len(ws), "%s", path)
		for i := range ws {
			compareTree(t, fmt.Sprintf("%s[%d]", path, i), ws[i], gs[i])
		}
	case int64, float64:
		wf, _ := asFloat(want)
		gf, err := asFloat(got)
		require.NoError(t, err, "%s", path)
		require.Equal(t, wf, gf, "%s", path)
	case *torch.Tensor:
		g, ok := got.(*torch.Tensor)
		require.True(t, ok, "%s: want a tensor, got %s", path, describe(got))
		require.Equal(t, w.DType(), g.DType(), "%s: dtype", path)
		requireClose(t, path, w, g)
	default:
		require.Equal(t, want, got, "%s", path)
	}
}

// requireClose checks shapes and elements within relTol.
func requireClose(t *testing.T, what string, want, got *torch.Tensor) {
	t.Helper()
	requireNear(t, what, want, got, relTol)
}

// requireNear checks shapes and elements within tol, relative to the
// larger magnitude.
func requireNear(t *testing.T, what string, want, got *torch.Tensor, tol float64) {
	t.Helper()
	require.Equal(t, want.Shape(), got.Shape(), "%s: shape", what)
	ws := want.To(torch.Float64).Float64s()
	gs := got.To(torch.Float64).Float64s()
	for i := range ws {
		diff := math.Abs(ws[i] - gs[i])
		if diff > tol*math.Max(math.Abs(ws[i]), math.Abs(gs[i])) {
			t.Fatalf("%s: element %d is %.9g, want %.9g (relative difference %.3g)", what, i, gs[i], ws[i], diff/math.Abs(ws[i]))
		}
	}
}
