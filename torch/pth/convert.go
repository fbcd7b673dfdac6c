package pth

import (
	"fmt"
	"math/big"
	"sort"

	"github.com/nlpodyssey/gopickle/types"
)

// maxNesting bounds how deeply values nest, which keeps conversion's
// recursion shallow whatever the pickle says.
const maxNesting = 1000

// converter turns gopickle's values into this package's, materializing
// tensors. Objects the pickle shares (memoized) convert once and stay
// shared; a container that contains itself is an error.
type converter struct {
	budget *budget
	done   map[any]any
	active map[any]bool
}

func (c *converter) convert(v any, depth int) (any, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("value nests deeper than %d levels", maxNesting)
	}
	switch v := v.(type) {
	case nil, bool, string, float64, int64: // int64: numpy scalars
		return v, nil
	case int:
		return int64(v), nil
	case *big.Int:
		if !v.IsInt64() {
			return nil, fmt.Errorf("integer %s does not fit an int64", v)
		}
		return v.Int64(), nil
	case []byte:
		return v, nil
	case *types.ByteArray:
		return []byte(*v), nil
	case Device:
		return v, nil
	case *types.List, *types.Tuple, *types.Dict, *types.OrderedDict, *tensorRef:
		if out, ok := c.done[v]; ok {
			return out, nil
		}
		if c.active[v] {
			return nil, fmt.Errorf("%s contains itself", describeRaw(v))
		}
		c.active[v] = true
		out, err := c.convertShared(v, depth)
		delete(c.active, v)
		if err != nil {
			return nil, err
		}
		c.done[v] = out
		return out, nil
	}
	return nil, fmt.Errorf("file holds %s, which is not a supported value", describeRaw(v))
}

func (c *converter) convertShared(v any, depth int) (any, error) {
	switch v := v.(type) {
	case *types.List:
		return c.convertItems(*v, depth)
	case *types.Tuple:
		items, err := c.convertItems(*v, depth)
		return Tuple(items), err
	case *types.Dict:
		d := NewDict()
		for _, e := range *v {
			if err := c.setItem(d, e.Key, e.Value, depth); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *types.OrderedDict:
		d := NewOrderedDict()
		for e := v.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			if err := c.setItem(d, entry.Key, entry.Value, depth); err != nil {
				return nil, err
			}
		}
		if len(v.PyDict) > 0 {
			names := make([]string, 0, len(v.PyDict))
			for name := range v.PyDict {
				names = append(names, name)
			}
			sort.Strings(names)
			d.Attrs = NewDict()
			for _, name := range names {
				if err := c.setItem(d.Attrs, name, v.PyDict[name], depth); err != nil {
					return nil, err
				}
			}
		}
		return d, nil
	case *tensorRef:
		return v.materialize(c.budget)
	}
	panic("unreachable")
}

func (c *converter) convertItems(items []any, depth int) ([]any, error) {
	out := make([]any, len(items))
	for i, it := range items {
		var err error
		if out[i], err = c.convert(it, depth+1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *converter) setItem(d *Dict, key, value any, depth int) error {
	k, err := c.convert(key, depth+1)
	if err != nil {
		return err
	}
	if k, err = dictKey(k); err != nil {
		return err
	}
	val, err := c.convert(value, depth+1)
	if err != nil {
		return err
	}
	d.Set(k, val)
	return nil
}
