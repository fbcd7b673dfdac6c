package pth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// unpickle runs gopickle on one pickle that scanPickle has checked, with
// the allowlist below as its only source of globals. gopickle panics on
// some malformed input; those panics come back as errors.
func (d *decoder) unpickle(data []byte, persistentLoad func(any) (any, error)) (value any, err error) {
	defer func() {
		if r := recover(); r != nil {
			value, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = d.findClass
	u.PersistentLoad = persistentLoad
	return u.Load()
}

// findClass resolves the globals a pickle names. Only the types and rebuild
// functions of PyTorch checkpoints are allowed; they are Go values that
// build data and run nothing else. Everything else is refused by name.
//
// gopickle resolves collections.OrderedDict, builtins.list/dict,
// __builtin__.object, copy_reg._reconstructor and array._array_reconstructor
// itself, to inert data types; any object they could build other than
// dicts and lists is rejected when the value is converted.
func (d *decoder) findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor":
		return rebuildTensor{version: 1}, nil
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{version: 2}, nil
	case "torch._utils._rebuild_tensor_v3":
		return rebuildTensor{version: 3}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{withState: false}, nil
	case "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{withState: true}, nil
	case "torch._tensor._rebuild_from_type_v2":
		return rebuildFromType{}, nil
	case "torch.Tensor", "torch._tensor.Tensor", "torch.nn.parameter.Parameter":
		return tensorClass(module + "." + name), nil
	case "torch.Size":
		return sizeClass{}, nil
	case "torch.device":
		return deviceClass{}, nil
	case "torch.UntypedStorage", "torch.storage.UntypedStorage":
		return storageClass{dtype: Uint8, untyped: true}, nil
	case "torch.storage._load_from_bytes":
		return loadFromBytes{d}, nil
	case "_codecs.encode":
		return codecsEncode{}, nil
	case "builtins.bytes", "__builtin__.bytes":
		return bytesClass{}, nil
	case "numpy.dtype":
		return numpyDTypeClass{}, nil
	case "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar":
		return numpyScalar{}, nil
	}
	if module == "torch" {
		if dt, ok := dtypeByStorage[name]; ok {
			return storageClass{dtype: dt}, nil
		}
		if dt, ok := dtypeByTorchName[name]; ok {
			return dtypeValue(dt), nil
		}
	}
	return nil, fmt.Errorf("refusing global %s.%s: not one of the PyTorch checkpoint types this reader allows", module, name)
}

// storageClass is a torch.*Storage class named in a persistent id.
type storageClass struct {
	dtype   DType
	untyped bool
}

// dtypeValue is a torch dtype such as torch.float32.
type dtypeValue DType

// tensorClass is torch.Tensor or torch.nn.Parameter, as the type argument
// of _rebuild_from_type_v2.
type tensorClass string

// rebuildTensor is torch._utils._rebuild_tensor, _v2 or _v3:
//
//	_rebuild_tensor(storage, storage_offset, size, stride)
//	_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
//	_rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
type rebuildTensor struct{ version int }

func (r rebuildTensor) Call(args ...any) (any, error) {
	name := [...]string{1: "_rebuild_tensor", 2: "_rebuild_tensor_v2", 3: "_rebuild_tensor_v3"}[r.version]
	minArgs := [...]int{1: 4, 2: 6, 3: 7}[r.version]
	maxArgs := [...]int{1: 4, 2: 7, 3: 8}[r.version]
	if len(args) < minArgs || len(args) > maxArgs {
		return nil, fmt.Errorf("%s called with %d arguments", name, len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("%s expects a storage, got %s", name, describeRaw(args[0]))
	}
	offset, ok := rawInt(args[1])
	if !ok {
		return nil, fmt.Errorf("%s expects an integer storage offset, got %s", name, describeRaw(args[1]))
	}
	size, err := rawInts(args[2])
	if err != nil {
		return nil, fmt.Errorf("%s size: %w", name, err)
	}
	stride, err := rawInts(args[3])
	if err != nil {
		return nil, fmt.Errorf("%s stride: %w", name, err)
	}
	dtype := st.dtype
	if r.version == 3 {
		dt, ok := args[6].(dtypeValue)
		if !ok {
			return nil, fmt.Errorf("%s expects a torch dtype, got %s", name, describeRaw(args[6]))
		}
		dtype = DType(dt)
	}
	return &tensorRef{storage: st, dtype: dtype, offset: offset, size: size, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks) and _rebuild_parameter_with_state(..., state). A
// parameter loads as its tensor.
type rebuildParameter struct{ withState bool }

func (r rebuildParameter) Call(args ...any) (any, error) {
	want := 3
	if r.withState {
		want = 4
	}
	if len(args) != want {
		return nil, fmt.Errorf("_rebuild_parameter called with %d arguments", len(args))
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter expects a tensor, got %s", describeRaw(args[0]))
	}
	return t, nil
}

// rebuildFromType is torch._tensor._rebuild_from_type_v2(func, new_type,
// args, state), which PyTorch 2 uses for tensors carrying Python
// attributes. The attributes (state) are dropped.
type rebuildFromType struct{}

func (rebuildFromType) Call(args ...any) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("_rebuild_from_type_v2 called with %d arguments", len(args))
	}
	if _, ok := args[1].(tensorClass); !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2 of %s: only torch.Tensor and torch.nn.Parameter are allowed", describeRaw(args[1]))
	}
	fargs, ok := args[2].(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2 expects an argument tuple, got %s", describeRaw(args[2]))
	}
	switch f := args[0].(type) {
	case rebuildTensor:
		return f.Call(*fargs...)
	case rebuildParameter:
		return f.Call(*fargs...)
	}
	return nil, fmt.Errorf("_rebuild_from_type_v2 of %s: only tensor rebuild functions are allowed", describeRaw(args[0]))
}

// sizeClass is torch.Size, a tuple of ints.
type sizeClass struct{}

func (sizeClass) Call(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("torch.Size called with %d arguments", len(args))
	}
	dims, err := rawInts(args[0])
	if err != nil {
		return nil, fmt.Errorf("torch.Size: %w", err)
	}
	t := make(types.Tuple, len(dims))
	for i, d := range dims {
		t[i] = d
	}
	return &t, nil
}

// deviceClass is torch.device("cuda", 0) or torch.device("cpu").
type deviceClass struct{}

func (deviceClass) Call(args ...any) (any, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, fmt.Errorf("torch.device called with %d arguments", len(args))
	}
	kind, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("torch.device expects a string, got %s", describeRaw(args[0]))
	}
	if len(args) == 2 && args[1] != nil {
		index, ok := rawInt(args[1])
		if !ok {
			return nil, fmt.Errorf("torch.device expects an integer index, got %s", describeRaw(args[1]))
		}
		return Device(fmt.Sprintf("%s:%d", kind, index)), nil
	}
	return Device(kind), nil
}

// codecsEncode is _codecs.encode(str, "latin1"), which protocol 2 pickles
// written by Python 3 use for bytes objects.
type codecsEncode struct{}

func (codecsEncode) Call(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("_codecs.encode called with %d arguments", len(args))
	}
	s, ok1 := args[0].(string)
	enc, ok2 := args[1].(string)
	if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
		return nil, fmt.Errorf("_codecs.encode is only allowed to turn a latin1 string into bytes")
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("_codecs.encode: character %U is not latin1", r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// bytesClass is bytes(), which protocol 2 pickles use for empty bytes.
type bytesClass struct{}

func (bytesClass) Call(args ...any) (any, error) {
	if len(args) != 0 {
		return nil, fmt.Errorf("bytes() is only allowed without arguments")
	}
	return []byte{}, nil
}

// numpyDType is a numpy.dtype such as dtype('float64'), as pickled with
// numpy scalars: numpy.dtype('f8', False, True) then BUILD with a state
// tuple whose second item is the byte order.
type numpyDType struct {
	code  string
	order string
}

type numpyDTypeClass struct{}

func (numpyDTypeClass) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("numpy.dtype called without arguments")
	}
	code, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("numpy.dtype expects a type code, got %s", describeRaw(args[0]))
	}
	return &numpyDType{code: code, order: "|"}, nil
}

func (n *numpyDType) PySetState(state any) error {
	t, ok := state.(*types.Tuple)
	if !ok || t.Len() < 2 {
		return fmt.Errorf("numpy.dtype state is %s, not a tuple", describeRaw(state))
	}
	order, ok := t.Get(1).(string)
	if !ok {
		return fmt.Errorf("numpy.dtype byte order is %s", describeRaw(t.Get(1)))
	}
	n.order = order
	return nil
}

// numpyScalar is numpy.core.multiarray.scalar(dtype, raw bytes), how a
// numpy number pickles (a metric computed with numpy, say). Numbers
// become float64, int64 or bool.
type numpyScalar struct{}

func (numpyScalar) Call(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("numpy scalar called with %d arguments", len(args))
	}
	dt, ok := args[0].(*numpyDType)
	if !ok {
		return nil, fmt.Errorf("numpy scalar expects a dtype, got %s", describeRaw(args[0]))
	}
	var raw []byte
	switch b := args[1].(type) {
	case []byte:
		raw = append([]byte(nil), b...)
	case string: // Python 2 pickles
		raw = []byte(b)
	default:
		return nil, fmt.Errorf("numpy scalar expects bytes, got %s", describeRaw(args[1]))
	}
	sizes := map[string]int{"f8": 8, "f4": 4, "f2": 2, "i8": 8, "i4": 4, "i2": 2, "i1": 1, "u8": 8, "u4": 4, "u2": 2, "u1": 1, "b1": 1}
	size, ok := sizes[dt.code]
	if !ok {
		return nil, fmt.Errorf("numpy scalar of dtype %q is not supported", dt.code)
	}
	if len(raw) != size {
		return nil, fmt.Errorf("numpy scalar of dtype %q has %d bytes", dt.code, len(raw))
	}
	if dt.order == ">" {
		byteswap(raw, size)
	}
	le := binary.LittleEndian
	switch dt.code {
	case "f8":
		return math.Float64frombits(le.Uint64(raw)), nil
	case "f4":
		return float64(math.Float32frombits(le.Uint32(raw))), nil
	case "f2":
		return float16ToFloat64(le.Uint16(raw)), nil
	case "i8":
		return int64(le.Uint64(raw)), nil
	case "i4":
		return int64(int32(le.Uint32(raw))), nil
	case "i2":
		return int64(int16(le.Uint16(raw))), nil
	case "i1":
		return int64(int8(raw[0])), nil
	case "u8":
		if v := le.Uint64(raw); v <= math.MaxInt64 {
			return int64(v), nil
		}
		return nil, fmt.Errorf("numpy uint64 scalar does not fit an int64")
	case "u4":
		return int64(le.Uint32(raw)), nil
	case "u2":
		return int64(le.Uint16(raw)), nil
	case "u1":
		return int64(raw[0]), nil
	}
	return raw[0] != 0, nil // b1
}

// loadFromBytes is torch.storage._load_from_bytes(b): a storage pickled by
// plain pickle rather than torch.save carries a whole torch.save file of
// itself. Such files nest one level, no deeper.
type loadFromBytes struct{ d *decoder }

func (l loadFromBytes) Call(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("_load_from_bytes called with %d arguments", len(args))
	}
	b, ok := args[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("_load_from_bytes expects bytes, got %s", describeRaw(args[0]))
	}
	if l.d.nested {
		return nil, fmt.Errorf("_load_from_bytes nested inside _load_from_bytes")
	}
	inner := &decoder{data: b, budget: l.d.budget, nested: true}
	raw, _, err := inner.decodeRaw()
	if err != nil {
		return nil, fmt.Errorf("_load_from_bytes: %w", err)
	}
	st, ok := raw.(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_load_from_bytes holds %s, not a storage", describeRaw(raw))
	}
	return st, nil
}

// rawInt returns an unpickled integer as int64.
func rawInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int:
		return int64(v), true
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), true
		}
	case bool: // Python bools are ints
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// rawInts returns an unpickled tuple or list of integers.
func rawInts(v any) ([]int64, error) {
	var items []any
	switch v := v.(type) {
	case *types.Tuple:
		items = *v
	case *types.List:
		items = *v
	default:
		return nil, fmt.Errorf("expected a tuple of integers, got %s", describeRaw(v))
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, ok := rawInt(it)
		if !ok {
			return nil, fmt.Errorf("expected a tuple of integers, got %s in it", describeRaw(it))
		}
		out[i] = n
	}
	return out, nil
}

// describeRaw names the Python type of an unpickled value for errors.
func describeRaw(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a str"
	case []byte:
		return "bytes"
	case *types.List:
		return "a list"
	case *types.Tuple:
		return "a tuple"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *tensorRef:
		return "a tensor"
	case *storageRef:
		return "a storage"
	case storageClass:
		return "a storage class"
	case dtypeValue:
		return "torch." + DType(v).String()
	case tensorClass:
		return string(v)
	case rebuildTensor, rebuildParameter, rebuildFromType, sizeClass, deviceClass, codecsEncode, bytesClass, numpyDTypeClass, numpyScalar, loadFromBytes:
		return "a function"
	case *types.GenericObject:
		return fmt.Sprintf("a %s.%s object", v.Class.Module, v.Class.Name)
	}
	return fmt.Sprintf("a %T", v)
}
