package pth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPickle assembles pickles opcode by opcode, to make files no
// well-behaved writer would.
type rawPickle struct{ p pickleWriter }

func newRawPickle() *rawPickle {
	r := &rawPickle{}
	r.p.op(0x80, 2)
	return r
}

func (r *rawPickle) op(b ...byte) *rawPickle { r.p.op(b...); return r }

func (r *rawPickle) global(module, name string) *rawPickle {
	r.p.op('c')
	r.p.buf.WriteString(module + "\n" + name + "\n")
	return r
}

func (r *rawPickle) str(s string) *rawPickle { _ = r.p.string(s); return r }
func (r *rawPickle) int(n int64) *rawPickle  { r.p.int(n); return r }

func (r *rawPickle) ints(ns ...int64) *rawPickle {
	r.op('(')
	for _, n := range ns {
		r.int(n)
	}
	return r.op('t')
}

// storageID pushes the persistent id of a storage in a zip file.
func (r *rawPickle) storageID(class, key string, numel int64) *rawPickle {
	return r.op('(').str("storage").global("torch", class).str(key).str("cpu").int(numel).op('t', 'Q')
}

// legacyStorageID pushes the persistent id of a storage in a legacy file,
// with view metadata when viewKey is not empty.
func (r *rawPickle) legacyStorageID(class, key string, numel int64, viewKey string, viewOffset, viewSize int64) *rawPickle {
	r.op('(').str("storage").global("torch", class).str(key).str("cpu").int(numel)
	if viewKey == "" {
		r.op('N')
	} else {
		r.op('(').str(viewKey).int(viewOffset).int(viewSize).op('t')
	}
	return r.op('t', 'Q')
}

// tensorV2 pushes _rebuild_tensor_v2 over the storage that pushStorage
// pushes.
func (r *rawPickle) tensorV2(pushStorage func(), offset int64, size, stride []int64) *rawPickle {
	r.global("torch._utils", "_rebuild_tensor_v2").op('(')
	pushStorage()
	r.int(offset).ints(size...).ints(stride...).op(0x89)
	r.global("collections", "OrderedDict").op(')', 'R')
	return r.op('t', 'R')
}

func (r *rawPickle) bytes() []byte { return append(append([]byte(nil), r.p.buf.Bytes()...), '.') }

type record struct {
	name string
	data []byte
}

// zipOf returns a zip archive of the records, stored uncompressed.
func zipOf(t testing.TB, records ...record) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, r := range records {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: r.name, Method: zip.Store})
		require.NoError(t, err)
		_, err = w.Write(r.data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// torchZip returns a torch.save zip file of a data pickle and storages.
func torchZip(t testing.TB, pkl []byte, storages ...record) []byte {
	records := []record{{"archive/data.pkl", pkl}}
	for _, s := range storages {
		records = append(records, record{"archive/data/" + s.name, s.data})
	}
	return zipOf(t, append(records, record{"archive/version", []byte("3\n")})...)
}

// legacyOf returns a legacy torch.save file of a data pickle and storages,
// each given with the element count its record declares.
func legacyOf(t testing.TB, pkl []byte, keys []string, counts []int64, storages [][]byte) []byte {
	t.Helper()
	out, err := legacyHeader()
	require.NoError(t, err)
	out = append(out, pkl...)
	keyList := make([]any, len(keys))
	for i, k := range keys {
		keyList[i] = k
	}
	kl, err := (&pickleWriter{}).encodePickle(keyList)
	require.NoError(t, err)
	out = append(out, kl...)
	for i := range keys {
		out = binary.LittleEndian.AppendUint64(out, uint64(counts[i]))
		out = append(out, storages[i]...)
	}
	return out
}

func float32Bytes(vs ...float32) []byte {
	var out []byte
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func TestRefusesGlobalsOutsideTheAllowlist(t *testing.T) {
	call := func(module, name string) []byte {
		return newRawPickle().global(module, name).str("echo pwned").op(0x85, 'R').bytes()
	}
	stackGlobal := append([]byte{0x80, 4, 0x8c, 10}, "subprocess"...)
	stackGlobal = append(append(stackGlobal, 0x8c, 5), "Popen"...)
	stackGlobal = append(stackGlobal, 0x93, ')', 'R', '.')
	inst := []byte("\x80\x02(S'id'\nios\nsystem\n.")
	pkl := call("os", "system")
	cases := []struct {
		name, global string
		data         []byte
	}{
		{"zip os.system", "os.system", torchZip(t, pkl)},
		{"plain builtins.eval", "builtins.eval", call("builtins", "eval")},
		{"plain posix.system", "posix.system", call("posix", "system")},
		{"legacy os.system", "os.system", legacyOf(t, pkl, nil, nil, nil)},
		{"stack global subprocess.Popen", "subprocess.Popen", stackGlobal},
		{"INST os.system", "os.system", inst},
		{"module class", "edema.models.UNet", torchZip(t, newRawPickle().global("edema.models", "UNet").op(')', 0x81).bytes())},
		{"numpy array", "numpy.core.multiarray._reconstruct", call("numpy.core.multiarray", "_reconstruct")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := DecodeValue(c.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "refusing global "+c.global)
			_, err = Decode(c.data)
			require.Error(t, err)
		})
	}
}

func TestHostileTensorsAndStorages(t *testing.T) {
	floats := float32Bytes(1, 2, 3, 4)
	zipTensor := func(numel, offset int64, size, stride []int64, data []byte) []byte {
		pkl := newRawPickle()
		pkl.tensorV2(func() { pkl.storageID("FloatStorage", "0", numel) }, offset, size, stride)
		return torchZip(t, pkl.bytes(), record{"0", data})
	}
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"size beyond storage", "reaches past its storage", zipTensor(4, 0, []int64{10}, []int64{1}, floats)},
		{"offset beyond storage", "reaches past its storage", zipTensor(4, 4, []int64{1}, []int64{1}, floats)},
		{"strides beyond storage", "reaches past its storage", zipTensor(4, 0, []int64{2, 2}, []int64{3, 1}, floats)},
		{"storage of petabytes", "claims", zipTensor(1<<50, 0, []int64{1}, []int64{1}, floats)},
		{"storage larger than record", "holds 16 bytes, expected 400", zipTensor(100, 0, []int64{1}, []int64{1}, floats)},
		{"shape product overflow", "int64", zipTensor(4, 0, []int64{1 << 40, 1 << 40}, []int64{0, 0}, floats)},
		{"huge expanded view", "needs", zipTensor(4, 0, []int64{1 << 40}, []int64{0}, floats)},
		{"negative size", "negative", zipTensor(4, 0, []int64{-1}, []int64{1}, floats)},
		{"negative stride", "negative stride", zipTensor(4, 3, []int64{2}, []int64{-1}, floats)},
		{"negative offset", "negative storage offset", zipTensor(4, -1, []int64{1}, []int64{1}, floats)},
		{"stride count mismatch", "strides", zipTensor(4, 0, []int64{2, 2}, []int64{1}, floats)},
		{"missing storage record", "lacks storage record", func() []byte {
			pkl := newRawPickle()
			pkl.tensorV2(func() { pkl.storageID("FloatStorage", "7", 4) }, 0, []int64{4}, []int64{1})
			return torchZip(t, pkl.bytes())
		}()},
		{"legacy storage count mismatch", "the pickle declared", func() []byte {
			pkl := newRawPickle()
			pkl.tensorV2(func() { pkl.legacyStorageID("FloatStorage", "0", 4, "", 0, 0) }, 0, []int64{4}, []int64{1})
			return legacyOf(t, pkl.bytes(), []string{"0"}, []int64{3}, [][]byte{floats[:12]})
		}()},
		{"legacy storage count beyond file", "truncated", func() []byte {
			pkl := newRawPickle()
			pkl.tensorV2(func() { pkl.legacyStorageID("FloatStorage", "0", 4, "", 0, 0) }, 0, []int64{4}, []int64{1})
			return legacyOf(t, pkl.bytes(), []string{"0"}, []int64{4}, [][]byte{floats[:8]})
		}()},
		{"legacy storage nobody uses", "nothing refers to", legacyOf(t, newRawPickle().op('N').bytes(), []string{"9"}, []int64{0}, [][]byte{nil})},
		{"legacy view outside storage", "reaches past storage", func() []byte {
			pkl := newRawPickle()
			pkl.tensorV2(func() { pkl.legacyStorageID("FloatStorage", "0", 4, "v", 3, 2) }, 0, []int64{1}, []int64{1})
			return legacyOf(t, pkl.bytes(), []string{"0"}, []int64{4}, [][]byte{floats})
		}()},
		{"whole nn.Module", "whole pickled nn.Module", legacyOf(t, newRawPickle().op('(').str("module").op('N', 'N', 'N', 't', 'Q').bytes(), nil, nil, nil)},
		{"list containing itself", "contains itself", []byte("\x80\x02]q\x00h\x00a.")},
		{"deep nesting", "nests deeper", append(append([]byte{0x80, 2}, bytes.Repeat([]byte{'('}, 2000)...), '.')},
		{"deep nesting without marks", "nests deeper", func() []byte {
			b := append([]byte{0x80, 2}, bytes.Repeat([]byte{']'}, 1500)...)
			return append(append(b, bytes.Repeat([]byte{'a'}, 1499)...), '.')
		}()},
		{"bytes claiming 4 GiB", "truncated", []byte("\x80\x03B\xff\xff\xff\xffab.")},
		{"unicode8 claiming exabytes", "truncated", append([]byte{0x80, 4, 0x8d}, bytes.Repeat([]byte{0xff}, 8)...)},
		{"frame claiming exabytes", "truncated", append([]byte{0x80, 4, 0x95}, bytes.Repeat([]byte{0x7f}, 8)...)},
		{"huge LONG4", "longer than", append([]byte{0x80, 2, 0x8b}, 0, 0, 0, 1)},
		{"unknown opcode", "unknown opcode", []byte{0x80, 2, 0xff, '.'}},
		{"odd dict items", "malformed pickle", []byte("\x80\x02(K\x01d.")},
		{"memory bomb of empty dicts", "too much memory", append(append([]byte{0x80, 2}, bytes.Repeat([]byte{'}'}, 1<<20)...), '.')},
		{"not a checkpoint", "not a PyTorch checkpoint", []byte("hello, world")},
		{"zip without data.pkl", "no <folder>/data.pkl", zipOf(t, record{"a/b.txt", []byte("x")})},
		{"int instead of state dict", "not a state dict", []byte("\x80\x02K\x05.")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := decodeValue(c.data)
			if err == nil {
				_, err = decode(c.data)
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// smallFiles returns a small checkpoint in every format the package writes,
// and a plain pickle.
func smallFiles(t testing.TB) map[string][]byte {
	t.Helper()
	w, err := FromFloat32([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	require.NoError(t, err)
	n, err := FromInt64(nil, []int64{9})
	require.NoError(t, err)
	sd := NewStateDict()
	sd.Set("conv.weight", w)
	sd.Set("bn.num_batches_tracked", n)
	opt := NewDict()
	opt.Set("state", []any{w, int64(1), 0.25, "adam", Tuple{true, nil}})
	entries := NewDict()
	entries.Set("epoch", int64(4))
	entries.Set("state_dict", nil)
	entries.Set("best_dice", 0.5)
	entries.Set("optimizer", opt)
	files := map[string][]byte{}
	for _, f := range []Format{FormatZip, FormatLegacy, FormatSafetensors} {
		c := &Checkpoint{StateDict: sd, Prefix: DataParallelPrefix, Entries: entries, Key: "state_dict", Format: f}
		if f == FormatSafetensors {
			// Safetensors has no room for the optimizer's state.
			metadata := NewDict()
			metadata.Set("epoch", int64(4))
			metadata.Set("best_dice", 0.5)
			c.Entries, c.Key = metadata, ""
		}
		var buf bytes.Buffer
		require.NoError(t, Encode(&buf, c))
		files[f.String()] = buf.Bytes()
	}
	files["pickle"] = plainPickle(t)
	return files
}

// plainPickle returns what pickle.dump of {"w": tensor([1., 2.])} writes:
// the storage travels as a legacy torch.save file of its own, passed to
// torch.storage._load_from_bytes.
func plainPickle(t testing.TB) []byte {
	inner := legacyOf(t, newRawPickle().legacyStorageID("FloatStorage", "0", 2, "", 0, 0).bytes(),
		[]string{"0"}, []int64{2}, [][]byte{float32Bytes(1, 2)})
	pkl := newRawPickle().global("collections", "OrderedDict").op(')', 'R', '(').str("w")
	pkl.tensorV2(func() {
		pkl.global("torch.storage", "_load_from_bytes").op('B')
		pkl.p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(inner))))
		pkl.p.buf.Write(inner)
		pkl.op(0x85, 'R')
	}, 0, []int64{2}, []int64{1})
	return pkl.op('u').bytes()
}

func TestTruncatedFiles(t *testing.T) {
	for format, data := range smallFiles(t) {
		t.Run(format, func(t *testing.T) {
			_, err := decode(data)
			require.NoError(t, err)
			for n := 0; n < len(data); n++ {
				_, err := decode(data[:n])
				require.Error(t, err, "truncated to %d of %d bytes", n, len(data))
			}
		})
	}
}

func TestCorruptedFiles(t *testing.T) {
	for format, data := range smallFiles(t) {
		t.Run(format, func(t *testing.T) {
			failed := 0
			for i := range data {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					b := bytes.Clone(data)
					b[i] ^= mask
					// Each must return; many flips (in tensor data, say)
					// still make a valid file.
					if _, err := decode(b); err != nil {
						failed++
					}
				}
			}
			assert.Positive(t, failed)
		})
	}
	// In a zip file every byte of the records is covered by a checksum.
	data := smallFiles(t)["zip"]
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	for _, f := range zr.File {
		off, err := f.DataOffset()
		require.NoError(t, err)
		for i := off; i < off+int64(f.CompressedSize64); i++ {
			b := bytes.Clone(data)
			b[i] ^= 0x10
			_, err := decode(b)
			require.Error(t, err, "flipped byte %d of %s", i-off, f.Name)
			assert.True(t, strings.Contains(err.Error(), "checksum"), err.Error())
		}
	}
}
