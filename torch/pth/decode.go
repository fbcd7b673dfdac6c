package pth

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// Format is a checkpoint file format.
type Format int

const (
	// FormatZip is torch.save's format since PyTorch 1.6: a zip archive of
	// a pickle and one record per storage.
	FormatZip Format = iota
	// FormatLegacy is torch.save's format of PyTorch 0.4 to 1.5 (and of
	// _use_new_zipfile_serialization=False): pickles followed by the raw
	// storages.
	FormatLegacy
	// FormatSafetensors is Hugging Face's safetensors: a JSON header and
	// the raw tensors, no pickle.
	FormatSafetensors
	// FormatPickle is a plain pickle.dump of tensors, which embeds each
	// storage as a small legacy torch.save file. It is read, not written.
	FormatPickle
)

func (f Format) String() string {
	switch f {
	case FormatZip:
		return "zip"
	case FormatLegacy:
		return "legacy"
	case FormatSafetensors:
		return "safetensors"
	case FormatPickle:
		return "pickle"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses a format name as String returns it.
func ParseFormat(s string) (Format, error) {
	for _, f := range []Format{FormatZip, FormatLegacy, FormatSafetensors, FormatPickle} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown format %q (want zip, legacy or safetensors)", s)
}

// legacyMagic is the first pickle of a legacy torch.save file.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const legacyProtocolVersion = 1001

// ReadValue reads a checkpoint file of any format and returns the Python
// value it holds (see the package documentation for the Go types), and its
// format. A safetensors file reads as an OrderedDict of its tensors.
func ReadValue(path string) (any, Format, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	v, f, err := DecodeValue(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, f, nil
}

// DecodeValue is ReadValue of a file's contents.
func DecodeValue(data []byte) (v any, f Format, err error) {
	defer recoverInternal(&err)
	return decodeValue(data)
}

// recoverInternal turns a panic, which would be a bug of this package, into
// an error, so that no input can crash a program that reads checkpoints.
// Tests and fuzzing call the unprotected functions.
func recoverInternal(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("internal error reading the file: %v", r)
	}
}

func decodeValue(data []byte) (any, Format, error) {
	if isSafetensors(data) {
		sd, _, err := decodeSafetensors(data)
		if err != nil {
			return nil, 0, err
		}
		d := NewOrderedDict()
		for _, k := range sd.Keys() {
			t, _ := sd.Get(k)
			d.Set(k, t)
		}
		return d, FormatSafetensors, nil
	}
	dec := &decoder{data: data, budget: newBudget(len(data))}
	raw, format, err := dec.decodeRaw()
	if err != nil {
		return nil, 0, err
	}
	conv := &converter{budget: dec.budget, done: make(map[any]any), active: make(map[any]bool)}
	v, err := conv.convert(raw, 0)
	if err != nil {
		return nil, 0, err
	}
	return v, format, nil
}

// decoder reads one torch.save or pickle file into gopickle's values, with
// tensors left as references to storages.
type decoder struct {
	data   []byte
	budget *budget
	// nested is set for the files that torch.storage._load_from_bytes
	// embeds, which may not embed further files.
	nested bool
	roots  map[string]*rootStorage
}

func (d *decoder) decodeRaw() (any, Format, error) {
	d.roots = make(map[string]*rootStorage)
	switch {
	case bytes.HasPrefix(d.data, []byte("PK\x03\x04")):
		v, err := d.decodeZip()
		return v, FormatZip, err
	case len(d.data) > 0 && d.data[0] == 0x80: // pickle PROTO opcode
		n, err := scanPickle(d.data)
		if err != nil {
			return nil, 0, err
		}
		first, err := d.unpickle(d.data[:n], refusePersistent)
		if err != nil {
			return nil, 0, err
		}
		if magic, ok := first.(*big.Int); ok && magic.Cmp(legacyMagic) == 0 {
			v, err := d.decodeLegacy(n)
			return v, FormatLegacy, err
		}
		return first, FormatPickle, nil
	}
	return nil, 0, errors.New("not a PyTorch checkpoint: neither a zip archive, a pickle nor a safetensors file")
}

func refusePersistent(any) (any, error) {
	return nil, errors.New("pickle refers to external storage, which only torch.save files have")
}

// storageFromID resolves the common part of a persistent id, (typename,
// storage_type, key, location, numel, ...), to the root storage and its
// element type, creating the root on first sight.
func (d *decoder) storageFromID(pid any, wantLen int) (*types.Tuple, *rootStorage, DType, error) {
	t, ok := pid.(*types.Tuple)
	if !ok {
		return nil, nil, 0, fmt.Errorf("persistent id is %s, not a tuple", describeRaw(pid))
	}
	if t.Len() == 0 {
		return nil, nil, 0, errors.New("persistent id is an empty tuple")
	}
	switch asText(t.Get(0)) {
	case "storage":
	case "module":
		return nil, nil, 0, errors.New("file holds a whole pickled nn.Module; only state dicts and checkpoint dicts of tensors are supported")
	default:
		return nil, nil, 0, fmt.Errorf("persistent id of unknown kind %s", describeRaw(t.Get(0)))
	}
	if t.Len() != wantLen {
		return nil, nil, 0, fmt.Errorf("storage persistent id has %d fields, expected %d", t.Len(), wantLen)
	}
	class, ok := t.Get(1).(storageClass)
	if !ok {
		return nil, nil, 0, fmt.Errorf("storage persistent id names %s, not a storage type", describeRaw(t.Get(1)))
	}
	var key string
	switch k := t.Get(2).(type) {
	case string:
		key = k
	case []byte:
		key = string(k)
	case int:
		key = strconv.Itoa(k)
	default:
		return nil, nil, 0, fmt.Errorf("storage key is %s", describeRaw(k))
	}
	numel, ok := rawInt(t.Get(4))
	if !ok || numel < 0 {
		return nil, nil, 0, fmt.Errorf("storage %q has invalid size %s", key, describeRaw(t.Get(4)))
	}
	es := class.dtype.ElemSize()
	nbytes, ok := mulInt64(numel, int64(es))
	if !ok || nbytes > int64(len(d.data)) {
		return nil, nil, 0, fmt.Errorf("storage %q claims %d elements of %d bytes, more than the file's %d bytes hold", key, numel, es, len(d.data))
	}
	root, ok := d.roots[key]
	if !ok {
		root = &rootStorage{key: key, nbytes: nbytes, elemSize: es}
		d.roots[key] = root
	}
	return t, root, class.dtype, nil
}

func asText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// decodeLegacy reads a legacy torch.save file after its magic number:
// protocol version, system info, the main pickle, the list of storage keys
// and then, per key, an int64 element count and the raw elements.
func (d *decoder) decodeLegacy(pos int) (any, error) {
	next := func(what string, persistent func(any) (any, error)) (any, error) {
		n, err := scanPickle(d.data[pos:])
		if err != nil {
			return nil, fmt.Errorf("legacy %s: %w", what, err)
		}
		v, err := d.unpickle(d.data[pos:pos+n], persistent)
		if err != nil {
			return nil, fmt.Errorf("legacy %s: %w", what, err)
		}
		pos += n
		return v, nil
	}
	proto, err := next("protocol version", refusePersistent)
	if err != nil {
		return nil, err
	}
	if p, ok := rawInt(proto); !ok || p != legacyProtocolVersion {
		return nil, fmt.Errorf("legacy file has protocol version %v, expected %d", proto, legacyProtocolVersion)
	}
	sysInfo, err := next("system info", refusePersistent)
	if err != nil {
		return nil, err
	}
	if info, ok := sysInfo.(*types.Dict); ok {
		if le, ok := info.Get("little_endian"); ok && le == false {
			return nil, errors.New("legacy file was written on a big-endian machine, which is not supported")
		}
	}
	value, err := next("data pickle", d.legacyPersistentLoad)
	if err != nil {
		return nil, err
	}
	keyList, err := next("storage keys", refusePersistent)
	if err != nil {
		return nil, err
	}
	keys, ok := keyList.(*types.List)
	if !ok {
		return nil, fmt.Errorf("legacy storage keys are %s, not a list", describeRaw(keyList))
	}
	for _, k := range *keys {
		key := asText(k)
		root, ok := d.roots[key]
		if !ok {
			return nil, fmt.Errorf("legacy file stores storage %q that nothing refers to", key)
		}
		if root.data != nil {
			return nil, fmt.Errorf("legacy file stores storage %q twice", key)
		}
		if len(d.data)-pos < 8 {
			return nil, fmt.Errorf("legacy file truncated at storage %q", key)
		}
		count := int64(binary.LittleEndian.Uint64(d.data[pos:]))
		pos += 8
		nbytes, ok := mulInt64(count, int64(root.elemSize))
		if !ok || nbytes != root.nbytes {
			return nil, fmt.Errorf("legacy storage %q has %d elements, the pickle declared %d", key, count, root.nbytes/int64(root.elemSize))
		}
		if int64(len(d.data)-pos) < nbytes {
			return nil, fmt.Errorf("legacy file truncated in storage %q", key)
		}
		root.data = d.data[pos : int64(pos)+nbytes : int64(pos)+nbytes]
		pos += int(nbytes)
	}
	return value, nil
}

// legacyPersistentLoad resolves ("storage", storage_type, root_key,
// location, numel, view_metadata), where view_metadata is None or
// (view_key, offset, size) of a storage view in elements.
func (d *decoder) legacyPersistentLoad(pid any) (any, error) {
	t, root, dtype, err := d.storageFromID(pid, 6)
	if err != nil {
		return nil, err
	}
	ref := &storageRef{root: root, dtype: dtype, nbytes: root.nbytes}
	if view := t.Get(5); view != nil {
		vt, ok := view.(*types.Tuple)
		if !ok || vt.Len() != 3 {
			return nil, fmt.Errorf("storage view metadata is %s, not a (key, offset, size) tuple", describeRaw(view))
		}
		offset, ok1 := rawInt(vt.Get(1))
		size, ok2 := rawInt(vt.Get(2))
		es := int64(dtype.ElemSize())
		off, ok3 := mulInt64(offset, es)
		n, ok4 := mulInt64(size, es)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, fmt.Errorf("storage view of %q has invalid offset or size", root.key)
		}
		if end, ok := addInt64(off, n); !ok || end > root.nbytes {
			return nil, fmt.Errorf("storage view [%d, %d) reaches past storage %q of %d bytes", off, off+n, root.key, root.nbytes)
		}
		ref.byteOffset, ref.nbytes = off, n
	}
	return ref, nil
}

// decodeZip reads a zip torch.save archive: <top>/data.pkl and a record
// <top>/data/<key> per storage, with <top> named by whoever wrote it.
func (d *decoder) decodeZip() (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(d.data), int64(len(d.data)))
	if err != nil {
		return nil, fmt.Errorf("zip archive: %w", err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	var top string
	for _, f := range zr.File {
		records[f.Name] = f
		dir, base, ok := strings.Cut(f.Name, "/")
		if ok && base == "data.pkl" {
			if top != "" {
				return nil, errors.New("zip archive holds more than one data.pkl")
			}
			top = dir + "/"
		}
	}
	if top == "" {
		return nil, errors.New("zip archive has no <folder>/data.pkl record: not a torch.save file")
	}
	swap := false
	if f, ok := records[top+"byteorder"]; ok {
		order, err := d.readRecord(f, -1, 16)
		if err != nil {
			return nil, err
		}
		switch string(order) {
		case "little":
		case "big":
			swap = true
		default:
			return nil, fmt.Errorf("zip archive has unknown byte order %q", order)
		}
	}
	for _, name := range []string{top + "version", top + ".data/version"} {
		if f, ok := records[name]; ok {
			v, err := d.readRecord(f, -1, 32)
			if err != nil {
				return nil, err
			}
			if _, err := strconv.ParseUint(strings.TrimSpace(string(v)), 10, 64); err != nil {
				return nil, fmt.Errorf("zip archive has invalid format version %q", v)
			}
		}
	}
	pkl, err := d.readRecord(records[top+"data.pkl"], -1, -1)
	if err != nil {
		return nil, err
	}
	n, err := scanPickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	persistentLoad := func(pid any) (any, error) {
		_, root, dtype, err := d.storageFromID(pid, 5)
		if err != nil {
			return nil, err
		}
		if root.data == nil && root.load == nil {
			name := top + "data/" + root.key
			nbytes, es := root.nbytes, root.elemSize
			root.load = func() ([]byte, error) {
				f, ok := records[name]
				if !ok {
					return nil, fmt.Errorf("zip archive lacks storage record %s", name)
				}
				data, err := d.readRecord(f, nbytes, -1)
				if err == nil && swap {
					byteswap(data, es)
				}
				return data, err
			}
		}
		return &storageRef{root: root, dtype: dtype, nbytes: root.nbytes}, nil
	}
	v, err := d.unpickle(pkl[:n], persistentLoad)
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	return v, nil
}

// readRecord reads a zip record whole, checking its CRC. want is the exact
// size expected (or -1), limit the largest size accepted (or -1).
func (d *decoder) readRecord(f *zip.File, want, limit int64) ([]byte, error) {
	size := f.UncompressedSize64
	switch {
	case want >= 0 && size != uint64(want):
		return nil, fmt.Errorf("zip record %s holds %d bytes, expected %d", f.Name, size, want)
	case limit >= 0 && size > uint64(limit):
		return nil, fmt.Errorf("zip record %s is too large (%d bytes)", f.Name, size)
	case f.Method == zip.Store && size != f.CompressedSize64:
		return nil, fmt.Errorf("zip record %s is stored with %d bytes but claims %d", f.Name, f.CompressedSize64, size)
	case size > uint64(maxInt64):
		return nil, fmt.Errorf("zip record %s is too large", f.Name)
	}
	if err := d.budget.take(int64(size), "zip record "+f.Name); err != nil {
		return nil, err
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("zip record %s: %w", f.Name, err)
	}
	defer rc.Close()
	data := make([]byte, size)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("zip record %s: %w", f.Name, err)
	}
	// Reading on to the end makes archive/zip verify the checksum.
	var one [1]byte
	if n, err := rc.Read(one[:]); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = errors.New("more data than its size")
		}
		return nil, fmt.Errorf("zip record %s: %w", f.Name, err)
	}
	return data, nil
}
