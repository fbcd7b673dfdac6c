package pth

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pyModel is a small network with the layer types of the project's models
// (convolution, batch norm with its buffers, linear), wrapped as the
// original scripts wrapped theirs.
const pyModel = `
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))
`

// pyFixtures writes checkpoint files with PyTorch and, in expect.json,
// what torch.load (or pickle.load) reads back from each.
const pyFixtures = pyDescribe + pyModel + `
import os, pickle, sys
out = sys.argv[1]
torch.manual_seed(0)

def all_kinds():
    d = collections.OrderedDict()
    d["f32"] = torch.randn(2, 3)
    d["f64"] = torch.randn(3, dtype=torch.float64)
    d["f16"] = torch.randn(4).half()
    d["bf16"] = torch.randn(4).bfloat16()
    d["i64"] = torch.arange(-3, 3)
    d["i32"] = torch.arange(5, dtype=torch.int32) - 2
    d["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    d["i8"] = torch.tensor([-5, 5], dtype=torch.int8)
    d["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    d["bool"] = torch.tensor([True, False, True])
    d["scalar"] = torch.tensor(7)
    d["empty"] = torch.zeros(0, 3)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    d["base"] = base
    d["view"] = base[1:, ::2]
    d["row"] = base[2]
    d["transposed"] = torch.randn(3, 5).t()
    d["expanded"] = torch.randn(3, 1).expand(3, 4)
    d["param"] = nn.Parameter(torch.randn(2, 2))
    d["f16_view"] = torch.randn(4, 4).half()[:, 1:3]
    return d

net = Net()
dp = nn.DataParallel(net)
opt = torch.optim.Adam(dp.parameters(), lr=1e-3)
dp(torch.randn(2, 3, 8, 8)).sum().backward()
opt.step()
ckpt = {"epoch": 12, "state_dict": dp.state_dict(), "dice_epoch": 0.71,
        "best_dice": np.float64(0.7361), "optimizer": opt.state_dict()}

fixtures = {
    "kinds_zip.pth": (all_kinds(), True),
    "kinds_legacy.pth": (all_kinds(), False),
    "ckpt_zip.pth": (ckpt, True),
    "ckpt_legacy.pth": (ckpt, False),
    "model_key.pth": ({"model": net.state_dict(), "epoch": 3, "note": "x"}, True),
    "bare_dp_legacy.pth": (dp.state_dict(), False),
}
misc = {"size": torch.Size([2, 3]), "cuda": torch.device("cuda", 1), "cpu": torch.device("cpu"),
        "bytes": b"\x00\xffab", "empty_bytes": b"", "np_int": np.int64(-5), "np_f32": np.float32(0.1),
        "np_bool": np.bool_(True), "big": 2**62, "neg": -(2**40), 3: "int key", "nested": [[[]], ((), (1,))]}
fixtures["misc_zip.pth"] = (misc, True)
fixtures["misc_legacy.pth"] = (misc, False)
expect = {}
for name, (obj, new) in fixtures.items():
    path = os.path.join(out, name)
    torch.save(obj, path, _use_new_zipfile_serialization=new)
    expect[name] = describe(torch.load(path, weights_only=False))  # our own fixtures hold NumPy scalars, devices, bytes

# A plain pickle of tensors (protocol 4: frames, memoize, stack globals),
# whose storages embed torch.save files via torch.storage._load_from_bytes.
plain = collections.OrderedDict((k, v) for k, v in all_kinds().items() if k in ("f32", "view", "bf16", "scalar"))
with open(os.path.join(out, "plain.pkl"), "wb") as f:
    pickle.dump(plain, f, protocol=4)
with open(os.path.join(out, "plain.pkl"), "rb") as f:
    expect["plain.pkl"] = describe(pickle.load(f))

with open(os.path.join(out, "expect.json"), "w") as f:
    json.dump(expect, f)
`

func makeFixtures(t *testing.T) (string, map[string]json.RawMessage) {
	t.Helper()
	dir := t.TempDir()
	pytorchtest.Run(t, dir, pyFixtures, dir)
	b, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	require.NoError(t, err)
	var expect map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &expect))
	return dir, expect
}

// TestPyTorchInterop checks files in both directions against PyTorch: Go
// reads what torch.save wrote exactly as torch.load reads it, and torch.load
// reads what Go wrote exactly as Go meant it.
func TestPyTorchInterop(t *testing.T) {
	dir, expect := makeFixtures(t)
	t.Run("ReadValue", func(t *testing.T) { testReadPyTorchFiles(t, dir, expect) })
	t.Run("Load", func(t *testing.T) { testLoadPyTorchCheckpoints(t, dir) })
	t.Run("PyTorchLoadsGoFiles", func(t *testing.T) { testPyTorchLoadsGoFiles(t, dir) })
}

func testReadPyTorchFiles(t *testing.T, dir string, expect map[string]json.RawMessage) {
	formats := map[string]Format{
		"kinds_zip.pth": FormatZip, "kinds_legacy.pth": FormatLegacy,
		"ckpt_zip.pth": FormatZip, "ckpt_legacy.pth": FormatLegacy,
		"model_key.pth": FormatZip, "bare_dp_legacy.pth": FormatLegacy,
		"plain.pkl":    FormatPickle,
		"misc_zip.pth": FormatZip, "misc_legacy.pth": FormatLegacy,
	}
	for name, want := range expect {
		t.Run(name, func(t *testing.T) {
			v, format, err := ReadValue(filepath.Join(dir, name))
			require.NoError(t, err)
			assert.Equal(t, formats[name], format)
			requireSameDescription(t, want, describe(t, v))
		})
	}
}

func testLoadPyTorchCheckpoints(t *testing.T, dir string) {
	for _, name := range []string{"ckpt_zip.pth", "ckpt_legacy.pth"} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(filepath.Join(dir, name))
			require.NoError(t, err)
			assert.Equal(t, DataParallelPrefix, c.Prefix)
			assert.Equal(t, "state_dict", c.Key)
			require.NotNil(t, c.Entries)
			assert.Equal(t, []any{"epoch", "state_dict", "dice_epoch", "best_dice", "optimizer"}, c.Entries.Keys(), "the entries in torch.save's order")
			for k, want := range map[string]any{"epoch": int64(12), "dice_epoch": 0.71, "best_dice": 0.7361} {
				got, _ := c.Entries.Get(k)
				assert.Equal(t, want, got, k)
			}
			assert.Equal(t, []string{
				"conv.0.weight", "conv.0.bias", "conv.1.weight", "conv.1.bias",
				"conv.1.running_mean", "conv.1.running_var", "conv.1.num_batches_tracked",
				"fc.weight", "fc.bias",
			}, c.StateDict.Keys())
			w, _ := c.StateDict.Get("conv.0.weight")
			assert.Equal(t, []int64{4, 3, 3, 3}, w.Shape)
			n, _ := c.StateDict.Get("conv.1.num_batches_tracked")
			assert.Equal(t, Int64, n.DType)
			assert.Empty(t, n.Shape)
			// The module versions lose the wrapper along with the prefix.
			require.NotNil(t, c.StateDict.Metadata)
			assert.Equal(t, []any{"", "conv", "conv.0", "conv.1", "conv.2", "fc"}, c.StateDict.Metadata.Keys())
			v, _ := c.Entries.Get("optimizer")
			opt, ok := v.(*Dict)
			require.True(t, ok, "optimizer is %T", v)
			assert.Equal(t, []any{"state", "param_groups"}, opt.Keys())
		})
	}
	c, err := Load(filepath.Join(dir, "model_key.pth"))
	require.NoError(t, err)
	assert.Equal(t, "", c.Prefix)
	assert.Equal(t, "model", c.Key)
	assert.Equal(t, []any{"model", "epoch", "note"}, c.Entries.Keys())
	epoch, _ := c.Entries.Get("epoch")
	assert.Equal(t, int64(3), epoch)
	assert.Equal(t, 9, c.StateDict.Len())

	c, err = Load(filepath.Join(dir, "bare_dp_legacy.pth"))
	require.NoError(t, err)
	assert.Nil(t, c.Entries)
	assert.Equal(t, DataParallelPrefix, c.Prefix)
	assert.Equal(t, FormatLegacy, c.Format)
}

// pyCheckGoFiles loads the files Go wrote and prints what PyTorch reads,
// checks what must hold in PyTorch itself, and checks that the zip files
// use only opcodes and globals that torch's weights_only unpickler accepts
// (plus BINFLOAT, which PyTorch 2 accepts as well).
const pyCheckGoFiles = pyDescribe + pyModel + `
import io, os, pickletools, struct, sys, zipfile
from torch import _weights_only_unpickler as wo
d = sys.argv[1]
out = {}
for name in sorted(os.listdir(d)):
    if name.endswith(".pth"):
        out[name] = describe(torch.load(os.path.join(d, name)))

# The checkpoints go into the original scripts' DataParallel model, strict.
dp = nn.DataParallel(Net())
for name in ("go_ckpt_zip.pth", "go_ckpt_legacy.pth"):
    ck = torch.load(os.path.join(d, name))
    dp.load_state_dict(ck["state_dict"], strict=True)
    assert isinstance(ck["state_dict"], collections.OrderedDict)
plain = Net()
plain.load_state_dict(torch.load(os.path.join(d, "go_ckpt_plain.pth"))["state_dict"], strict=True)

# weights_only=True loads what 1.13's restricted unpickler can express.
for name in ("go_bare_zip.pth", "go_bare_legacy.pth", "go_nofloat_zip.pth"):
    sd = torch.load(os.path.join(d, name), weights_only=True)
    out["weights_only:" + name] = describe(sd)

# Safetensors files parsed by hand after the format's specification (the
# safetensors package is not installed), then loaded into the model.
st_dtypes = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
             "U8": torch.uint8, "BOOL": torch.bool}
with open(os.path.join(d, "go_ckpt.safetensors"), "rb") as f:
    raw = f.read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
body = raw[8 + n:]
meta = header.pop("__metadata__")
end = 0
sd = {}
for key, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
    begin, stop = info["data_offsets"]
    assert begin == end, "data must be contiguous"
    end = stop
    dtype = st_dtypes[info["dtype"]]
    sd[key] = torch.frombuffer(bytearray(body[begin:stop]), dtype=dtype).reshape(info["shape"]) if stop > begin \
        else torch.zeros(info["shape"], dtype=dtype)
assert end == len(body)
dp.load_state_dict(sd, strict=True)
out["safetensors"] = {"metadata": meta, "tensors": describe(collections.OrderedDict(sorted(sd.items())))}

allowed_ops = {"PROTO", "GLOBAL", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "EMPTY_DICT",
    "EMPTY_LIST", "EMPTY_TUPLE", "MARK", "SETITEMS", "SETITEM", "APPEND", "APPENDS", "TUPLE",
    "TUPLE1", "TUPLE2", "TUPLE3", "BININT", "BININT1", "BININT2", "LONG1", "BINUNICODE",
    "NEWTRUE", "NEWFALSE", "NONE", "REDUCE", "BUILD", "BINPERSID", "STOP", "BINFLOAT"}
allowed_globals = set(wo._get_allowed_globals().keys())
for name in sorted(os.listdir(d)):
    if name.endswith("_zip.pth"):
        with zipfile.ZipFile(os.path.join(d, name)) as z:
            assert z.namelist()[0] == "archive/data.pkl", z.namelist()
            assert z.read("archive/version") == b"3\n"
            for info in z.infolist():
                assert info.compress_type == zipfile.ZIP_STORED
            data = z.read("archive/data.pkl")
        for op, arg, pos in pickletools.genops(data):
            assert op.name in allowed_ops, (name, op.name)
            if op.name == "GLOBAL":
                assert arg.replace(" ", ".") in allowed_globals, (name, arg)
print(json.dumps(out))
`

func testPyTorchLoadsGoFiles(t *testing.T, src string) {
	dir := t.TempDir()
	ckpt, err := Load(filepath.Join(src, "ckpt_legacy.pth"))
	require.NoError(t, err)
	kinds, _, err := ReadValue(filepath.Join(src, "kinds_zip.pth"))
	require.NoError(t, err)
	kindsSD, ok := AsStateDict(kinds)
	require.True(t, ok)

	written := map[string]any{}
	save := func(name string, c *Checkpoint, format Format, prefix string) {
		c = &Checkpoint{StateDict: c.StateDict, Prefix: prefix, Entries: c.Entries, Key: c.Key, Format: format}
		require.NoError(t, Save(filepath.Join(dir, name), c))
		sd := c.StateDict
		if prefix != "" {
			sd = sd.WithPrefix(prefix)
		}
		v, err := c.value(sd)
		require.NoError(t, err)
		written[name] = v
	}
	write := func(name string, v any, f Format) {
		require.NoError(t, WriteValue(filepath.Join(dir, name), v, f))
		written[name] = v
	}
	save("go_ckpt_zip.pth", ckpt, FormatZip, DataParallelPrefix)
	save("go_ckpt_legacy.pth", ckpt, FormatLegacy, DataParallelPrefix)
	save("go_ckpt_plain.pth", ckpt, FormatZip, "")
	nofloat := NewDict()
	nofloat.Set("epoch", int64(5))
	nofloat.Set("state_dict", nil)
	save("go_nofloat_zip.pth", &Checkpoint{StateDict: ckpt.StateDict, Entries: nofloat, Key: "state_dict"}, FormatZip, DataParallelPrefix)
	write("go_bare_zip.pth", kindsSD, FormatZip)
	write("go_bare_legacy.pth", kindsSD, FormatLegacy)
	values := goValues(t)
	write("go_values_zip.pth", values, FormatZip)
	write("go_values_legacy.pth", values, FormatLegacy)

	// Safetensors holds the entries that are strings or numbers, as
	// metadata strings: all of ckpt's but the optimizer's state.
	metadata := NewDict()
	for _, k := range ckpt.Entries.Keys() {
		if v, _ := ckpt.Entries.Get(k); k != "optimizer" && k != ckpt.Key {
			metadata.Set(k, v)
		}
	}
	require.NoError(t, Save(filepath.Join(dir, "go_ckpt.safetensors"),
		&Checkpoint{StateDict: ckpt.StateDict, Prefix: ckpt.Prefix, Entries: metadata, Format: FormatSafetensors}))

	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, "", pyCheckGoFiles, dir)), &got))
	var st struct {
		Metadata map[string]string
		Tensors  json.RawMessage
	}
	require.NoError(t, json.Unmarshal(got["safetensors"], &st))
	assert.Equal(t, map[string]string{"format": "pt", "epoch": "12", "best_dice": "0.7361", "dice_epoch": "0.71"}, st.Metadata)
	prefixed := ckpt.StateDict.WithPrefix(DataParallelPrefix)
	keys := prefixed.Keys()
	sort.Strings(keys)
	sorted := NewOrderedDict()
	for _, k := range keys {
		tensor, _ := prefixed.Get(k)
		sorted.Set(k, tensor)
	}
	requireSameDescription(t, st.Tensors, describe(t, sorted), "safetensors")
	for name, v := range written {
		requireSameDescription(t, got[name], describe(t, v), name)
		// And Go reads back what it wrote.
		back, _, err := ReadValue(filepath.Join(dir, name))
		require.NoError(t, err)
		requireSameDescription(t, got[name], describe(t, back), name+" read back")
	}
	for _, name := range []string{"go_bare_zip.pth", "go_bare_legacy.pth", "go_nofloat_zip.pth"} {
		requireSameDescription(t, got["weights_only:"+name], describe(t, written[name]), name)
	}
}

// goValues is a value of every kind the writer supports, with the integer
// and float edge cases of the pickle encodings.
func goValues(t *testing.T) *Dict {
	ints := []any{}
	for _, n := range []int64{0, 1, 255, 256, 65535, 65536, -1, -256, math.MinInt32, math.MaxInt32,
		math.MaxInt32 + 1, math.MinInt32 - 1, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64, 128, -128, 32768} {
		ints = append(ints, n)
	}
	floats := []any{0.0, math.Copysign(0, -1), 1.5, -2.25e-300, math.Inf(1), math.Inf(-1), math.MaxFloat64, 0.1}
	long := make([]any, 2500) // more than one APPENDS batch
	for i := range long {
		long[i] = int64(i)
	}
	f, err := FromFloat32([]int64{2, 2}, []float32{1, -2, 3.5, float32(math.Inf(1))})
	require.NoError(t, err)
	i, err := FromInt64(nil, []int64{-7})
	require.NoError(t, err)
	empty := &Tensor{DType: Float16, Shape: []int64{0, 4, 0}, Data: []byte{}}
	inner := NewDict()
	inner.Set(int64(0), f)
	inner.Set(int64(1), i)
	od := NewOrderedDict()
	od.Set("b", "second")
	od.Set("a", "first")
	d := NewDict()
	d.Set("ints", ints)
	d.Set("floats", floats)
	d.Set("strings", []any{"", "ascii", "ünïcödé ✓", "with\nnewline"})
	d.Set("none_true_false", Tuple{nil, true, false})
	d.Set("tuples", []any{Tuple{}, Tuple{int64(1)}, Tuple{int64(1), int64(2)}, Tuple{int64(1), int64(2), int64(3)}, Tuple{int64(1), int64(2), int64(3), int64(4)}})
	d.Set("long_list", long)
	d.Set("int_keys", inner)
	d.Set("ordered", od)
	d.Set("tensors", []any{f, f, empty, i}) // f twice: one storage
	return d
}
