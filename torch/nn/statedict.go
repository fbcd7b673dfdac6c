package nn

import (
	"fmt"
	"slices"
	"strings"

	"github.com/edema/edema/torch"
)

// LoadError says everything that stopped a state dict from loading, like
// PyTorch's "Error(s) in loading state_dict".
type LoadError struct {
	Missing    []string // keys of the network that the state dict lacks (strict loads only)
	Unexpected []string // keys of the state dict that the network lacks (strict loads only)
	Mismatched []string // one line per entry whose shape or kind of dtype differs
	Duplicate  []string // keys that the state dict holds more than once
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("error(s) in loading state_dict:")
	quoted := func(keys []string) string {
		q := make([]string, len(keys))
		for i, k := range keys {
			q[i] = fmt.Sprintf("%q", k)
		}
		return strings.Join(q, ", ")
	}
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "\n\tmissing key(s) in state_dict: %s", quoted(e.Missing))
	}
	if len(e.Unexpected) > 0 {
		fmt.Fprintf(&b, "\n\tunexpected key(s) in state_dict: %s", quoted(e.Unexpected))
	}
	if len(e.Duplicate) > 0 {
		fmt.Fprintf(&b, "\n\tduplicate key(s) in state_dict: %s", quoted(e.Duplicate))
	}
	for _, m := range e.Mismatched {
		b.WriteString("\n\t" + m)
	}
	return b.String()
}

func (e *LoadError) empty() bool {
	return len(e.Missing)+len(e.Unexpected)+len(e.Mismatched)+len(e.Duplicate) == 0
}

// LoadStateDict copies the values of sd into the store's tensors, matching
// keys, as torch.nn.Module.load_state_dict does. Values are copied into the
// existing tensors, without autograd, so optimizers and layers holding them
// stay valid; floating-point values are converted to the network's dtype
// and device.
//
// Nothing is copied unless everything matches: the error is a *LoadError
// listing, at once, every entry whose shape differs or whose dtype is of
// another kind (floating point versus integer), and, when strict, every
// key missing from sd and every key the network does not have. A missing
// num_batches_tracked of batch normalisation is not an error: checkpoints
// written before PyTorch 0.4.1 do not have it, and, as PyTorch does, the
// load sets it to zero.
func (s *Store) LoadStateDict(sd []Named, strict bool) (err error) {
	defer torch.Recover(&err)
	if s.freed {
		return fmt.Errorf("nn: load into a freed store")
	}
	defer s.refreshFastPath()
	given := make(map[string]*torch.Tensor, len(sd))
	le := &LoadError{}
	for _, n := range sd {
		if _, dup := given[n.Name]; dup {
			if !slices.Contains(le.Duplicate, n.Name) {
				le.Duplicate = append(le.Duplicate, n.Name)
			}
			continue
		}
		given[n.Name] = n.Tensor
	}

	type copyJob struct{ dst, src *torch.Tensor }
	var jobs []copyJob
	var resets []*torch.Tensor
	known := map[string]bool{}
	for _, e := range s.entries(true, true) {
		known[e.Name] = true
		src, ok := given[e.Name]
		if !ok {
			if e.zeroIfMissing {
				resets = append(resets, e.Tensor)
			} else if strict {
				le.Missing = append(le.Missing, e.Name)
			}
			continue
		}
		if src == nil || src.IsFreed() {
			le.Mismatched = append(le.Mismatched, fmt.Sprintf("no tensor for %s: it is nil or freed", e.Name))
			continue
		}
		if m := mismatch(e.Name, src, e.Tensor); m != "" {
			le.Mismatched = append(le.Mismatched, m)
			continue
		}
		jobs = append(jobs, copyJob{dst: e.Tensor, src: src})
	}
	if strict {
		for _, n := range sd {
			if !known[n.Name] && !slices.Contains(le.Unexpected, n.Name) {
				le.Unexpected = append(le.Unexpected, n.Name)
			}
		}
	}
	if !le.empty() {
		return le
	}
	torch.NoGrad(func() {
		for _, j := range jobs {
			j.dst.CopyFrom(j.src)
		}
		for _, t := range resets {
			t.ZeroInPlace()
		}
	})
	return nil
}

// mismatch describes why src cannot load into dst, or returns "".
func mismatch(key string, src, dst *torch.Tensor) string {
	if got, want := src.Shape(), dst.Shape(); !slices.Equal(got, want) {
		return fmt.Sprintf("size mismatch for %s: copying a param with shape %v from checkpoint, the shape in current model is %v", key, got, want)
	}
	if got, want := src.DType(), dst.DType(); got.IsFloatingPoint() != want.IsFloatingPoint() {
		return fmt.Sprintf("dtype mismatch for %s: copying a param of dtype %s from checkpoint, the dtype in current model is %s", key, got, want)
	}
	return ""
}
