package pth

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// describe renders a value in the JSON form the reference scripts' describe()
// gives a Python value, so the two can be compared exactly: floats by their
// bits, tensors by dtype, shape and contiguous bytes.
func describe(t testing.TB, v any) any {
	t.Helper()
	pairs := func(keys []any, get func(any) any) []any {
		out := []any{}
		for _, k := range keys {
			out = append(out, []any{describe(t, k), describe(t, get(k))})
		}
		return out
	}
	switch v := v.(type) {
	case nil:
		return map[string]any{"none": true}
	case bool:
		return map[string]any{"bool": v}
	case int64:
		return map[string]any{"int": strconv.FormatInt(v, 10)}
	case float64:
		return map[string]any{"float": strconv.FormatUint(math.Float64bits(v), 10)}
	case string:
		return map[string]any{"str": v}
	case []any:
		out := []any{}
		for _, it := range v {
			out = append(out, describe(t, it))
		}
		return map[string]any{"list": out}
	case Tuple:
		out := []any{}
		for _, it := range v {
			out = append(out, describe(t, it))
		}
		return map[string]any{"tuple": out}
	case *Dict:
		get := func(k any) any { x, _ := v.Get(k); return x }
		if !v.Ordered {
			return map[string]any{"dict": pairs(v.Keys(), get)}
		}
		out := map[string]any{"odict": pairs(v.Keys(), get)}
		if md, ok := v.Attrs.Get("_metadata"); ok {
			out["metadata"] = describe(t, md)
		}
		return out
	case *StateDict:
		keys := []any{}
		for _, k := range v.Keys() {
			keys = append(keys, k)
		}
		out := map[string]any{"odict": pairs(keys, func(k any) any { x, _ := v.Get(k.(string)); return x })}
		if v.Metadata != nil {
			out["metadata"] = describe(t, v.Metadata)
		}
		return out
	case []byte:
		return map[string]any{"bytes": hex.EncodeToString(v)}
	case Device:
		return map[string]any{"device": string(v)}
	case *Tensor:
		shape := []any{}
		for _, d := range v.Shape {
			shape = append(shape, d)
		}
		return map[string]any{"tensor": map[string]any{"dtype": v.DType.String(), "shape": shape, "hex": hex.EncodeToString(v.Data)}}
	}
	t.Fatalf("describe: unexpected %T", v)
	return nil
}

// requireSameDescription compares a Go description with the JSON the
// reference printed, after a JSON round trip of the former.
func requireSameDescription(t *testing.T, want json.RawMessage, got any, msgAndArgs ...any) {
	t.Helper()
	b, err := json.Marshal(got)
	require.NoError(t, err)
	var g, w any
	require.NoError(t, json.Unmarshal(b, &g))
	require.NoError(t, json.Unmarshal(want, &w))
	require.Equal(t, w, g, msgAndArgs...)
}

// pyDescribe is the Python side of describe.
const pyDescribe = `
import collections, json, struct
import numpy as np
import torch

def describe(v):
    if isinstance(v, torch.Tensor):
        t = v.detach().contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        return {"tensor": {"dtype": str(t.dtype)[len("torch."):], "shape": list(t.shape), "hex": raw.hex()}}
    if v is None:
        return {"none": True}
    if isinstance(v, torch.device):
        return {"device": str(v)}
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    if isinstance(v, (bool, np.bool_)):
        return {"bool": bool(v)}
    if isinstance(v, (int, np.integer)):
        return {"int": str(int(v))}
    if isinstance(v, (float, np.floating)):
        return {"float": str(struct.unpack("<Q", struct.pack("<d", float(v)))[0])}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, collections.OrderedDict):
        out = {"odict": [[describe(k), describe(x)] for k, x in v.items()]}
        md = getattr(v, "_metadata", None)
        if md is not None:
            out["metadata"] = describe(md)
        return out
    if isinstance(v, dict):
        return {"dict": [[describe(k), describe(x)] for k, x in v.items()]}
    if isinstance(v, list):
        return {"list": [describe(x) for x in v]}
    if isinstance(v, tuple):
        return {"tuple": [describe(x) for x in v]}
    raise TypeError("cannot describe %r" % type(v))
`
