package pth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// pickleWriter encodes values as a protocol 2 pickle the way torch.save
// does, restricted to what PyTorch's weights_only unpickler accepts: the
// opcodes PROTO, GLOBAL, BINPUT/BINGET (only for globals), EMPTY_DICT,
// EMPTY_LIST, EMPTY_TUPLE, MARK, SETITEMS, APPEND(S), TUPLE(1-3), BININT,
// BININT1/2, LONG1, BINUNICODE, NEWTRUE/NEWFALSE, NONE, REDUCE, BUILD
// (only of an OrderedDict), BINPERSID and STOP; BINFLOAT for Python floats,
// which PyTorch 2 accepts and 1.13's weights_only unpickler cannot read
// whoever wrote the file; and the globals collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 and torch.*Storage.
type pickleWriter struct {
	buf bytes.Buffer
	// legacy selects the persistent ids of the legacy format, which carry
	// a sixth field for storage views.
	legacy   bool
	memo     map[string]int
	storages storageTable
}

// storageTable gives each distinct tensor a storage key, in order.
type storageTable struct {
	keys    []string
	tensors []*Tensor
	byPtr   map[*Tensor]string
}

func (s *storageTable) key(t *Tensor) string {
	if k, ok := s.byPtr[t]; ok {
		return k
	}
	if s.byPtr == nil {
		s.byPtr = make(map[*Tensor]string)
	}
	k := strconv.Itoa(len(s.keys))
	s.byPtr[t] = k
	s.keys = append(s.keys, k)
	s.tensors = append(s.tensors, t)
	return k
}

// sorted returns the indices of the storages in the order torch.save
// writes them: keys sorted as strings ("10" before "2").
func (s *storageTable) sorted() []int {
	idx := make([]int, len(s.keys))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return s.keys[idx[a]] < s.keys[idx[b]] })
	return idx
}

// encodePickle returns the pickle of v.
func (p *pickleWriter) encodePickle(v any) ([]byte, error) {
	p.buf.Reset()
	p.buf.Write([]byte{0x80, 2}) // PROTO 2
	if err := p.value(v, 0); err != nil {
		return nil, err
	}
	p.buf.WriteByte('.') // STOP
	return p.buf.Bytes(), nil
}

func (p *pickleWriter) op(b ...byte) { p.buf.Write(b) }

func (p *pickleWriter) global(module, name string) {
	key := module + "\n" + name + "\n"
	if i, ok := p.memo[key]; ok {
		if i < 256 {
			p.op('h', byte(i)) // BINGET
		} else {
			p.op('j') // LONG_BINGET
			p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(i)))
		}
		return
	}
	if p.memo == nil {
		p.memo = make(map[string]int)
	}
	i := len(p.memo)
	p.memo[key] = i
	p.op('c') // GLOBAL
	p.buf.WriteString(key)
	if i < 256 {
		p.op('q', byte(i)) // BINPUT
	} else {
		p.op('r') // LONG_BINPUT
		p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(i)))
	}
}

func (p *pickleWriter) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.op('K', byte(v)) // BININT1
	case v >= 0 && v < 1<<16:
		p.op('M', byte(v), byte(v>>8)) // BININT2
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.op('J') // BININT
		p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(v))))
	default:
		// LONG1: the shortest little-endian two's complement.
		b := binary.LittleEndian.AppendUint64(nil, uint64(v))
		for len(b) > 1 {
			last, prev := b[len(b)-1], b[len(b)-2]
			if (last == 0 && prev&0x80 == 0) || (last == 0xff && prev&0x80 != 0) {
				b = b[:len(b)-1]
				continue
			}
			break
		}
		p.op(0x8a, byte(len(b)))
		p.buf.Write(b)
	}
}

func (p *pickleWriter) string(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("string %q is not valid UTF-8", s)
	}
	if uint64(len(s)) > math.MaxUint32 {
		return fmt.Errorf("string of %d bytes is too long", len(s))
	}
	p.op('X') // BINUNICODE
	p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	p.buf.WriteString(s)
	return nil
}

func (p *pickleWriter) value(v any, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("value nests deeper than %d levels (does it contain itself?)", maxNesting)
	}
	switch v := v.(type) {
	case nil:
		p.op('N')
	case bool:
		if v {
			p.op(0x88)
		} else {
			p.op(0x89)
		}
	case int:
		p.int(int64(v))
	case int32:
		p.int(int64(v))
	case int64:
		p.int(v)
	case float32:
		return p.value(float64(v), depth)
	case float64:
		p.op('G') // BINFLOAT
		p.buf.Write(binary.BigEndian.AppendUint64(nil, math.Float64bits(v)))
	case string:
		return p.string(v)
	case []any:
		p.op(']') // EMPTY_LIST
		return p.appends(v, depth)
	case Tuple:
		return p.tuple(v, depth)
	case *Dict:
		return p.dict(v, depth)
	case *StateDict:
		return p.stateDict(v, depth)
	case *Tensor:
		return p.tensor(v)
	case []byte:
		return fmt.Errorf("bytes values cannot be written: PyTorch's weights_only loader does not accept them")
	case Device:
		return fmt.Errorf("torch.device values cannot be written: PyTorch's weights_only loader does not accept them")
	default:
		return fmt.Errorf("cannot write a value of Go type %T", v)
	}
	return nil
}

// appends adds items to the list on the stack in batches of 1000, as
// Python's pickler does.
func (p *pickleWriter) appends(items []any, depth int) error {
	for len(items) > 0 {
		batch := items[:min(len(items), 1000)]
		items = items[len(batch):]
		if len(batch) == 1 {
			if err := p.value(batch[0], depth+1); err != nil {
				return err
			}
			p.op('a') // APPEND
			continue
		}
		p.op('(')
		for _, it := range batch {
			if err := p.value(it, depth+1); err != nil {
				return err
			}
		}
		p.op('e') // APPENDS
	}
	return nil
}

func (p *pickleWriter) tuple(items Tuple, depth int) error {
	if len(items) == 0 {
		p.op(')') // EMPTY_TUPLE
		return nil
	}
	if len(items) > 3 {
		p.op('(')
	}
	for _, it := range items {
		if err := p.value(it, depth+1); err != nil {
			return err
		}
	}
	switch len(items) {
	case 1:
		p.op(0x85)
	case 2:
		p.op(0x86)
	case 3:
		p.op(0x87)
	default:
		p.op('t')
	}
	return nil
}

// setitems adds key/value pairs to the dict on the stack in batches of
// 1000, as Python's pickler does.
func (p *pickleWriter) setitems(keys []any, get func(any) any, depth int) error {
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		p.op('(')
		for _, k := range batch {
			if err := p.value(k, depth+1); err != nil {
				return err
			}
			if err := p.value(get(k), depth+1); err != nil {
				return err
			}
		}
		p.op('u') // SETITEMS
	}
	return nil
}

func (p *pickleWriter) dict(d *Dict, depth int) error {
	if d.Ordered {
		p.orderedDict()
	} else {
		p.op('}') // EMPTY_DICT
	}
	if err := p.setitems(d.keys, func(k any) any { return d.values[k] }, depth); err != nil {
		return err
	}
	if d.Attrs.Len() > 0 {
		if !d.Ordered {
			return fmt.Errorf("a plain dict cannot carry attributes")
		}
		if err := p.dict(&Dict{keys: d.Attrs.keys, values: d.Attrs.values}, depth+1); err != nil {
			return err
		}
		p.op('b') // BUILD: OrderedDict.__dict__.update(state)
	}
	return nil
}

// orderedDict pushes an empty collections.OrderedDict.
func (p *pickleWriter) orderedDict() {
	p.global("collections", "OrderedDict")
	p.op(')', 'R') // EMPTY_TUPLE, REDUCE
}

func (p *pickleWriter) stateDict(s *StateDict, depth int) error {
	p.orderedDict()
	keys := make([]any, len(s.keys))
	for i, k := range s.keys {
		keys[i] = k
	}
	if err := p.setitems(keys, func(k any) any { return s.tensors[k.(string)] }, depth); err != nil {
		return err
	}
	if s.Metadata != nil {
		attrs := NewDict()
		attrs.Set("_metadata", s.Metadata)
		if err := p.dict(attrs, depth+1); err != nil {
			return err
		}
		p.op('b') // BUILD
	}
	return nil
}

// tensor writes torch._utils._rebuild_tensor_v2(storage, 0, size, stride,
// False, OrderedDict()) over a storage of its own.
func (p *pickleWriter) tensor(t *Tensor) error {
	if err := t.Validate(); err != nil {
		return err
	}
	key := p.storages.key(t)
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(')
	// The persistent id: ("storage", torch.FloatStorage, key, "cpu", numel
	// [, view_metadata]).
	p.op('(')
	_ = p.string("storage")
	p.global("torch", dtypes[t.DType].storage)
	_ = p.string(key)
	_ = p.string("cpu")
	p.int(t.Numel())
	if p.legacy {
		p.op('N')
	}
	p.op('t', 'Q') // TUPLE, BINPERSID
	p.int(0)       // storage offset
	shape := make(Tuple, len(t.Shape))
	strides := make(Tuple, len(t.Shape))
	for i, s := range contiguousStrides(t.Shape) {
		shape[i], strides[i] = t.Shape[i], s
	}
	if err := p.tuple(shape, 0); err != nil {
		return err
	}
	if err := p.tuple(strides, 0); err != nil {
		return err
	}
	p.op(0x89) // requires_grad=False
	p.orderedDict()
	p.op('t', 'R')
	return nil
}
