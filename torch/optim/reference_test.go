package optim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/require"
)

// The reference runs torch.optim on the same parameters and gradients: it
// reads them, with the optimizers to build, from the JSON file named by its
// argument and prints, per optimizer, the parameters and state_dict() after
// the checkpoint step and after the last step.
const referenceScript = `
import json, sys, torch

def enc(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"float": v}
    if isinstance(v, list):
        return {"list": [enc(x) for x in v]}
    if isinstance(v, tuple):
        return {"tuple": [enc(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": [[enc(k), enc(x)] for k, x in v.items()]}
    if torch.is_tensor(v):
        return {"tensor": {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                           "data": v.detach().double().flatten().tolist()}}
    raise TypeError(type(v))

def tensor(x):
    return torch.tensor(x["data"], dtype=torch.float32).reshape(x["shape"])

ORDER = ["lr", "betas", "eps", "momentum", "dampening", "weight_decay", "amsgrad", "nesterov", "maximize"]

inp = json.load(open(sys.argv[1]))
out = {}
for case in inp["cases"]:
    params = [tensor(p).requires_grad_() for p in inp["params"]]
    groups = []
    for g in case["groups"]:
        # A param group's keys come in the order given, then the defaults:
        # give them in the order of the defaults, as plain calls do.
        kw = {k: (tuple(float(b) for b in v) if k == "betas" else v if isinstance(v, bool) else float(v))
              for k, v in sorted(g["options"].items(), key=lambda kv: ORDER.index(kv[0]))}
        groups.append(dict(params=[params[i] for i in g["params"]], **kw))
    opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[case["optimizer"]](groups)
    res = {}
    for step, grads in enumerate(inp["grads"]):
        if step == inp["lr_step"]:
            for c in case["lr_changes"]:
                for i, g in enumerate(opt.param_groups):
                    if c["group"] in (-1, i):
                        g["lr"] = c["lr"]
        for p, g in zip(params, grads):
            p.grad = None if g is None else tensor(g)
        opt.step()
        if step + 1 in (inp["checkpoint"], len(inp["grads"])):
            res[str(step + 1)] = {"params": [enc(p) for p in params], "state": enc(opt.state_dict())}
    out[case["name"]] = res
json.dump(out, sys.stdout)
`

const (
	numSteps   = 10
	checkpoint = 5 // steps before the state is exported and resumed
	lrStep     = 3 // steps before the learning rate changes
)

var paramShapes = [][]int64{{3}, {4, 5}, {2, 3, 3, 3}, {}, {1, 7}}

// noGrad[step] lists the parameters left without a gradient at a step:
// parameter 0 gets state only at step 2, after the others, which PyTorch's
// state dicts show in their order.
var noGrad = map[int][]int{0: {0}, 1: {0}, 2: {4}, 6: {4}}

type groupSpec struct {
	params []int
	adam   *AdamOptions
	sgd    *SGDOptions
}

type lrChange struct {
	group int // -1 for all
	lr    float64
}

type refCase struct {
	name   string
	groups []groupSpec
	lr     []lrChange
	// pythonDefaults leaves options at their defaults out of the Python
	// constructor, so that PyTorch's state dict holds its int defaults.
	pythonDefaults bool
}

func adamOpts(f func(*AdamOptions)) *AdamOptions {
	o := DefaultAdamOptions()
	f(&o)
	return &o
}

var refCases = []refCase{
	{name: "adam",
		groups: []groupSpec{{params: []int{0, 1, 2, 3, 4}, adam: adamOpts(func(o *AdamOptions) { o.LR = 1e-2 })}},
		lr:     []lrChange{{-1, 3e-3}}},
	{name: "adam_weight_decay",
		groups: []groupSpec{{params: []int{0, 1, 2, 3, 4}, adam: adamOpts(func(o *AdamOptions) {
			o.LR, o.Betas, o.WeightDecay = 1e-2, [2]float64{0.9, 0.99}, 1e-2
		})}},
		lr: []lrChange{{-1, 5e-3}}},
	{name: "adam_amsgrad",
		groups: []groupSpec{{params: []int{0, 1, 2, 3, 4}, adam: adamOpts(func(o *AdamOptions) {
			o.LR, o.AMSGrad, o.WeightDecay, o.Eps = 2e-2, true, 1e-4, 1e-6
		})}},
		lr: []lrChange{{-1, 1e-2}}},
	{name: "adam_groups",
		groups: []groupSpec{
			{params: []int{0, 2, 4}, adam: adamOpts(func(o *AdamOptions) { o.LR, o.AMSGrad = 1e-2, true })},
			{params: []int{1, 3}, adam: adamOpts(func(o *AdamOptions) { o.LR, o.WeightDecay, o.Maximize = 5e-2, 1e-3, true })},
		},
		lr: []lrChange{{1, 1e-2}}},
	{name: "adam_python_defaults",
		groups:         []groupSpec{{params: []int{0, 1, 2, 3, 4}, adam: adamOpts(func(*AdamOptions) {})}},
		lr:             []lrChange{{-1, 1e-4}},
		pythonDefaults: true},
	{name: "sgd",
		groups:         []groupSpec{{params: []int{0, 1, 2, 3, 4}, sgd: &SGDOptions{LR: 0.1}}},
		lr:             []lrChange{{-1, 0.05}},
		pythonDefaults: true},
	{name: "sgd_momentum",
		groups: []groupSpec{{params: []int{0, 1, 2, 3, 4}, sgd: &SGDOptions{LR: 0.05, Momentum: 0.9}}},
		lr:     []lrChange{{-1, 0.01}}},
	{name: "sgd_dampening_weight_decay",
		groups: []groupSpec{{params: []int{0, 1, 2, 3, 4}, sgd: &SGDOptions{LR: 0.05, Momentum: 0.8, Dampening: 0.3, WeightDecay: 1e-2}}},
		lr:     []lrChange{{-1, 0.02}}},
	{name: "sgd_nesterov",
		groups: []groupSpec{{params: []int{0, 1, 2, 3, 4}, sgd: &SGDOptions{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3}}},
		lr:     []lrChange{{-1, 0.02}}},
	{name: "sgd_groups",
		groups: []groupSpec{
			{params: []int{0, 2, 4}, sgd: &SGDOptions{LR: 0.1, Momentum: 0.9, Nesterov: true}},
			{params: []int{1, 3}, sgd: &SGDOptions{LR: 0.01, WeightDecay: 1e-2, Maximize: true}},
		},
		lr: []lrChange{{0, 0.03}}},
}

func (c refCase) optimizer() string {
	if c.groups[0].adam != nil {
		return "adam"
	}
	return "sgd"
}

// kwargs are the Python constructor arguments of a group.
func (c refCase) kwargs(g groupSpec) map[string]any {
	kw := map[string]any{}
	put := func(key string, v, dflt any) {
		if !c.pythonDefaults || v != dflt {
			kw[key] = v
		}
	}
	if o := g.adam; o != nil {
		d := DefaultAdamOptions()
		put("lr", o.LR, d.LR)
		put("betas", o.Betas, d.Betas)
		put("eps", o.Eps, d.Eps)
		put("weight_decay", o.WeightDecay, 0.0)
		put("amsgrad", o.AMSGrad, false)
		put("maximize", o.Maximize, false)
	} else {
		o := g.sgd
		kw["lr"] = o.LR
		put("momentum", o.Momentum, 0.0)
		put("dampening", o.Dampening, 0.0)
		put("weight_decay", o.WeightDecay, 0.0)
		put("nesterov", o.Nesterov, false)
		put("maximize", o.Maximize, false)
	}
	return kw
}

// build makes the case's optimizer over params.
func (c refCase) build(t *testing.T, params []*torch.Tensor) Optimizer {
	t.Helper()
	pick := func(idx []int) []*torch.Tensor {
		ps := make([]*torch.Tensor, len(idx))
		for i, j := range idx {
			ps[i] = params[j]
		}
		return ps
	}
	var opt Optimizer
	var err error
	if c.optimizer() == "adam" {
		var gs []AdamGroup
		for _, g := range c.groups {
			gs = append(gs, AdamGroup{Params: pick(g.params), Options: *g.adam})
		}
		opt, err = NewAdamGroups(gs...)
	} else {
		var gs []SGDGroup
		for _, g := range c.groups {
			gs = append(gs, SGDGroup{Params: pick(g.params), Options: *g.sgd})
		}
		opt, err = NewSGDGroups(gs...)
	}
	require.NoError(t, err)
	return opt
}

func (c refCase) changeLR(t *testing.T, opt Optimizer) {
	for _, ch := range c.lr {
		if ch.group < 0 {
			require.NoError(t, opt.SetLR(ch.lr))
		} else {
			require.NoError(t, opt.SetGroupLR(ch.group, ch.lr))
		}
	}
}

// problem is the parameters' initial values and the gradients of every
// step (nil where a parameter gets none), the same for every optimizer.
type problem struct {
	init  []*torch.Tensor
	grads [][]*torch.Tensor
}

func newProblem() problem {
	rng := rand.New(rand.NewPCG(1234, 5678))
	randn := func(shape []int64, scale float64) *torch.Tensor {
		n := int64(1)
		for _, s := range shape {
			n *= s
		}
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(rng.NormFloat64() * scale)
		}
		return torch.FromSlice(xs, shape...)
	}
	var pr problem
	for _, s := range paramShapes {
		pr.init = append(pr.init, randn(s, 1))
	}
	// Gradient scales vary over several orders of magnitude, so that eps
	// and the bias corrections matter.
	scales := []float64{1, 0.1, 3, 1e-3, 1, 10, 0.5, 1e-2, 2, 1}
	for step := range numSteps {
		grads := make([]*torch.Tensor, len(paramShapes))
		for i, s := range paramShapes {
			grads[i] = randn(s, scales[step])
		}
		for _, i := range noGrad[step] {
			grads[i] = nil
		}
		pr.grads = append(pr.grads, grads)
	}
	return pr
}

// params returns fresh leaf copies of values.
func leafCopies(values []*torch.Tensor) []*torch.Tensor {
	ps := make([]*torch.Tensor, len(values))
	for i, v := range values {
		ps[i] = v.Detach().Clone().SetRequiresGrad(true)
	}
	return ps
}

// run takes steps [from, to) of the problem, changing the learning rate
// before step lrStep.
func (pr problem) run(t *testing.T, c refCase, opt Optimizer, params []*torch.Tensor, from, to int) {
	t.Helper()
	for step := from; step < to; step++ {
		if step == lrStep {
			c.changeLR(t, opt)
		}
		opt.ZeroGrad()
		for i, p := range params {
			if g := pr.grads[step][i]; g != nil {
				p.BackwardWith(g, false)
			}
		}
		require.NoError(t, opt.Step())
	}
}

type snapshot struct {
	params []*torch.Tensor
	state  *Dict
}

// reference runs torch.optim on every case and returns, per case, the
// snapshots after the checkpoint step and after the last step.
func reference(t *testing.T, pr problem) map[string]map[int]snapshot {
	dir := t.TempDir()
	jsonTensor := func(x *torch.Tensor) any {
		if x == nil {
			return nil
		}
		return map[string]any{"shape": jsonShape(x), "data": x.Float32s()}
	}
	in := map[string]any{"checkpoint": checkpoint, "lr_step": lrStep}
	var params []any
	for _, p := range pr.init {
		params = append(params, jsonTensor(p))
	}
	in["params"] = params
	var grads []any
	for _, step := range pr.grads {
		var gs []any
		for _, g := range step {
			gs = append(gs, jsonTensor(g))
		}
		grads = append(grads, gs)
	}
	in["grads"] = grads
	var cases []any
	for _, c := range refCases {
		var groups, changes []any
		for _, g := range c.groups {
			groups = append(groups, map[string]any{"params": g.params, "options": c.kwargs(g)})
		}
		for _, ch := range c.lr {
			changes = append(changes, map[string]any{"group": ch.group, "lr": ch.lr})
		}
		cases = append(cases, map[string]any{"name": c.name, "optimizer": c.optimizer(), "groups": groups, "lr_changes": changes})
	}
	in["cases"] = cases
	path := filepath.Join(dir, "input.json")
	require.NoError(t, os.WriteFile(path, mustJSON(t, in), 0o644))

	var out map[string]map[string]struct {
		Params []any `json:"params"`
		State  any   `json:"state"`
	}
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, dir, referenceScript, path)), &out))
	res := make(map[string]map[int]snapshot)
	for name, byStep := range out {
		res[name] = make(map[int]snapshot)
		for step, s := range byStep {
			var snap snapshot
			for _, p := range s.Params {
				snap.params = append(snap.params, fromJSON(t, p).(*torch.Tensor))
			}
			snap.state = fromJSON(t, s.State).(*Dict)
			var n int
			_, err := fmt.Sscan(step, &n)
			require.NoError(t, err)
			res[name][n] = snap
		}
	}
	return res
}

func requireParamsClose(t *testing.T, want, got []*torch.Tensor) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		requireClose(t, fmt.Sprintf("parameter %d", i), want[i], got[i])
	}
}

// TestMatchesTorchOptim runs each optimizer alongside torch.optim: after
// the same steps the parameters and the state dicts agree; resuming from
// an exported state, Go's or PyTorch's, continues as if uninterrupted.
func TestMatchesTorchOptim(t *testing.T) {
	pr := newProblem()
	ref := reference(t, pr)
	// The state dicts are compared in the layout of the PyTorch here.
	layout, err := LayoutOf(strings.TrimSpace(pytorchtest.Run(t, t.TempDir(), "import torch; print(torch.__version__)")))
	require.NoError(t, err)
	t.Logf("comparing with torch.optim of %s, its arithmetic and its state dict layout", layout)
	build := func(c refCase, params []*torch.Tensor) Optimizer {
		opt := c.build(t, params)
		if a, ok := opt.(*Adam); ok {
			a.Emulate(layout)
		}
		return opt
	}
	for _, c := range refCases {
		t.Run(c.name, func(t *testing.T) {
			want := ref[c.name]
			require.Contains(t, want, checkpoint)
			require.Contains(t, want, numSteps)

			params := leafCopies(pr.init)
			opt := build(c, params)
			pr.run(t, c, opt, params, 0, checkpoint)
			requireParamsClose(t, want[checkpoint].params, params)
			sd5, err := opt.StateDictFor(layout)
			require.NoError(t, err)
			compareTree(t, "state_dict", want[checkpoint].state, sd5)

			// Resume from Go's export in a fresh optimizer built with the
			// initial options: the state dict carries the changed rate.
			resumed := leafCopies(params)
			opt2 := build(c, resumed)
			require.NoError(t, opt2.LoadStateDict(sd5))

			pr.run(t, c, opt, params, checkpoint, numSteps)
			requireParamsClose(t, want[numSteps].params, params)
			sd10, err := opt.StateDictFor(layout)
			require.NoError(t, err)
			compareTree(t, "state_dict", want[numSteps].state, sd10)

			pr.run(t, c, opt2, resumed, checkpoint, numSteps)
			for i := range params {
				require.Equal(t, params[i].Float32s(), resumed[i].Float32s(), "parameter %d after resuming from Go's state", i)
			}
			sd10resumed, err := opt2.StateDictFor(layout)
			require.NoError(t, err)
			require.Equal(t, mustJSON(t, toJSON(sd10)), mustJSON(t, toJSON(sd10resumed)))

			// Resume from PyTorch's export and parameters.
			fromTorch := leafCopies(want[checkpoint].params)
			opt3 := build(c, fromTorch)
			require.NoError(t, opt3.LoadStateDict(want[checkpoint].state))
			pr.run(t, c, opt3, fromTorch, checkpoint, numSteps)
			requireParamsClose(t, want[numSteps].params, fromTorch)
			sd10torch, err := opt3.StateDictFor(layout)
			require.NoError(t, err)
			compareTree(t, "state_dict", want[numSteps].state, sd10torch)
		})
	}
}
