package optim

import (
	"encoding/json"
	"testing"

	"github.com/edema/edema/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deepCopy copies a state dict tree, tensors included.
func deepCopy(t *testing.T, sd *Dict) *Dict {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(mustJSON(t, toJSON(sd)), &v))
	return fromJSON(t, v).(*Dict)
}

// at walks a state dict tree along keys (dict keys or list indices).
func at(t *testing.T, v any, keys ...any) any {
	t.Helper()
	for _, k := range keys {
		switch x := v.(type) {
		case *Dict:
			var ok bool
			v, ok = x.Get(k)
			require.True(t, ok, "no key %v", k)
		case []any:
			v = x[k.(int)]
		default:
			t.Fatalf("cannot index %s with %v", describe(v), k)
		}
	}
	return v
}

func group0(t *testing.T, sd *Dict) *Dict { return at(t, sd, "param_groups", 0).(*Dict) }

func stateOf(t *testing.T, sd *Dict, id int64) *Dict {
	return at(t, sd, "state", id).(*Dict)
}

// trainedAdam returns an Adam optimizer over parameters of shapes [2] and
// [3] after two steps, and its state dict.
func trainedAdam(t *testing.T, o AdamOptions) (*Adam, []*torch.Tensor, *Dict) {
	t.Helper()
	ps := []*torch.Tensor{leaf(1, 2), leaf(3, 4, 5)}
	opt, err := NewAdam(ps, o)
	require.NoError(t, err)
	for range 2 {
		setGrad(ps[0], 0.5, -1)
		setGrad(ps[1], 1, 2, 3)
		require.NoError(t, opt.Step())
	}
	sd, err := opt.StateDict()
	require.NoError(t, err)
	return opt, ps, deepCopy(t, sd)
}

func freshAdam(t *testing.T) *Adam {
	opt, err := NewAdam([]*torch.Tensor{leaf(0, 0), leaf(0, 0, 0)}, DefaultAdamOptions())
	require.NoError(t, err)
	return opt
}

func TestLoadStateDictRejects(t *testing.T) {
	_, _, good := trainedAdam(t, DefaultAdamOptions())
	_, _, amsgrad := trainedAdam(t, func() AdamOptions { o := DefaultAdamOptions(); o.AMSGrad = true; return o }())
	for _, tc := range []struct {
		name   string
		base   *Dict
		modify func(sd *Dict)
		want   string
	}{
		{"extra top-level key", good, func(sd *Dict) { sd.Set("defaults", NewDict()) }, `unexpected key defaults`},
		{"no param_groups", good, func(sd *Dict) { deleteKey(sd, "param_groups") }, "no param_groups"},
		{"param_groups not a list", good, func(sd *Dict) { sd.Set("param_groups", NewDict()) }, "param_groups: want a list or tuple, got dict"},
		{"more groups", good, func(sd *Dict) {
			sd.Set("param_groups", append(at(t, sd, "param_groups").([]any), group0(t, sd)))
		}, "2 parameter groups saved, the optimizer has 1"},
		{"more parameters", good, func(sd *Dict) {
			group0(t, sd).Set("params", []any{int64(0), int64(1), int64(2)})
		}, "param_groups[0] has 3 parameters, the optimizer's group has 2"},
		{"parameter id not an int", good, func(sd *Dict) {
			group0(t, sd).Set("params", []any{int64(0), "1"})
		}, "param_groups[0]: params[1]: want an int, got str"},
		{"duplicate parameter id", good, func(sd *Dict) {
			group0(t, sd).Set("params", []any{int64(1), int64(1)})
		}, "parameter id 1 appears twice"},
		{"no lr", good, func(sd *Dict) { deleteKey(group0(t, sd), "lr") }, "param_groups[0]: no lr"},
		{"lr not a number", good, func(sd *Dict) { group0(t, sd).Set("lr", "fast") }, "param_groups[0]: lr: want a number, got str"},
		{"three betas", good, func(sd *Dict) { group0(t, sd).Set("betas", Tuple{0.9, 0.99, 0.999}) }, "betas: want 2 numbers, got 3"},
		{"negative eps", good, func(sd *Dict) { group0(t, sd).Set("eps", -1.0) }, "param_groups[0]: invalid epsilon -1"},
		{"amsgrad not a bool", good, func(sd *Dict) { group0(t, sd).Set("amsgrad", int64(1)) }, "amsgrad: want a bool, got int"},
		{"foreach not a bool", good, func(sd *Dict) { group0(t, sd).Set("foreach", "yes") }, "foreach: want a bool, got str"},
		{"AdamW", good, func(sd *Dict) { group0(t, sd).Set("decoupled_weight_decay", true) }, "decoupled_weight_decay=True is not supported"},
		{"state key not an id", good, func(sd *Dict) { at(t, sd, "state").(*Dict).Set("0", NewDict()) }, `state: key "0" is not a parameter id`},
		{"state of no parameter", good, func(sd *Dict) { at(t, sd, "state").(*Dict).Set(7, NewDict()) }, "state: parameter id 7 is in no parameter group"},
		{"state entry not a dict", good, func(sd *Dict) { at(t, sd, "state").(*Dict).Set(1, nil) }, "state[1]: want a dict, got None"},
		{"no exp_avg", good, func(sd *Dict) {
			at(t, sd, "state").(*Dict).Set(1, deleteKey(stateOf(t, sd, 1), "exp_avg"))
		}, "state[1] (parameter 1, shape [3]): no exp_avg"},
		{"exp_avg of the wrong shape", good, func(sd *Dict) {
			stateOf(t, sd, 1).Set("exp_avg", torch.Zeros([]int64{2}, torch.Float32CPU))
		}, "state[1] (parameter 1, shape [3]): exp_avg has shape [2] but the parameter has shape [3]"},
		{"exp_avg not a tensor", good, func(sd *Dict) { stateOf(t, sd, 0).Set("exp_avg", 0.0) }, "exp_avg: want a tensor, got float"},
		{"freed exp_avg", good, func(sd *Dict) { at(t, sd, "state", int64(0), "exp_avg").(*torch.Tensor).Free() }, "exp_avg: want a tensor, got freed tensor"},
		{"SGD state", good, func(sd *Dict) { stateOf(t, sd, 0).Set("momentum_buffer", nil) }, `unexpected key "momentum_buffer"`},
		{"fractional step", good, func(sd *Dict) { stateOf(t, sd, 0).Set("step", 1.5) }, "step: 1.5 is not a step count"},
		{"negative step", good, func(sd *Dict) { stateOf(t, sd, 0).Set("step", int64(-1)) }, "step: -1 is not a step count"},
		{"step not a number", good, func(sd *Dict) { stateOf(t, sd, 0).Set("step", nil) }, "step: want a number, got None"},
		{"amsgrad without max_exp_avg_sq", amsgrad, func(sd *Dict) {
			at(t, sd, "state").(*Dict).Set(0, deleteKey(stateOf(t, sd, 0), "max_exp_avg_sq"))
		}, "amsgrad is on but there is no max_exp_avg_sq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := freshAdam(t)
			setGrad(opt.flat[0], 1, 1)
			require.NoError(t, opt.Step())
			before, err := opt.StateDict()
			require.NoError(t, err)
			before = deepCopy(t, before)

			sd := deepCopy(t, tc.base)
			tc.modify(sd)
			err = opt.LoadStateDict(sd)
			require.ErrorContains(t, err, "optim: load state dict: ")
			require.ErrorContains(t, err, tc.want)

			after, err := opt.StateDict()
			require.NoError(t, err)
			require.JSONEq(t, string(mustJSON(t, toJSON(before))), string(mustJSON(t, toJSON(after))), "a failed load changes nothing")
		})
	}
	require.ErrorContains(t, freshAdam(t).LoadStateDict(nil), "no state dict")

	opt := freshAdam(t)
	opt.flat[1].Free()
	require.ErrorContains(t, opt.LoadStateDict(deepCopy(t, good)), "use of freed tensor")
}

// deleteKey removes key from d, keeping the order of the others, and
// returns d.
func deleteKey(d *Dict, key string) *Dict {
	out := NewDict()
	for _, k := range d.Keys() {
		if k != key {
			v, _ := d.Get(k)
			out.Set(k, v)
		}
	}
	*d = *out
	return d
}

func TestLoadStateDictRejectsAdamStateInSGD(t *testing.T) {
	_, _, sd := trainedAdam(t, DefaultAdamOptions())
	opt, err := NewSGD([]*torch.Tensor{leaf(0, 0), leaf(0, 0, 0)}, SGDOptions{LR: 0.1})
	require.NoError(t, err)
	require.ErrorContains(t, opt.LoadStateDict(sd), "param_groups[0]: no momentum")

	// With SGD's hyperparameters, the state still gives it away.
	g := group0(t, sd)
	for _, k := range []string{"momentum", "dampening"} {
		g.Set(k, 0.0)
	}
	g.Set("nesterov", false)
	require.ErrorContains(t, opt.LoadStateDict(sd), `state[0] (parameter 0, shape [2]): unexpected key "step"`)

	sd = NewDict()
	sd.Set("state", NewDict())
	pg := NewDict()
	for _, k := range []string{"lr", "momentum", "dampening", "weight_decay"} {
		pg.Set(k, 0.0)
	}
	pg.Set("params", []any{int64(0), int64(1)})
	sd.Set("param_groups", []any{pg})
	require.NoError(t, opt.LoadStateDict(sd))
	buf := torch.Zeros([]int64{4}, torch.Float32CPU)
	entry := NewDict()
	entry.Set("momentum_buffer", buf)
	at(t, sd, "state").(*Dict).Set(1, entry)
	require.ErrorContains(t, opt.LoadStateDict(sd), "state[1] (parameter 1, shape [3]): momentum_buffer has shape [4] but the parameter has shape [3]")
}

func TestLoadStateDictAccepts(t *testing.T) {
	t.Run("keys of other releases", func(t *testing.T) {
		// PyTorch before 1.12 saved the step as an int and had no
		// maximize, foreach, capturable, differentiable or fused; PyTorch 2
		// may save fused as None and decoupled_weight_decay as False; an LR
		// scheduler adds initial_lr.
		_, _, sd := trainedAdam(t, DefaultAdamOptions())
		stateOf(t, sd, 0).Set("step", int64(2))
		g := group0(t, sd)
		for _, k := range []string{"maximize", "foreach", "capturable", "differentiable", "fused"} {
			deleteKey(g, k)
		}
		params, _ := g.Get("params")
		deleteKey(g, "params")
		g.Set("initial_lr", 0.01)
		g.Set("decoupled_weight_decay", false)
		g.Set("fused", nil)
		g.Set("params", params)

		opt := freshAdam(t)
		require.NoError(t, opt.LoadStateDict(sd))
		out, err := opt.StateDict()
		require.NoError(t, err)
		assert.Equal(t, 2.0, at(t, out, "state", int64(0), "step").(*torch.Tensor).Item())
		assert.Equal(t, torch.Float32, at(t, out, "state", int64(0), "step").(*torch.Tensor).DType())
		assert.Equal(t, []any{"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused", "initial_lr", "params"},
			group0(t, out).Keys(), "initial_lr is kept; decoupled_weight_decay is known and dropped")
		assert.Equal(t, 0.01, at(t, out, "param_groups", 0, "initial_lr"))
	})

	t.Run("parameter ids remapped by position", func(t *testing.T) {
		_, ps, sd := trainedAdam(t, DefaultAdamOptions())
		g := group0(t, sd)
		g.Set("params", []any{int64(10), int64(20)})
		old := at(t, sd, "state").(*Dict)
		state := NewDict()
		state.Set(20, at(t, old, int64(1)))
		state.Set(10, at(t, old, int64(0)))
		sd.Set("state", state)

		opt := freshAdam(t)
		require.NoError(t, opt.LoadStateDict(sd))
		out, err := opt.StateDict()
		require.NoError(t, err)
		assert.Equal(t, []any{int64(1), int64(0)}, at(t, out, "state").(*Dict).Keys())
		assert.Equal(t, ps[1].Shape(), at(t, out, "state", int64(1), "exp_avg").(*torch.Tensor).Shape())
	})

	t.Run("state takes the parameter's dtype", func(t *testing.T) {
		_, _, sd := trainedAdam(t, DefaultAdamOptions())
		p0 := torch.FromSlice([]float64{0, 0}).SetRequiresGrad(true)
		p1 := torch.FromSlice([]float64{0, 0, 0}).SetRequiresGrad(true)
		opt, err := NewAdam([]*torch.Tensor{p0, p1}, DefaultAdamOptions())
		require.NoError(t, err)
		require.NoError(t, opt.LoadStateDict(sd))
		out, err := opt.StateDict()
		require.NoError(t, err)
		got := at(t, out, "state", int64(1), "exp_avg_sq").(*torch.Tensor)
		want := at(t, sd, "state", int64(1), "exp_avg_sq").(*torch.Tensor)
		assert.Equal(t, torch.Float64, got.DType())
		assert.Equal(t, toFloat64s(want), toFloat64s(got))
		assert.Equal(t, torch.Float32, at(t, out, "state", int64(1), "step").(*torch.Tensor).DType(), "the step stays float32")
	})

	t.Run("copies, not shares", func(t *testing.T) {
		_, _, sd := trainedAdam(t, DefaultAdamOptions())
		opt := freshAdam(t)
		require.NoError(t, opt.LoadStateDict(sd))
		at(t, sd, "state", int64(0), "exp_avg").(*torch.Tensor).Free()
		out, err := opt.StateDict()
		require.NoError(t, err)
		assert.Len(t, at(t, out, "state", int64(0), "exp_avg").(*torch.Tensor).Float32s(), 2)
	})
}

// TestLayouts checks what differs between the layouts of 1.13 and 2.x:
// Adam's and SGD's "fused", and SGD's state without momentum.
func TestLayouts(t *testing.T) {
	w := torch.Ones([]int64{2}, torch.Float32CPU).SetRequiresGrad(true)
	defer w.Free()
	adam, err := NewAdam([]*torch.Tensor{w}, AdamOptions{LR: 0.1})
	require.NoError(t, err)
	sgd, err := NewSGD([]*torch.Tensor{w}, SGDOptions{LR: 0.1})
	require.NoError(t, err)
	w.Mul(w).Sum().Backward()
	require.NoError(t, adam.Step())
	require.NoError(t, sgd.Step())
	for _, tc := range []struct {
		layout      Layout
		adamFused   any
		sgdHasFused bool
		sgdEntries  int
	}{
		{PyTorch113, false, false, 1},
		{PyTorch2, nil, true, 0},
	} {
		a, err := adam.StateDictFor(tc.layout)
		require.NoError(t, err)
		fused, _ := group(t, a).Get("fused")
		assert.Equal(t, tc.adamFused, fused, "%s: Adam fused", tc.layout)
		s, err := sgd.StateDictFor(tc.layout)
		require.NoError(t, err)
		_, hasFused := group(t, s).Get("fused")
		assert.Equal(t, tc.sgdHasFused, hasFused, "%s: SGD fused", tc.layout)
		state, _ := s.Get("state")
		assert.Equal(t, tc.sgdEntries, state.(*Dict).Len(), "%s: SGD state entries without momentum", tc.layout)
		// Either layout loads back.
		require.NoError(t, sgd.LoadStateDict(s))
		require.NoError(t, adam.LoadStateDict(a))
	}
	def, err := adam.StateDict()
	require.NoError(t, err)
	defGroups, _ := def.Get("param_groups")
	defFused, _ := defGroups.([]any)[0].(*Dict).Get("fused")
	assert.Equal(t, false, defFused, "the default is 1.13's")

	for v, want := range map[string]Layout{"1.13.0a0": PyTorch113, "1.13.1": PyTorch113, "2.6.0+debian": PyTorch2, "2.11.0+cu128": PyTorch2} {
		got, err := LayoutOf(v)
		require.NoError(t, err, v)
		assert.Equal(t, want, got, v)
	}
	for _, v := range []string{"1.12.1", "0.4.1", "x"} {
		_, err := LayoutOf(v)
		assert.Error(t, err, v)
	}
}

// group returns the first param group of a state dict.
func group(t *testing.T, sd *Dict) *Dict {
	t.Helper()
	groups, ok := sd.Get("param_groups")
	require.True(t, ok)
	return groups.([]any)[0].(*Dict)
}
