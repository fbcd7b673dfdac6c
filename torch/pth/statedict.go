package pth

import "strings"

// DataParallelPrefix is the key prefix of a state dict saved from a model
// wrapped in torch.nn.DataParallel, as the original training scripts did.
const DataParallelPrefix = "module."

// StateDict maps parameter and buffer names to tensors, in the order
// PyTorch's state_dict() lists them (the order of the file).
type StateDict struct {
	// Metadata is the "_metadata" attribute state_dict() attaches: module
	// path -> {"version": n}, which load_state_dict passes to each module.
	// It is nil when the file had none.
	Metadata *Dict

	keys    []string
	tensors map[string]*Tensor
}

// NewStateDict returns an empty state dict.
func NewStateDict() *StateDict {
	return &StateDict{tensors: make(map[string]*Tensor)}
}

// Set stores t under key; a new key goes last, an existing one keeps its
// place.
func (s *StateDict) Set(key string, t *Tensor) {
	if s.tensors == nil {
		s.tensors = make(map[string]*Tensor)
	}
	if _, ok := s.tensors[key]; !ok {
		s.keys = append(s.keys, key)
	}
	s.tensors[key] = t
}

// Get returns the tensor under key.
func (s *StateDict) Get(key string) (*Tensor, bool) {
	t, ok := s.tensors[key]
	return t, ok
}

// Delete removes key if present.
func (s *StateDict) Delete(key string) {
	if _, ok := s.tensors[key]; !ok {
		return
	}
	delete(s.tensors, key)
	for i, k := range s.keys {
		if k == key {
			s.keys = append(s.keys[:i:i], s.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the keys in order.
func (s *StateDict) Keys() []string { return append([]string(nil), s.keys...) }

// Len returns the number of tensors.
func (s *StateDict) Len() int { return len(s.keys) }

// NumElements returns the number of elements of all tensors together.
func (s *StateDict) NumElements() int64 {
	var n int64
	for _, t := range s.tensors {
		n += max(t.Numel(), 0)
	}
	return n
}

// HasPrefix reports whether the state dict is not empty and every key
// starts with prefix.
func (s *StateDict) HasPrefix(prefix string) bool {
	if len(s.keys) == 0 {
		return false
	}
	for _, k := range s.keys {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
	}
	return true
}

// WithPrefix returns a state dict whose keys are those of s with prefix in
// front, as wrapping the model in a module under that name would give (for
// DataParallelPrefix, the keys of an nn.DataParallel model). The tensors are
// shared with s.
func (s *StateDict) WithPrefix(prefix string) *StateDict {
	out := NewStateDict()
	for _, k := range s.keys {
		out.Set(prefix+k, s.tensors[k])
	}
	if s.Metadata != nil {
		module := strings.TrimSuffix(prefix, ".")
		md := NewOrderedDict()
		// The wrapper itself is a module too; nn.Module's version is 1.
		root := NewDict()
		root.Set("version", int64(1))
		md.Set("", root)
		for _, k := range s.Metadata.keys {
			path, ok := k.(string)
			if !ok {
				continue
			}
			if path == "" {
				path = module
			} else {
				path = module + "." + path
			}
			md.Set(path, s.Metadata.values[k])
		}
		out.Metadata = md
	}
	return out
}

// StripPrefix returns a state dict without prefix in front of the keys,
// and true, when every key has it (see HasPrefix); otherwise s and false.
// The tensors are shared with s.
func (s *StateDict) StripPrefix(prefix string) (*StateDict, bool) {
	if !s.HasPrefix(prefix) {
		return s, false
	}
	out := NewStateDict()
	for _, k := range s.keys {
		out.Set(strings.TrimPrefix(k, prefix), s.tensors[k])
	}
	if s.Metadata != nil {
		module := strings.TrimSuffix(prefix, ".")
		md := NewOrderedDict()
		for _, k := range s.Metadata.keys {
			path, ok := k.(string)
			switch {
			case !ok:
			case path == module:
				md.Set("", s.Metadata.values[k])
			case strings.HasPrefix(path, module+"."):
				md.Set(strings.TrimPrefix(path, module+"."), s.Metadata.values[k])
			}
		}
		out.Metadata = md
	}
	return out, true
}
