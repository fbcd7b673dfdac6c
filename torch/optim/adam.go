package optim

import (
	"fmt"
	"math"

	"github.com/edema/edema/torch"
)

// AdamOptions are the hyperparameters of Adam, with torch.optim.Adam's
// meaning.
type AdamOptions struct {
	LR    float64
	Betas [2]float64 // decay rates of the first and second moment estimates
	Eps   float64    // added to the denominator for numerical stability
	// WeightDecay is an L2 penalty added to the gradient, as in
	// torch.optim.Adam; it is not AdamW's decoupled decay.
	WeightDecay float64
	// AMSGrad normalises by the running maximum of the second moment.
	AMSGrad bool
	// Maximize follows the gradient upwards instead of downwards.
	Maximize bool
}

// DefaultAdamOptions returns torch.optim.Adam's defaults: lr 1e-3, betas
// (0.9, 0.999), eps 1e-8, no weight decay.
func DefaultAdamOptions() AdamOptions {
	return AdamOptions{LR: 1e-3, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8}
}

func (o *AdamOptions) lr() *float64 { return &o.LR }

// validate makes the checks of torch.optim.Adam's constructor.
func (o *AdamOptions) validate() error {
	if err := checkLR(o.LR); err != nil {
		return err
	}
	if !(o.Eps >= 0) {
		return fmt.Errorf("invalid epsilon %v", o.Eps)
	}
	for i, b := range o.Betas {
		if !(b >= 0 && b < 1) {
			return fmt.Errorf("invalid beta parameter at index %d: %v (want 0 <= beta < 1)", i, b)
		}
	}
	if !(o.WeightDecay >= 0) {
		return fmt.Errorf("invalid weight decay %v", o.WeightDecay)
	}
	return nil
}

// AdamGroup is a parameter group with its own options.
type AdamGroup struct {
	Params  []*torch.Tensor
	Options AdamOptions
}

// Adam is torch.optim.Adam (Kingma and Ba, 2015), with the AMSGrad variant
// of Reddi et al. (2018) as an option.
type Adam struct {
	groups[AdamOptions, *AdamOptions]
	state []*adamState // by flat parameter index; nil until the first step
	// lerp updates the first moment as PyTorch 2 does (see Emulate).
	lerp bool
}

// Emulate makes Step compute as torch.optim.Adam of release r does.
// PyTorch 2 updates the first moment with exp_avg.lerp_(grad, 1-beta1),
// 1.13 (the default here) with exp_avg.mul_(beta1).add_(grad, alpha=1-beta1):
// the same value, rounded differently, by up to a few units in the last
// place a step.
func (a *Adam) Emulate(r Layout) { a.lerp = r == PyTorch2 }

type adamState struct {
	// step counts the steps taken. PyTorch 1.13 keeps it in a float32
	// tensor and adds 1 to it; a float32 here counts the same way, up to
	// where float32 stops counting (2^24), and saves a device round trip.
	step                          float32
	expAvg, expAvgSq, maxExpAvgSq *torch.Tensor
}

// NewAdam returns an Adam optimizer of params with one set of options.
func NewAdam(params []*torch.Tensor, o AdamOptions) (*Adam, error) {
	return NewAdamGroups(AdamGroup{Params: params, Options: o})
}

// NewAdamGroups returns an Adam optimizer of parameter groups with their
// own options. No parameter may appear twice.
func NewAdamGroups(gs ...AdamGroup) (*Adam, error) {
	params := make([][]*torch.Tensor, len(gs))
	opts := make([]AdamOptions, len(gs))
	for i, g := range gs {
		params[i], opts[i] = g.Params, g.Options
	}
	base, err := newGroups[AdamOptions](params, opts)
	if err != nil {
		return nil, err
	}
	return &Adam{groups: base, state: make([]*adamState, len(base.flat))}, nil
}

// Options returns the options of a parameter group, with its current
// learning rate.
func (a *Adam) Options(group int) AdamOptions { return a.opts[group] }

// Step takes one Adam step for every parameter that has a gradient. An
// error leaves the parameters in an unspecified state: one that libtorch
// rejects (a gradient of the wrong shape) may come after others were
// updated.
func (a *Adam) Step() error { return a.step(a.update) }

// update is _single_tensor_adam of PyTorch 1.13 for one parameter, with
// capturable and differentiable off.
func (a *Adam) update(k int, p, grad *torch.Tensor, o *AdamOptions) {
	st := a.state[k]
	if st == nil {
		st = &adamState{expAvg: zerosLike(p), expAvgSq: zerosLike(p)}
		if o.AMSGrad {
			st.maxExpAvgSq = zerosLike(p)
		}
		a.state[k] = st
		a.addState(k)
	}
	if o.Maximize {
		grad = grad.Neg()
	}
	st.step++
	if o.WeightDecay != 0 {
		grad = grad.AddScaled(p, o.WeightDecay)
	}
	beta1, beta2 := o.Betas[0], o.Betas[1]
	if a.lerp {
		st.expAvg.LerpInPlace(grad, 1-beta1)
	} else {
		st.expAvg.MulScalarInPlace(beta1).AddInPlace(grad, 1-beta1)
	}
	st.expAvgSq.MulScalarInPlace(beta2).AddcmulInPlace(grad, grad, 1-beta2)

	// The bias corrections are Python floats in PyTorch: float64 here. Go's
	// math.Pow and C's pow may differ in the last bit, far below float32.
	step := float64(st.step)
	biasCorrection1 := 1 - math.Pow(beta1, step)
	biasCorrection2 := 1 - math.Pow(beta2, step)
	stepSize := o.LR / biasCorrection1
	biasCorrection2Sqrt := math.Sqrt(biasCorrection2)

	second := st.expAvgSq
	if o.AMSGrad {
		st.maxExpAvgSq.MaximumInPlace(st.expAvgSq)
		second = st.maxExpAvgSq
	}
	denom := second.Sqrt().DivScalar(biasCorrection2Sqrt).AddScalarInPlace(o.Eps)
	p.AddcdivInPlace(st.expAvg, denom, -stepSize)
}

// zerosLike makes long-lived state for p: zeros of its shape, dtype and
// device that outlive the step's scope.
func zerosLike(p *torch.Tensor) *torch.Tensor {
	return torch.Zeros(p.Shape(), torch.Options{DType: p.DType(), Device: p.Device()}).Unscope()
}

// StateDict exports the state in the DefaultLayout (see StateDictFor).
func (a *Adam) StateDict() (*Dict, error) { return a.StateDictFor(DefaultLayout) }

// StateDictFor exports the state as torch.optim.Adam.state_dict() of the
// release of layout l does: per parameter that has state, its step as a
// float32 scalar tensor, exp_avg, exp_avg_sq and, with AMSGrad,
// max_exp_avg_sq; per group, lr, betas, eps, weight_decay, amsgrad,
// maximize, foreach (None), capturable, differentiable (False), fused
// (False in 1.13, None in 2.x), and the parameter ids.
//
// The state tensors share memory with the optimizer's, as PyTorch's do:
// the next Step changes them. Freeing them leaves the optimizer's intact.
func (a *Adam) StateDictFor(l Layout) (*Dict, error) {
	return a.stateDict(func(k int) *Dict {
		st := a.state[k]
		e := NewDict()
		e.Set("step", torch.Scalar(st.step))
		e.Set("exp_avg", st.expAvg.Detach())
		e.Set("exp_avg_sq", st.expAvgSq.Detach())
		if st.maxExpAvgSq != nil {
			e.Set("max_exp_avg_sq", st.maxExpAvgSq.Detach())
		}
		return e
	}, func(o *AdamOptions) *Dict {
		pg := NewDict()
		pg.Set("lr", o.LR)
		pg.Set("betas", Tuple{o.Betas[0], o.Betas[1]})
		pg.Set("eps", o.Eps)
		pg.Set("weight_decay", o.WeightDecay)
		pg.Set("amsgrad", o.AMSGrad)
		pg.Set("maximize", o.Maximize)
		pg.Set("foreach", nil)
		pg.Set("capturable", false)
		pg.Set("differentiable", false)
		if l == PyTorch113 {
			pg.Set("fused", false)
		} else {
			pg.Set("fused", nil)
		}
		return pg
	})
}

// LoadStateDict replaces the state and the groups' hyperparameters with
// those of sd, which StateDict or PyTorch's torch.optim.Adam.state_dict()
// exported for the same parameters in the same order. State tensors are
// copied, to the parameter's device and floating-point dtype. On error the
// optimizer is unchanged.
func (a *Adam) LoadStateDict(sd *Dict) error {
	l, err := load(&a.groups, sd, readAdamGroup, readAdamState)
	if err != nil {
		return err
	}
	for _, st := range a.state {
		if st != nil {
			st.expAvg.Free()
			st.expAvgSq.Free()
			st.maxExpAvgSq.Free()
		}
	}
	a.state = l.state
	a.install(l.opts, l.extra, l.order)
	return nil
}

func readAdamGroup(pg *Dict, rest map[string]bool) (AdamOptions, error) {
	var o AdamOptions
	r := &hyperReader{pg: pg, rest: rest}
	r.float("lr", &o.LR)
	if v, ok := r.get("betas", true); ok {
		betas, err := asSequence(v)
		if err == nil && len(betas) != 2 {
			err = fmt.Errorf("want 2 numbers, got %d", len(betas))
		}
		for i := 0; err == nil && i < 2; i++ {
			o.Betas[i], err = asFloat(betas[i])
		}
		r.wrap("betas", err)
	}
	r.float("eps", &o.Eps)
	r.float("weight_decay", &o.WeightDecay)
	r.bool("amsgrad", &o.AMSGrad)
	r.bool("maximize", &o.Maximize)
	r.implementation("foreach", "capturable", "differentiable", "fused")
	// PyTorch 2.6 folded AdamW into Adam behind this flag.
	r.unsupported("decoupled_weight_decay")
	return o, r.err
}

func readAdamState(l *loaded[AdamOptions, adamState], p *torch.Tensor, o *AdamOptions, e *Dict) (*adamState, error) {
	if err := checkKeys(e, "step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"); err != nil {
		return nil, err
	}
	st := &adamState{}
	var err error
	for _, key := range []string{"step", "exp_avg", "exp_avg_sq"} {
		if _, ok := e.Get(key); !ok {
			return nil, fmt.Errorf("no %s", key)
		}
	}
	v, _ := e.Get("step")
	if st.step, err = readStep(v); err != nil {
		return nil, err
	}
	v, _ = e.Get("exp_avg")
	if st.expAvg, err = l.tensor(p, "exp_avg", v); err != nil {
		return nil, err
	}
	v, _ = e.Get("exp_avg_sq")
	if st.expAvgSq, err = l.tensor(p, "exp_avg_sq", v); err != nil {
		return nil, err
	}
	// PyTorch keeps a max_exp_avg_sq that AMSGrad no longer uses (and so
	// does this package), but fails at the next step when AMSGrad needs one
	// that is missing.
	if v, ok := e.Get("max_exp_avg_sq"); ok {
		if st.maxExpAvgSq, err = l.tensor(p, "max_exp_avg_sq", v); err != nil {
			return nil, err
		}
	} else if o.AMSGrad {
		return nil, fmt.Errorf("amsgrad is on but there is no max_exp_avg_sq")
	}
	return st, nil
}
