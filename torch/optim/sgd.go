package optim

import (
	"fmt"

	"github.com/edema/edema/torch"
)

// SGDOptions are the hyperparameters of stochastic gradient descent, with
// torch.optim.SGD's meaning. The zero value is plain SGD with learning
// rate 0; PyTorch has no default learning rate either.
type SGDOptions struct {
	LR       float64
	Momentum float64
	// Dampening scales down the gradient's contribution to the momentum.
	Dampening float64
	// WeightDecay is an L2 penalty added to the gradient.
	WeightDecay float64
	// Nesterov uses Nesterov momentum; it needs momentum and no dampening.
	Nesterov bool
	// Maximize follows the gradient upwards instead of downwards.
	Maximize bool
}

func (o *SGDOptions) lr() *float64 { return &o.LR }

// validate makes the checks of torch.optim.SGD's constructor.
func (o *SGDOptions) validate() error {
	if err := checkLR(o.LR); err != nil {
		return err
	}
	if !(o.Momentum >= 0) {
		return fmt.Errorf("invalid momentum %v", o.Momentum)
	}
	if !(o.WeightDecay >= 0) {
		return fmt.Errorf("invalid weight decay %v", o.WeightDecay)
	}
	if o.Nesterov && (o.Momentum <= 0 || o.Dampening != 0) {
		return fmt.Errorf("Nesterov momentum requires a momentum and zero dampening")
	}
	return nil
}

// SGDGroup is a parameter group with its own options.
type SGDGroup struct {
	Params  []*torch.Tensor
	Options SGDOptions
}

// SGD is torch.optim.SGD: stochastic gradient descent, optionally with
// momentum (PyTorch's formulation, which scales the velocity by the
// learning rate at each step rather than folding it in) or Nesterov
// momentum.
type SGD struct {
	groups[SGDOptions, *SGDOptions]
	state []*sgdState // by flat parameter index; nil until the first step
}

type sgdState struct {
	// momentumBuffer is nil (None in PyTorch) while there is no momentum.
	momentumBuffer *torch.Tensor
}

// NewSGD returns an SGD optimizer of params with one set of options.
func NewSGD(params []*torch.Tensor, o SGDOptions) (*SGD, error) {
	return NewSGDGroups(SGDGroup{Params: params, Options: o})
}

// NewSGDGroups returns an SGD optimizer of parameter groups with their own
// options. No parameter may appear twice.
func NewSGDGroups(gs ...SGDGroup) (*SGD, error) {
	params := make([][]*torch.Tensor, len(gs))
	opts := make([]SGDOptions, len(gs))
	for i, g := range gs {
		params[i], opts[i] = g.Params, g.Options
	}
	base, err := newGroups[SGDOptions](params, opts)
	if err != nil {
		return nil, err
	}
	return &SGD{groups: base, state: make([]*sgdState, len(base.flat))}, nil
}

// Options returns the options of a parameter group, with its current
// learning rate.
func (s *SGD) Options(group int) SGDOptions { return s.opts[group] }

// Step takes one SGD step for every parameter that has a gradient. An
// error leaves the parameters in an unspecified state.
func (s *SGD) Step() error { return s.step(s.update) }

// update is _single_tensor_sgd of PyTorch 1.13 for one parameter.
func (s *SGD) update(k int, p, grad *torch.Tensor, o *SGDOptions) {
	st := s.state[k]
	if st == nil {
		// PyTorch 1.13 records a (possibly None) momentum buffer for every
		// parameter that had a gradient; PyTorch 2 records none without
		// momentum, a state dict that loads here all the same.
		st = &sgdState{}
		s.state[k] = st
		s.addState(k)
	}
	d := grad
	if o.Maximize {
		d = d.Neg()
	}
	if o.WeightDecay != 0 {
		d = d.AddScaled(p, o.WeightDecay)
	}
	if o.Momentum != 0 {
		if st.momentumBuffer == nil {
			st.momentumBuffer = d.Clone().Unscope()
		} else {
			st.momentumBuffer.MulScalarInPlace(o.Momentum).AddInPlace(d, 1-o.Dampening)
		}
		if o.Nesterov {
			d = d.AddScaled(st.momentumBuffer, o.Momentum)
		} else {
			d = st.momentumBuffer
		}
	}
	p.AddInPlace(d, -o.LR)
}

// StateDict exports the state in the DefaultLayout (see StateDictFor).
func (s *SGD) StateDict() (*Dict, error) { return s.StateDictFor(DefaultLayout) }

// StateDictFor exports the state as torch.optim.SGD.state_dict() of the
// release of layout l does: per parameter that has had a gradient, its
// momentum_buffer (without momentum: None in 1.13, no entry at all in
// 2.x); per group, lr, momentum, dampening, weight_decay, nesterov,
// maximize, foreach (None), differentiable (False), in 2.x fused (None),
// and the parameter ids.
//
// The momentum buffers share memory with the optimizer's, as PyTorch's do.
func (s *SGD) StateDictFor(l Layout) (*Dict, error) {
	return s.stateDict(func(k int) *Dict {
		e := NewDict()
		switch b := s.state[k].momentumBuffer; {
		case b != nil:
			e.Set("momentum_buffer", b.Detach())
		case l == PyTorch113:
			e.Set("momentum_buffer", nil)
		default:
			return nil
		}
		return e
	}, func(o *SGDOptions) *Dict {
		pg := NewDict()
		pg.Set("lr", o.LR)
		pg.Set("momentum", o.Momentum)
		pg.Set("dampening", o.Dampening)
		pg.Set("weight_decay", o.WeightDecay)
		pg.Set("nesterov", o.Nesterov)
		pg.Set("maximize", o.Maximize)
		pg.Set("foreach", nil)
		pg.Set("differentiable", false)
		if l != PyTorch113 {
			pg.Set("fused", nil)
		}
		return pg
	})
}

// LoadStateDict replaces the state and the groups' hyperparameters with
// those of sd, which StateDict or PyTorch's torch.optim.SGD.state_dict()
// exported for the same parameters in the same order. Momentum buffers are
// copied, to the parameter's device and floating-point dtype. On error the
// optimizer is unchanged.
func (s *SGD) LoadStateDict(sd *Dict) error {
	l, err := load(&s.groups, sd, readSGDGroup, readSGDState)
	if err != nil {
		return err
	}
	for _, st := range s.state {
		if st != nil {
			st.momentumBuffer.Free()
		}
	}
	s.state = l.state
	s.install(l.opts, l.extra, l.order)
	return nil
}

func readSGDGroup(pg *Dict, rest map[string]bool) (SGDOptions, error) {
	var o SGDOptions
	r := &hyperReader{pg: pg, rest: rest}
	r.float("lr", &o.LR)
	r.float("momentum", &o.Momentum)
	r.float("dampening", &o.Dampening)
	r.float("weight_decay", &o.WeightDecay)
	r.bool("nesterov", &o.Nesterov)
	r.bool("maximize", &o.Maximize)
	r.implementation("foreach", "differentiable", "fused")
	return o, r.err
}

func readSGDState(l *loaded[SGDOptions, sgdState], p *torch.Tensor, _ *SGDOptions, e *Dict) (*sgdState, error) {
	if err := checkKeys(e, "momentum_buffer"); err != nil {
		return nil, err
	}
	st := &sgdState{}
	// A missing buffer reads as None: PyTorch then starts one afresh.
	if v, ok := e.Get("momentum_buffer"); ok && v != nil {
		var err error
		if st.momentumBuffer, err = l.tensor(p, "momentum_buffer", v); err != nil {
			return nil, err
		}
	}
	return st, nil
}
