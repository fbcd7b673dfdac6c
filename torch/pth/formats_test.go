package pth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func requireFloat32s(t *testing.T, v any, key string, want ...float32) {
	t.Helper()
	sd, ok := AsStateDict(v)
	require.True(t, ok, "value is %T", v)
	tensor, ok := sd.Get(key)
	require.True(t, ok, "no %q", key)
	got, err := tensor.Float32s()
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestPlainPickleLoadsStoragesFromBytes(t *testing.T) {
	v, format, err := decodeValue(plainPickle(t))
	require.NoError(t, err)
	assert.Equal(t, FormatPickle, format)
	requireFloat32s(t, v, "w", 1, 2)
}

func TestRebuildTensorV3OverUntypedStorage(t *testing.T) {
	// PyTorch 2 writes _rebuild_tensor_v3 over an untyped (byte) storage,
	// the offset counted in elements of the tensor's dtype.
	pkl := newRawPickle().global("collections", "OrderedDict").op(')', 'R', '(').str("t")
	pkl.global("torch._utils", "_rebuild_tensor_v3").op('(')
	pkl.storageID("UntypedStorage", "0", 16)
	pkl.int(1).ints(2).ints(1).op(0x89).global("collections", "OrderedDict").op(')', 'R')
	pkl.global("torch", "float32").op('t', 'R', 'u')
	v, _, err := decodeValue(torchZip(t, pkl.bytes(), record{"0", float32Bytes(1, 2, 3, 4)}))
	require.NoError(t, err)
	requireFloat32s(t, v, "t", 2, 3)
}

func TestRebuildFromTypeAndParameterWithState(t *testing.T) {
	// _rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, args, state)
	// around a 7-argument _rebuild_tensor_v2 (with metadata), inside
	// _rebuild_parameter_with_state.
	pkl := newRawPickle().op('}', '(').str("p")
	pkl.global("torch._utils", "_rebuild_parameter_with_state").op('(')
	pkl.global("torch._tensor", "_rebuild_from_type_v2").op('(')
	pkl.global("torch._utils", "_rebuild_tensor_v2").global("torch", "Tensor").op('(')
	pkl.storageID("FloatStorage", "0", 4)
	pkl.int(0).ints(2, 2).ints(1, 2).op(0x89).global("collections", "OrderedDict").op(')', 'R', '}', 't')
	pkl.op('}', 't', 'R') // state, end of _rebuild_from_type_v2
	pkl.op(0x88).global("collections", "OrderedDict").op(')', 'R', '}', 't', 'R', 'u')
	v, _, err := decodeValue(torchZip(t, pkl.bytes(), record{"0", float32Bytes(1, 2, 3, 4)}))
	require.NoError(t, err)
	requireFloat32s(t, v, "p", 1, 3, 2, 4) // the transpose, made contiguous
}

func TestLegacyStorageViews(t *testing.T) {
	// PyTorch 0.4 could save a tensor over a view of a storage: view key,
	// offset and size in elements.
	pkl := newRawPickle().op('}', '(').str("v")
	pkl.tensorV2(func() { pkl.legacyStorageID("FloatStorage", "0", 4, "0v", 1, 3) }, 1, []int64{2}, []int64{1})
	pkl.op('u')
	v, format, err := decodeValue(legacyOf(t, pkl.bytes(), []string{"0"}, []int64{4}, [][]byte{float32Bytes(1, 2, 3, 4)}))
	require.NoError(t, err)
	assert.Equal(t, FormatLegacy, format)
	requireFloat32s(t, v, "v", 3, 4)
}

func TestBigEndianZip(t *testing.T) {
	pkl := newRawPickle().op('}', '(').str("t")
	pkl.tensorV2(func() { pkl.storageID("FloatStorage", "0", 2) }, 0, []int64{2}, []int64{1})
	pkl.op('u')
	be := binary.BigEndian.AppendUint32(nil, math.Float32bits(1.5))
	be = binary.BigEndian.AppendUint32(be, math.Float32bits(-2))
	data := zipOf(t, record{"x/data.pkl", pkl.bytes()}, record{"x/byteorder", []byte("big")}, record{"x/data/0", be})
	v, _, err := decodeValue(data)
	require.NoError(t, err)
	requireFloat32s(t, v, "t", 1.5, -2)
}

func TestZipLayoutMatchesPyTorch(t *testing.T) {
	data := smallFiles(t)["zip"]
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		assert.Equal(t, zip.Store, f.Method, f.Name)
		off, err := f.DataOffset()
		require.NoError(t, err)
		assert.Zero(t, off%64, "%s data at offset %d", f.Name, off)
		assert.Equal(t, "FB", string(f.Extra[:2]), f.Name)
	}
	assert.Equal(t, []string{"archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1", "archive/version"}, names, "the weight in the optimizer state shares its storage")
	// Storages are written in the order of their keys as strings, as
	// torch.save does.
	var p storageTable
	for range 12 {
		p.key(&Tensor{})
	}
	var order []string
	for _, i := range p.sorted() {
		order = append(order, p.keys[i])
	}
	assert.Equal(t, []string{"0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"}, order)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	w, err := FromFloat32([]int64{2, 2}, []float32{1, 2, 3, 4})
	require.NoError(t, err)
	half := &Tensor{DType: BFloat16, Shape: []int64{3}, Data: []byte{1, 2, 3, 4, 5, 6}}
	n, err := FromInt64(nil, []int64{42})
	require.NoError(t, err)
	sd := NewStateDict()
	sd.Set("a.weight", w)
	sd.Set("b.half", half)
	sd.Set("c.count", n)
	entries := NewDict()
	entries.Set("epoch", int64(17))
	entries.Set("best_dice", 0.7361234567891234)
	entries.Set("dice_epoch", 0.1)
	entries.Set("state_dict", nil) // the tensors, not metadata
	entries.Set("arch", "unet")
	entries.Set("flag", true)
	entries.Set("steps", -3)
	c := &Checkpoint{StateDict: sd, Entries: entries, Key: "state_dict", Format: FormatSafetensors}

	for _, prefix := range []string{DataParallelPrefix, ""} {
		c.Prefix = prefix
		var buf bytes.Buffer
		require.NoError(t, Encode(&buf, c))
		back, err := decode(buf.Bytes())
		require.NoError(t, err)
		assert.Equal(t, FormatSafetensors, back.Format)
		assert.Equal(t, prefix, back.Prefix)
		assert.Empty(t, back.Key)
		// The metadata strings, sorted, without "format": "pt".
		assert.Equal(t, []any{"arch", "best_dice", "dice_epoch", "epoch", "flag", "steps"}, back.Entries.Keys())
		for k, want := range map[string]string{"epoch": "17", "best_dice": "0.7361234567891234", "dice_epoch": "0.1", "arch": "unet", "flag": "true", "steps": "-3"} {
			got, _ := back.Entries.Get(k)
			assert.Equal(t, want, got, k)
		}
		assert.ElementsMatch(t, sd.Keys(), back.StateDict.Keys())
		for _, k := range sd.Keys() {
			want, _ := sd.Get(k)
			got, _ := back.StateDict.Get(k)
			assert.True(t, want.Equal(got), k)
		}
		// Save writes what Load read.
		var again bytes.Buffer
		require.NoError(t, Encode(&again, back))
		assert.Equal(t, buf.Bytes(), again.Bytes())
	}

	// Without entries the metadata is "format": "pt" alone, which reads
	// back as no entries at all.
	var bare bytes.Buffer
	require.NoError(t, Encode(&bare, &Checkpoint{StateDict: sd, Format: FormatSafetensors}))
	back, err := decode(bare.Bytes())
	require.NoError(t, err)
	assert.Nil(t, back.Entries)

	// The file follows the format's specification, checked by hand: an
	// 8-byte little-endian header length, a JSON header whose entries give
	// dtype, shape and [begin, end) offsets into the data that follows.
	entries.Delete("arch")
	entries.Delete("flag")
	entries.Delete("steps")
	c.Prefix = ""
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, c))
	file := buf.Bytes()
	n64 := binary.LittleEndian.Uint64(file)
	var header map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(file[8:8+n64], &header))
	var meta map[string]string
	require.NoError(t, json.Unmarshal(header["__metadata__"], &meta))
	assert.Equal(t, map[string]string{"format": "pt", "epoch": "17", "best_dice": "0.7361234567891234", "dice_epoch": "0.1"}, meta)
	body := file[8+n64:]
	for key, want := range map[string]struct {
		dtype string
		shape []int64
		data  []byte
	}{"a.weight": {"F32", []int64{2, 2}, w.Data}, "b.half": {"BF16", []int64{3}, half.Data}, "c.count": {"I64", []int64{}, n.Data}} {
		var info struct {
			DType   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		require.NoError(t, json.Unmarshal(header[key], &info), key)
		assert.Equal(t, want.dtype, info.DType, key)
		assert.Equal(t, want.shape, info.Shape, key)
		assert.Equal(t, want.data, body[info.Offsets[0]:info.Offsets[1]], key)
	}
}

func TestReadsHandMadeSafetensors(t *testing.T) {
	header := `{"__metadata__":{"epoch":"3","note":"hi"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"flag":{"dtype":"BOOL","shape":[1,1],"data_offsets":[8,9]}}`
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	file = append(append(file, header...), float32Bytes(0.5, -1)...)
	file = append(file, 1)
	c, err := decode(file)
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "flag"}, c.StateDict.Keys())
	assert.Equal(t, []any{"epoch", "note"}, c.Entries.Keys())
	epoch, _ := c.Entries.Get("epoch")
	assert.Equal(t, "3", epoch)
	note, _ := c.Entries.Get("note")
	assert.Equal(t, "hi", note)
	flag, _ := c.StateDict.Get("flag")
	assert.Equal(t, Bool, flag.DType)
	assert.Equal(t, []int64{1, 1}, flag.Shape)

	for name, h := range map[string]string{
		"unsupported dtype": `{"x":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}}`,
		"offsets past data": `{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`,
		"shape overflow":    `{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`,
	} {
		file := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		file = append(append(file, h...), 0, 0)
		_, err := decode(file)
		assert.Error(t, err, name)
	}
}
