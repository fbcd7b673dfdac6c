package pth

import "fmt"

// The Python values a checkpoint file holds map to Go values as follows:
//
//	None                         nil
//	bool                         bool
//	int                          int64
//	float, numpy.float64/32      float64
//	str                          string
//	bytes, bytearray             []byte
//	list                         []any
//	tuple, torch.Size            Tuple
//	dict, collections.OrderedDict *Dict (Ordered tells them apart)
//	torch.Tensor, nn.Parameter   *Tensor
//	torch.device                 Device
//
// numpy integer and bool scalars become int64 and bool. Reading never
// produces a *StateDict; writing accepts one wherever a value goes and
// stores it as the OrderedDict PyTorch's state_dict() returns.

// Tuple is a Python tuple.
type Tuple []any

// Device is a torch.device such as "cpu" or "cuda:0".
type Device string

// Dict is a Python dict or collections.OrderedDict. Keys are strings or
// int64 and keep their insertion order, as in Python.
type Dict struct {
	// Ordered marks a collections.OrderedDict rather than a plain dict.
	Ordered bool
	// Attrs holds the instance attributes of an OrderedDict (its __dict__),
	// such as the "_metadata" of module versions that state_dict() attaches.
	// It is nil when there are none.
	Attrs *Dict

	keys   []any
	values map[any]any
}

// NewDict returns an empty plain dict.
func NewDict() *Dict { return &Dict{} }

// NewOrderedDict returns an empty collections.OrderedDict.
func NewOrderedDict() *Dict { return &Dict{Ordered: true} }

// dictKey normalizes a key to string or int64.
func dictKey(key any) (any, error) {
	switch k := key.(type) {
	case string, int64:
		return k, nil
	case int:
		return int64(k), nil
	}
	return nil, fmt.Errorf("dict key of type %T is not supported (only str and int keys are)", key)
}

// Set stores value under key, which must be a string or an integer; a new
// key goes last, an existing one keeps its place.
func (d *Dict) Set(key, value any) {
	k, err := dictKey(key)
	if err != nil {
		panic("pth: " + err.Error())
	}
	if d.values == nil {
		d.values = make(map[any]any)
	}
	if _, ok := d.values[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.values[k] = value
}

// Get returns the value under key.
func (d *Dict) Get(key any) (any, bool) {
	k, err := dictKey(key)
	if err != nil || d == nil {
		return nil, false
	}
	v, ok := d.values[k]
	return v, ok
}

// Delete removes key if present.
func (d *Dict) Delete(key any) {
	k, err := dictKey(key)
	if err != nil {
		return
	}
	if _, ok := d.values[k]; !ok {
		return
	}
	delete(d.values, k)
	for i, kk := range d.keys {
		if kk == k {
			d.keys = append(d.keys[:i:i], d.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the keys in order.
func (d *Dict) Keys() []any {
	if d == nil {
		return nil
	}
	return append([]any(nil), d.keys...)
}

// Len returns the number of entries.
func (d *Dict) Len() int {
	if d == nil {
		return 0
	}
	return len(d.keys)
}

// AsStateDict views v as a state dict: a *StateDict, or a *Dict whose keys
// are all strings and values all tensors (the "_metadata" attribute comes
// along). Tensors are shared, not copied.
func AsStateDict(v any) (*StateDict, bool) {
	switch v := v.(type) {
	case *StateDict:
		return v, true
	case *Dict:
		sd := NewStateDict()
		for _, k := range v.keys {
			key, ok := k.(string)
			if !ok {
				return nil, false
			}
			t, ok := v.values[k].(*Tensor)
			if !ok {
				return nil, false
			}
			sd.Set(key, t)
		}
		if meta, ok := v.Attrs.Get("_metadata"); ok {
			if md, ok := meta.(*Dict); ok {
				sd.Metadata = md
			}
		}
		return sd, true
	}
	return nil, false
}
