package optim

import (
	"fmt"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/pth"
)

// Dict is a Python dict: keys are strings or int64 and keep their insertion
// order, as Python's do and as the pickles of torch.save record them. It is
// package pth's dict, so that a state dict goes into a checkpoint as it is
// once its tensors are copied to the host (nn.OptimizerStateToHost).
type Dict = pth.Dict

// Tuple is a Python tuple.
type Tuple = pth.Tuple

// NewDict returns an empty dict.
func NewDict() *Dict { return pth.NewDict() }

// The readers below take a value of a loaded state dict and say, when it is
// not what the entry needs, what they found instead.

// describe names a value's Python type for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case Tuple:
		return "tuple"
	case *Dict:
		return "dict"
	case *torch.Tensor:
		if v.IsFreed() {
			return "freed tensor"
		}
		return fmt.Sprintf("tensor of shape %v", v.Shape())
	}
	return fmt.Sprintf("Go value of type %T", v)
}

// asFloat reads a Python number. One-element tensors count too: PyTorch 2
// accepts tensor learning rates and betas.
func asFloat(v any) (float64, error) {
	switch v := v.(type) {
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case int:
		return float64(v), nil
	case *torch.Tensor:
		if !v.IsFreed() && v.Numel() == 1 {
			return v.Item(), nil
		}
	}
	return 0, fmt.Errorf("want a number, got %s", describe(v))
}

func asBool(v any) (bool, error) {
	if b, ok := v.(bool); ok {
		return b, nil
	}
	return false, fmt.Errorf("want a bool, got %s", describe(v))
}

func asInt(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	}
	return 0, fmt.Errorf("want an int, got %s", describe(v))
}

// asSequence reads a list or a tuple.
func asSequence(v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		return v, nil
	case Tuple:
		return v, nil
	}
	return nil, fmt.Errorf("want a list or tuple, got %s", describe(v))
}

func asDict(v any) (*Dict, error) {
	if d, ok := v.(*Dict); ok && d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("want a dict, got %s", describe(v))
}
