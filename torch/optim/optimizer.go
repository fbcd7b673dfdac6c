package optim

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/edema/edema/torch"
)

// Optimizer is what a training loop needs of an optimizer.
type Optimizer interface {
	// Step updates every parameter that has a gradient.
	Step() error
	// ZeroGrad drops the gradients of all parameters.
	ZeroGrad()
	// LR returns the learning rate of the first parameter group.
	LR() float64
	// LRs returns the learning rate of every parameter group.
	LRs() []float64
	// SetLR sets the learning rate of every parameter group.
	SetLR(lr float64) error
	// SetGroupLR sets the learning rate of one parameter group.
	SetGroupLR(group int, lr float64) error
	// StateDict exports the state as PyTorch's optimizer.state_dict(), in
	// the DefaultLayout.
	StateDict() (*Dict, error)
	// StateDictFor exports the state in the layout of a PyTorch release.
	StateDictFor(l Layout) (*Dict, error)
	// LoadStateDict imports a state that StateDict or PyTorch exported.
	LoadStateDict(sd *Dict) error
}

var (
	_ Optimizer = (*Adam)(nil)
	_ Optimizer = (*SGD)(nil)
)

// options is the constraint on an optimizer's hyperparameters: a struct
// whose pointer gives access to its learning rate and checks its values.
type options[O any] interface {
	*O
	lr() *float64
	validate() error
}

// groups holds what every optimizer shares: the parameters, group by group,
// each group's options, and the bookkeeping of PyTorch's state dicts.
type groups[O any, PO options[O]] struct {
	params [][]*torch.Tensor
	opts   []O
	// groupOf maps a parameter's flat index (its position counting through
	// all groups, the index state dicts use) to its group.
	groupOf []int
	flat    []*torch.Tensor
	// order lists the flat indices of the parameters that have state, in
	// the order they got it, which is the order of PyTorch's state dicts.
	order []int
	// extra holds the entries of loaded param groups that this package
	// does not interpret (an LR scheduler's initial_lr, for one), so that
	// exporting the state again keeps them, as PyTorch does.
	extra [][]entry
}

type entry struct {
	key   string
	value any
}

var errNoParams = errors.New("optim: optimizer got an empty parameter list")

func newGroups[O any, PO options[O]](params [][]*torch.Tensor, opts []O) (groups[O, PO], error) {
	var g groups[O, PO]
	if len(params) == 0 {
		return g, errNoParams
	}
	seen := make(map[*torch.Tensor]int)
	for i, ps := range params {
		if err := PO(&opts[i]).validate(); err != nil {
			return g, fmt.Errorf("optim: parameter group %d: %w", i, err)
		}
		for j, p := range ps {
			if p == nil || p.IsFreed() {
				return g, fmt.Errorf("optim: parameter group %d: parameter %d is nil or freed", i, j)
			}
			if k, dup := seen[p]; dup {
				return g, fmt.Errorf("optim: parameter group %d: parameter %d is also parameter %d of group %d", i, j, k, g.groupOf[k])
			}
			seen[p] = len(g.flat)
			g.flat = append(g.flat, p)
			g.groupOf = append(g.groupOf, i)
		}
		g.params = append(g.params, append([]*torch.Tensor(nil), ps...))
	}
	if len(g.flat) == 0 {
		return g, errNoParams
	}
	g.opts = append([]O(nil), opts...)
	g.extra = make([][]entry, len(params))
	return g, nil
}

// ZeroGrad drops the gradients of all parameters, like PyTorch's
// zero_grad(set_to_none=True): the next backward pass writes them afresh
// and Step skips parameters that it left without one.
func (g *groups[O, PO]) ZeroGrad() {
	for _, p := range g.flat {
		p.ZeroGrad()
	}
}

// LR returns the learning rate of the first parameter group.
func (g *groups[O, PO]) LR() float64 { return *PO(&g.opts[0]).lr() }

// LRs returns the learning rate of every parameter group.
func (g *groups[O, PO]) LRs() []float64 {
	lrs := make([]float64, len(g.opts))
	for i := range g.opts {
		lrs[i] = *PO(&g.opts[i]).lr()
	}
	return lrs
}

func checkLR(lr float64) error {
	if !(lr >= 0) || math.IsInf(lr, 1) {
		return fmt.Errorf("invalid learning rate %v (want a finite number >= 0)", lr)
	}
	return nil
}

// SetLR sets the learning rate of every parameter group; it takes effect
// at the next Step.
func (g *groups[O, PO]) SetLR(lr float64) error {
	if err := checkLR(lr); err != nil {
		return fmt.Errorf("optim: %w", err)
	}
	for i := range g.opts {
		*PO(&g.opts[i]).lr() = lr
	}
	return nil
}

// SetGroupLR sets the learning rate of one parameter group.
func (g *groups[O, PO]) SetGroupLR(group int, lr float64) error {
	if group < 0 || group >= len(g.opts) {
		return fmt.Errorf("optim: no parameter group %d (there are %d)", group, len(g.opts))
	}
	if err := checkLR(lr); err != nil {
		return fmt.Errorf("optim: parameter group %d: %w", group, err)
	}
	*PO(&g.opts[group]).lr() = lr
	return nil
}

// step runs update on every parameter that has a gradient, without
// autograd and inside a scope that frees the temporaries. update gets the
// parameter's flat index, the parameter, its gradient and its group's
// options; state it makes must be unscoped to outlive the step.
func (g *groups[O, PO]) step(update func(k int, p, grad *torch.Tensor, o *O)) error {
	err := torch.Try(func() {
		torch.NoGrad(func() {
			s := torch.NewScope()
			defer s.Close()
			k := 0
			for i, ps := range g.params {
				for _, p := range ps {
					if grad := p.Grad(); grad != nil {
						update(k, p, grad, &g.opts[i])
					}
					k++
				}
			}
		})
	})
	if err != nil {
		return fmt.Errorf("optim: step: %w", err)
	}
	return nil
}

// addState records that parameter k got state.
func (g *groups[O, PO]) addState(k int) { g.order = append(g.order, k) }

// stateDict assembles PyTorch's {'state': ..., 'param_groups': ...} from
// each stateful parameter's entries (none where state returns nil) and each
// group's hyperparameters.
func (g *groups[O, PO]) stateDict(state func(k int) *Dict, hyper func(o *O) *Dict) (*Dict, error) {
	st := NewDict()
	err := torch.Try(func() {
		for _, k := range g.order {
			if e := state(k); e != nil {
				st.Set(int64(k), e)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("optim: state dict: %w", err)
	}
	pgs := make([]any, len(g.params))
	k := 0
	for i, ps := range g.params {
		pg := hyper(&g.opts[i])
		for _, e := range g.extra[i] {
			pg.Set(e.key, e.value)
		}
		ids := make([]any, len(ps))
		for j := range ps {
			ids[j] = int64(k)
			k++
		}
		pg.Set("params", ids)
		pgs[i] = pg
	}
	sd := NewDict()
	sd.Set("state", st)
	sd.Set("param_groups", pgs)
	return sd, nil
}

// loaded is a state dict read against the optimizer's parameters, before it
// replaces the optimizer's state.
type loaded[O any, S any] struct {
	opts  []O
	extra [][]entry
	state []*S // by flat index; nil where a parameter has no state
	order []int
	made  []*torch.Tensor // tensors made for the state, freed on failure
}

// stateReader reads one parameter's state entry.
type stateReader[O any, S any] func(l *loaded[O, S], p *torch.Tensor, o *O, entry *Dict) (*S, error)

// groupReader reads one param group's hyperparameters, leaving in rest
// the keys it does not interpret.
type groupReader[O any] func(pg *Dict, rest map[string]bool) (O, error)

// tensor copies a state tensor of a loaded state dict into a new tensor
// owned by the optimizer. Like PyTorch's load_state_dict it takes the
// parameter's device, and its dtype when the parameter is floating point;
// unlike PyTorch it insists on the parameter's shape, which any state of
// this package's optimizers has.
func (l *loaded[O, S]) tensor(p *torch.Tensor, key string, v any) (*torch.Tensor, error) {
	src, ok := v.(*torch.Tensor)
	if !ok || src == nil || src.IsFreed() {
		return nil, fmt.Errorf("%s: want a tensor, got %s", key, describe(v))
	}
	if want, got := p.Shape(), src.Shape(); !slices.Equal(want, got) {
		return nil, fmt.Errorf("%s has shape %v but the parameter has shape %v", key, got, want)
	}
	dtype := src.DType()
	if p.DType().IsFloatingPoint() {
		dtype = p.DType()
	}
	var t *torch.Tensor
	err := torch.Try(func() {
		torch.NoGrad(func() {
			t = torch.Empty(p.Shape(), torch.Options{DType: dtype, Device: p.Device()}).Unscope()
			l.made = append(l.made, t)
			t.CopyFrom(src)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return t, nil
}

// load reads a state dict against the optimizer's parameter groups, as
// PyTorch's load_state_dict does: the groups must match in number and size,
// saved parameter ids map to the parameters by position, the saved
// hyperparameters replace the current ones and the state is copied. The
// optimizer is left to install the result, so nothing changes on error.
func load[O any, PO options[O], S any](g *groups[O, PO], sd *Dict, readGroup groupReader[O], readState stateReader[O, S]) (l *loaded[O, S], err error) {
	l = &loaded[O, S]{state: make([]*S, len(g.flat))}
	defer func() {
		if err != nil {
			for _, t := range l.made {
				t.Free()
			}
			l, err = nil, fmt.Errorf("optim: load state dict: %w", err)
		}
	}()
	// A freed parameter or tensor in sd fails the operation that uses it.
	defer torch.Recover(&err)
	if sd == nil {
		return l, errors.New("no state dict")
	}
	for _, k := range sd.Keys() {
		if k != "state" && k != "param_groups" {
			return l, fmt.Errorf("unexpected key %v (want only state and param_groups)", k)
		}
	}
	v, ok := sd.Get("param_groups")
	if !ok {
		return l, errors.New("no param_groups")
	}
	pgs, err := asSequence(v)
	if err != nil {
		return l, fmt.Errorf("param_groups: %w", err)
	}
	if len(pgs) != len(g.params) {
		return l, fmt.Errorf("%d parameter groups saved, the optimizer has %d", len(pgs), len(g.params))
	}
	ids := make(map[int64]int) // saved parameter id -> flat index
	k := 0
	for i, v := range pgs {
		pg, err := asDict(v)
		if err != nil {
			return l, fmt.Errorf("param_groups[%d]: %w", i, err)
		}
		v, ok := pg.Get("params")
		if !ok {
			return l, fmt.Errorf("param_groups[%d]: no params", i)
		}
		saved, err := asSequence(v)
		if err != nil {
			return l, fmt.Errorf("param_groups[%d]: params: %w", i, err)
		}
		if len(saved) != len(g.params[i]) {
			return l, fmt.Errorf("param_groups[%d] has %d parameters, the optimizer's group has %d", i, len(saved), len(g.params[i]))
		}
		for j, v := range saved {
			id, err := asInt(v)
			if err != nil {
				return l, fmt.Errorf("param_groups[%d]: params[%d]: %w", i, j, err)
			}
			if _, dup := ids[id]; dup {
				return l, fmt.Errorf("param_groups[%d]: parameter id %d appears twice", i, id)
			}
			ids[id] = k
			k++
		}
		rest := make(map[string]bool)
		var extra []entry
		for _, key := range pg.Keys() {
			name, ok := key.(string)
			if !ok {
				return l, fmt.Errorf("param_groups[%d]: key %v is not a string", i, key)
			}
			rest[name] = name != "params"
		}
		o, err := readGroup(pg, rest)
		if err != nil {
			return l, fmt.Errorf("param_groups[%d]: %w", i, err)
		}
		if err := PO(&o).validate(); err != nil {
			return l, fmt.Errorf("param_groups[%d]: %w", i, err)
		}
		for _, key := range pg.Keys() {
			if name := key.(string); rest[name] {
				v, _ := pg.Get(name)
				extra = append(extra, entry{name, v})
			}
		}
		l.opts = append(l.opts, o)
		l.extra = append(l.extra, extra)
	}
	v, ok = sd.Get("state")
	if !ok {
		return l, errors.New("no state")
	}
	st, err := asDict(v)
	if err != nil {
		return l, fmt.Errorf("state: %w", err)
	}
	for _, key := range st.Keys() {
		id, ok := key.(int64)
		if !ok {
			return l, fmt.Errorf("state: key %q is not a parameter id", key)
		}
		k, ok := ids[id]
		if !ok {
			return l, fmt.Errorf("state: parameter id %d is in no parameter group", id)
		}
		v, _ := st.Get(id)
		e, err := asDict(v)
		if err != nil {
			return l, fmt.Errorf("state[%d]: %w", id, err)
		}
		s, err := readState(l, g.flat[k], &l.opts[g.groupOf[k]], e)
		if err != nil {
			return l, fmt.Errorf("state[%d] (parameter %d, shape %v): %w", id, k, g.flat[k].Shape(), err)
		}
		l.state[k] = s
		l.order = append(l.order, k)
	}
	return l, nil
}

// install makes a loaded state dict's hyperparameters the groups' own.
func (g *groups[O, PO]) install(opts []O, extra [][]entry, order []int) {
	copy(g.opts, opts)
	g.extra = extra
	g.order = order
}

// checkKeys reports the first key of d that is not in known.
func checkKeys(d *Dict, known ...string) error {
	for _, k := range d.Keys() {
		ok := false
		for _, name := range known {
			ok = ok || k == name
		}
		if !ok {
			return fmt.Errorf("unexpected key %q (this optimizer's state has %v)", k, known)
		}
	}
	return nil
}

// hyperReader reads the hyperparameters of one param group, ticking off in
// rest the keys it has read; the first failure sticks.
type hyperReader struct {
	pg   *Dict
	rest map[string]bool
	err  error
}

func (r *hyperReader) get(key string, required bool) (any, bool) {
	if r.err != nil {
		return nil, false
	}
	v, ok := r.pg.Get(key)
	if !ok {
		if required {
			r.err = fmt.Errorf("no %s", key)
		}
		return nil, false
	}
	r.rest[key] = false
	return v, true
}

func (r *hyperReader) wrap(key string, err error) {
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s: %w", key, err)
	}
}

func (r *hyperReader) float(key string, dst *float64) {
	if v, ok := r.get(key, true); ok {
		f, err := asFloat(v)
		r.wrap(key, err)
		*dst = f
	}
}

// bool reads an optional flag; absent means false, as PyTorch's
// __setstate__ defaults the flags that older releases did not save.
func (r *hyperReader) bool(key string, dst *bool) {
	if v, ok := r.get(key, false); ok {
		b, err := asBool(v)
		r.wrap(key, err)
		*dst = b
	}
}

// implementation reads the flags that choose among PyTorch's
// implementations of one algorithm (foreach, fused, capturable,
// differentiable): they do not change what a step computes, so any value is
// accepted, and exporting writes the values of this package's
// implementation.
func (r *hyperReader) implementation(keys ...string) {
	for _, key := range keys {
		if v, ok := r.get(key, false); ok && v != nil {
			_, err := asBool(v)
			r.wrap(key, err)
		}
	}
}

// unsupported rejects a flag that would change the algorithm when it is
// set (and accepts it when it is not).
func (r *hyperReader) unsupported(key string) {
	var on bool
	r.bool(key, &on)
	if on && r.err == nil {
		r.err = fmt.Errorf("%s=True is not supported", key)
	}
}

// readStep reads the step count of a state entry: a one-element tensor since
// PyTorch 1.12, a number before.
func readStep(v any) (float32, error) {
	f, err := asFloat(v)
	if err != nil {
		return 0, fmt.Errorf("step: %w", err)
	}
	if !(f >= 0) || math.IsInf(f, 1) || f != math.Trunc(f) {
		return 0, fmt.Errorf("step: %v is not a step count", f)
	}
	// PyTorch too turns a saved number into a float32 tensor.
	return float32(f), nil
}
