package nn

import (
	"fmt"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/pth"
)

// Between the store and the files: a network's tensors live in libtorch,
// a checkpoint's are bytes on the host (package torch/pth). The functions
// below are the one way across, beside the store as tch-rs's
// VarStore::save and load sit beside its store, so that every checkpoint
// copies tensors and maps dtypes the same way.

// hostDTypes maps each dtype of package torch to the file dtype of package
// torch/pth with the same name and element layout. The two enums are kept
// apart so that the file reader does not depend on libtorch.
var hostDTypes = map[torch.DType]pth.DType{
	torch.Float32:  pth.Float32,
	torch.Float64:  pth.Float64,
	torch.Float16:  pth.Float16,
	torch.BFloat16: pth.BFloat16,
	torch.Int64:    pth.Int64,
	torch.Int32:    pth.Int32,
	torch.Int16:    pth.Int16,
	torch.Int8:     pth.Int8,
	torch.Uint8:    pth.Uint8,
	torch.Bool:     pth.Bool,
}

// deviceDTypes is hostDTypes the other way round.
var deviceDTypes = func() map[pth.DType]torch.DType {
	m := make(map[pth.DType]torch.DType, len(hostDTypes))
	for d, h := range hostDTypes {
		m[h] = d
	}
	return m
}()

// HostStateDict copies a network's state dict (or any named tensors) to
// host memory as a checkpoint state dict, keeping keys and order.
func HostStateDict(named []Named) (sd *pth.StateDict, err error) {
	defer torch.Recover(&err)
	sd = pth.NewStateDict()
	for _, n := range named {
		t, err := tensorToHost(n.Tensor)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		sd.Set(n.Name, t)
	}
	return sd, nil
}

// NamedFromHost makes CPU tensors of a checkpoint state dict, keeping keys
// and order, ready for Store.LoadStateDict. The tensors belong to the
// caller (or to the caller's open torch.Scope); on error none are left.
func NamedFromHost(sd *pth.StateDict) (named []Named, err error) {
	defer torch.Recover(&err)
	for _, k := range sd.Keys() {
		t, _ := sd.Get(k)
		tt, err := tensorFromHost(t)
		if err != nil {
			for _, n := range named {
				n.Tensor.Free()
			}
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		named = append(named, Named{Name: k, Tensor: tt})
	}
	return named, nil
}

// OptimizerStateToHost converts an optimizer's state dict (see package
// torch/optim) into the values package torch/pth writes, copying its
// tensors to the host.
func OptimizerStateToHost(sd *pth.Dict) (v *pth.Dict, err error) {
	if sd == nil {
		return nil, fmt.Errorf("no optimizer state")
	}
	defer torch.Recover(&err)
	out, err := walk(sd, "optimizer", leafToHost)
	if err != nil {
		return nil, err
	}
	return out.(*pth.Dict), nil
}

// OptimizerStateFromHost converts the optimizer state a checkpoint holds
// (its "optimizer" entry) into a state dict for the optimizers'
// LoadStateDict. Its tensors are CPU tensors of the caller's (or of the
// caller's open torch.Scope).
func OptimizerStateFromHost(v any) (sd *pth.Dict, err error) {
	defer torch.Recover(&err)
	if _, ok := v.(*pth.Dict); !ok {
		return nil, fmt.Errorf("optimizer state is %T, not a dict", v)
	}
	out, err := walk(v, "optimizer", leafFromHost)
	if err != nil {
		return nil, err
	}
	return out.(*pth.Dict), nil
}

// walk returns a copy of the value tree v (lists, tuples and dicts of the
// Python values package torch/pth lists) with leaf applied to everything
// that is not a container. at names v in errors, and the items below it
// get Python's subscripts: optimizer[state][0][exp_avg].
func walk(v any, at string, leaf func(v any, at string) (any, error)) (any, error) {
	items := func(items []any) ([]any, error) {
		out := make([]any, len(items))
		for i, item := range items {
			x, err := walk(item, fmt.Sprintf("%s[%d]", at, i), leaf)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
	switch v := v.(type) {
	case []any:
		return items(v)
	case pth.Tuple:
		out, err := items(v)
		return pth.Tuple(out), err
	case *pth.Dict:
		d := pth.NewDict()
		d.Ordered = v.Ordered
		for _, k := range v.Keys() {
			item, _ := v.Get(k)
			x, err := walk(item, fmt.Sprintf("%s[%v]", at, k), leaf)
			if err != nil {
				return nil, err
			}
			d.Set(k, x)
		}
		return d, nil
	}
	return leaf(v, at)
}

// leafToHost is walk's leaf towards the files: Python scalars stay (a Go
// int becomes the int64 of a Python int), tensors are copied to the host.
func leafToHost(v any, at string) (any, error) {
	switch v := v.(type) {
	case nil, bool, int64, float64, string:
		return v, nil
	case int:
		return int64(v), nil
	case *torch.Tensor:
		t, err := tensorToHost(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%s: cannot save a value of Go type %T", at, v)
}

// leafFromHost is walk's leaf towards libtorch: Python scalars stay,
// tensors become CPU tensors.
func leafFromHost(v any, at string) (any, error) {
	switch v := v.(type) {
	case nil, bool, int64, float64, string:
		return v, nil
	case *pth.Tensor:
		t, err := tensorFromHost(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%s: unexpected %T in an optimizer state", at, v)
}

func tensorToHost(t *torch.Tensor) (*pth.Tensor, error) {
	if t == nil || t.IsFreed() {
		return nil, fmt.Errorf("no tensor (nil or freed)")
	}
	dtype, ok := hostDTypes[t.DType()]
	if !ok {
		return nil, fmt.Errorf("dtype %s cannot be saved: checkpoint files have no such dtype", t.DType())
	}
	// Bytes copies to the host in row-major order whatever the layout.
	return &pth.Tensor{DType: dtype, Shape: t.Shape(), Data: t.Bytes()}, nil
}

func tensorFromHost(t *pth.Tensor) (*torch.Tensor, error) {
	if t == nil {
		return nil, fmt.Errorf("no tensor")
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	dtype, ok := deviceDTypes[t.DType]
	if !ok {
		return nil, fmt.Errorf("unknown dtype %s", t.DType)
	}
	return torch.FromBytes(t.Data, dtype, t.Shape...), nil
}
