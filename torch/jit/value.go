package jit

/*
#include <stdlib.h>
#include "edema_jit.h"
*/
import "C"

import (
	"fmt"
	"maps"
	"slices"
	"unsafe"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/internal/handle"
)

// Tuple is a TorchScript tuple: a method's arguments of type Tuple[...] and
// the results of methods that return several values.
type Tuple []any

// The kinds of et_ivalue_kind.
const (
	kindNone = iota
	kindTensor
	kindFloat
	kindInt
	kindBool
	kindString
	kindTuple
	kindList
	kindDict
	kindOther
)

// ivalues collects the shim values made for one call, to free them all
// after it.
type ivalues []C.et_ivalue

func (vs *ivalues) keep(v C.et_ivalue) C.et_ivalue {
	*vs = append(*vs, v)
	return v
}

func (vs *ivalues) free() {
	for _, v := range *vs {
		C.et_ivalue_free(v)
	}
	*vs = nil
}

// made keeps the value a shim constructor made, or returns its error.
func (vs *ivalues) made(e C.et_error, v C.et_ivalue) (C.et_ivalue, error) {
	if err := shimError(e); err != nil {
		return nil, err
	}
	return vs.keep(v), nil
}

// from makes the TorchScript value of a Go value (see Module.Run).
func (vs *ivalues) from(a any) (C.et_ivalue, error) {
	var v C.et_ivalue
	switch a := a.(type) {
	case nil:
		return vs.made(C.et_ivalue_none(&v), v)
	case *torch.Tensor:
		if a == nil {
			return nil, fmt.Errorf("a nil tensor")
		}
		var h C.et_tensor
		if err := torch.Try(func() { h = C.et_tensor(handle.Of("jit", a)) }); err != nil {
			return nil, err
		}
		return vs.made(C.et_ivalue_tensor(h, &v), v)
	case bool:
		return vs.made(C.et_ivalue_bool(flag(a), &v), v)
	case int:
		return vs.made(C.et_ivalue_int(C.int64_t(a), &v), v)
	case int32:
		return vs.made(C.et_ivalue_int(C.int64_t(a), &v), v)
	case int64:
		return vs.made(C.et_ivalue_int(C.int64_t(a), &v), v)
	case float32:
		return vs.made(C.et_ivalue_double(C.double(a), &v), v)
	case float64:
		return vs.made(C.et_ivalue_double(C.double(a), &v), v)
	case string:
		s := C.CString(a)
		defer C.free(unsafe.Pointer(s))
		return vs.made(C.et_ivalue_string(s, &v), v)
	case Tuple:
		items, err := allOf(vs, a)
		if err != nil {
			return nil, err
		}
		return vs.made(C.et_ivalue_tuple(first(items), C.int64_t(len(items)), &v), v)
	case []any:
		return listOf(vs, a)
	case []*torch.Tensor:
		return listOf(vs, a)
	case []int64:
		return listOf(vs, a)
	case []float64:
		return listOf(vs, a)
	case []bool:
		return listOf(vs, a)
	case []string:
		return listOf(vs, a)
	case map[string]any:
		return dictOf(vs, a)
	case map[string]*torch.Tensor:
		return dictOf(vs, a)
	}
	return nil, fmt.Errorf("a Go %T has no TorchScript value", a)
}

func listOf[T any](vs *ivalues, items []T) (C.et_ivalue, error) {
	values, err := allOf(vs, items)
	if err != nil {
		return nil, err
	}
	var v C.et_ivalue
	return vs.made(C.et_ivalue_list(first(values), C.int64_t(len(values)), &v), v)
}

// dictOf makes a dict of a Go map, its entries in the order of their keys,
// so that the same map always makes the same dict.
func dictOf[T any](vs *ivalues, m map[string]T) (C.et_ivalue, error) {
	keys := slices.Sorted(maps.Keys(m))
	values := make([]any, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	kv, err := allOf(vs, keys)
	if err != nil {
		return nil, err
	}
	vv, err := allOf(vs, values)
	if err != nil {
		return nil, err
	}
	var v C.et_ivalue
	return vs.made(C.et_ivalue_dict(first(kv), first(vv), C.int64_t(len(keys)), &v), v)
}

func allOf[T any](vs *ivalues, items []T) ([]C.et_ivalue, error) {
	out := make([]C.et_ivalue, len(items))
	for i, item := range items {
		v, err := vs.from(item)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func first(vs []C.et_ivalue) *C.et_ivalue {
	if len(vs) == 0 {
		return nil
	}
	return &vs[0]
}

// toGo returns the Go value of a TorchScript value (see Module.Run). v
// stays the caller's; the values read out of it are freed here.
func toGo(v C.et_ivalue) (any, error) {
	var kind C.int
	if err := shimError(C.et_ivalue_kind(v, &kind)); err != nil {
		return nil, err
	}
	switch kind {
	case kindNone:
		return nil, nil
	case kindTensor:
		var t C.et_tensor
		if err := shimError(C.et_ivalue_to_tensor(v, &t)); err != nil {
			return nil, err
		}
		return handle.Wrap(unsafe.Pointer(t)).(*torch.Tensor), nil
	case kindFloat:
		var f C.double
		err := shimError(C.et_ivalue_to_double(v, &f))
		return float64(f), err
	case kindInt:
		var i C.int64_t
		err := shimError(C.et_ivalue_to_int(v, &i))
		return int64(i), err
	case kindBool:
		var b C.int
		err := shimError(C.et_ivalue_to_bool(v, &b))
		return b != 0, err
	case kindString:
		var s *C.char
		if err := shimError(C.et_ivalue_to_string(v, &s)); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(s))
		return C.GoString(s), nil
	case kindTuple, kindList:
		items, err := items(v)
		if err != nil {
			return nil, err
		}
		if kind == kindTuple {
			return Tuple(items), nil
		}
		if typeName(v) == "List[Tensor]" {
			return typed[*torch.Tensor](items), nil
		}
		return items, nil
	case kindDict:
		return dictToGo(v)
	}
	return nil, fmt.Errorf("a TorchScript %s has no Go value", typeName(v))
}

// items returns the Go values of a tuple's or a list's items.
func items(v C.et_ivalue) ([]any, error) {
	var n C.int64_t
	if err := shimError(C.et_ivalue_len(v, &n)); err != nil {
		return nil, err
	}
	out := make([]any, n)
	for i := range out {
		var item C.et_ivalue
		if err := shimError(C.et_ivalue_item(v, C.int64_t(i), &item)); err != nil {
			return nil, err
		}
		x, err := toGo(item)
		C.et_ivalue_free(item)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = x
	}
	return out, nil
}

func dictToGo(v C.et_ivalue) (any, error) {
	var n C.int64_t
	if err := shimError(C.et_ivalue_len(v, &n)); err != nil {
		return nil, err
	}
	strs, ints := map[string]any{}, map[int64]any{}
	for i := range int64(n) {
		var key, value C.et_ivalue
		if err := shimError(C.et_ivalue_dict_entry(v, C.int64_t(i), &key, &value)); err != nil {
			return nil, err
		}
		k, err := toGo(key)
		C.et_ivalue_free(key)
		if err != nil {
			C.et_ivalue_free(value)
			return nil, err
		}
		x, err := toGo(value)
		C.et_ivalue_free(value)
		if err != nil {
			return nil, fmt.Errorf("entry %v: %w", k, err)
		}
		switch k := k.(type) {
		case string:
			strs[k] = x
		case int64:
			ints[k] = x
		default:
			return nil, fmt.Errorf("a %s: only str and int keys have Go maps", typeName(v))
		}
	}
	if len(ints) > 0 {
		return ints, nil
	}
	if typeName(v) == "Dict[str, Tensor]" {
		out := make(map[string]*torch.Tensor, len(strs))
		for k, x := range strs {
			out[k] = x.(*torch.Tensor)
		}
		return out, nil
	}
	return strs, nil
}

// typed returns items, all of type T, as a []T.
func typed[T any](items []any) []T {
	out := make([]T, len(items))
	for i, x := range items {
		out[i] = x.(T)
	}
	return out
}

// typeName is a value's TorchScript type, as annotations write it.
func typeName(v C.et_ivalue) string {
	var s *C.char
	if err := shimError(C.et_ivalue_type(v, &s)); err != nil {
		return "value of unknown type"
	}
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s)
}
