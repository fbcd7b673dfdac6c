package torch

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/petermattis/goid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/memtest"
)

func TestScopeFreesWhatItMade(t *testing.T) {
	before := Ones([]int64{2}, Float32CPU)
	s := NewScope()
	a := Ones([]int64{2}, Float32CPU)
	b := a.AddScalar(1)
	kept := b.MulScalar(2)
	freedEarly := b.Exp()
	freedEarly.Free()
	s.Keep(kept, nil, before) // nil and tensors of no scope are ignored
	s.Close()
	s.Close() // harmless
	assert.True(t, a.IsFreed())
	assert.True(t, b.IsFreed())
	assert.True(t, freedEarly.IsFreed())
	assert.False(t, kept.IsFreed())
	assert.False(t, before.IsFreed())
	assert.Equal(t, []float32{4, 4}, kept.Float32s())
	assert.Nil(t, currentScope())
}

func TestScopesNest(t *testing.T) {
	outer := NewScope()
	x := Ones([]int64{1}, Float32CPU)
	var y, z *Tensor
	Scoped(func(inner *Scope) {
		y = x.AddScalar(1)
		z = x.AddScalar(2)
		inner.Keep(y) // y now belongs to outer
	})
	assert.False(t, y.IsFreed())
	assert.True(t, z.IsFreed())
	assert.Equal(t, []float32{2}, y.Float32s())
	w := y.AddScalar(1) // outer is current again
	outer.Close()
	assert.True(t, x.IsFreed())
	assert.True(t, y.IsFreed(), "kept into the enclosing scope, freed with it")
	assert.True(t, w.IsFreed())
}

func TestScopeMisuse(t *testing.T) {
	outer := NewScope()
	inner := NewScope()
	x := Ones([]int64{1}, Float32CPU)
	assert.ErrorContains(t, Try(outer.Close), "closed before the scopes opened inside it")
	assert.False(t, x.IsFreed(), "a refused Close frees nothing")

	done := make(chan error)
	go func() { done <- Try(inner.Close) }()
	assert.ErrorContains(t, <-done, "closed on a goroutine other than the one that opened it")

	inner.Close()
	outer.Close()
	assert.True(t, x.IsFreed())
}

// A scope owns only the tensors of its own goroutine, and goroutines that
// open and close scopes concurrently each find their own.
func TestScopesPerGoroutine(t *testing.T) {
	s := NewScope()
	defer s.Close()
	var wg sync.WaitGroup
	outside := make([]*Tensor, 4)
	for g := range outside {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outside[g] = Ones([]int64{1}, Float32CPU) // no scope on this goroutine
			for i := range 200 {
				func() {
					gs := NewScope()
					defer gs.Close()
					v := Full([]int64{1}, float64(i), Float32CPU)
					runtime.Gosched()
					if got := currentScope(); got != gs {
						t.Errorf("goroutine %d sees scope %p, want its own %p", g, got, gs)
					}
					gs.Keep(v)
					if v.scope != nil || !v.managed {
						t.Errorf("kept at the outermost level, the tensor should be left to the cleanup")
					}
				}()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, s, currentScope())
	s.Close()
	for _, x := range outside {
		assert.False(t, x.IsFreed(), "another goroutine's tensor")
	}
}

// TestTrainingLoopKeepsMemoryFlat runs 10,000 steps of a small training
// loop, one scope per step, and checks that the resident memory grows by
// less than 5% after warm-up. A step makes about 30 tensors of up to 16 KB:
// leaking one of them per step would add about 70% to the RSS.
func TestTrainingLoopKeepsMemoryFlat(t *testing.T) {
	const steps, warmup = 10000, 1000
	ManualSeed(0)
	w := Empty([]int64{8, 4, 3, 3}, Float32CPU).KaimingUniformInPlace(math5, FanIn, "leaky_relu").SetRequiresGrad(true)
	bias := Zeros([]int64{8}, Float32CPU).SetRequiresGrad(true)
	gamma := Ones([]int64{8}, Float32CPU).SetRequiresGrad(true)
	beta := Zeros([]int64{8}, Float32CPU).SetRequiresGrad(true)
	runMean, runVar := Zeros([]int64{8}, Float32CPU), Ones([]int64{8}, Float32CPU)
	params := []*Tensor{w, bias, gamma, beta}
	x := Randn([]int64{2, 4, 16, 16}, Float32CPU)
	target := Rand([]int64{2, 16, 16}, Float32CPU).MulScalar(8).To(Int64)

	var base int64
	var first, last float64
	for step := range steps {
		Scoped(func(*Scope) {
			y := Conv2d(x, w, bias, Conv2dOptions{Padding: [2]int64{1, 1}})
			y = BatchNorm(y, gamma, beta, runMean, runVar, true, 0.1, 1e-5).Relu()
			loss := CrossEntropy(y, target, DefaultLossOptions())
			loss.Backward()
			NoGrad(func() {
				for _, p := range params {
					p.SubInPlace(p.Grad(), 0.01)
					p.ZeroGrad()
				}
			})
			switch step {
			case 0:
				first = loss.Item()
			case steps - 1:
				last = loss.Item()
			}
		})
		if step == warmup {
			runtime.GC()
			base = memtest.RSS(t)
		}
	}
	runtime.GC()
	grown := float64(memtest.RSS(t)-base) / float64(base)
	t.Logf("RSS after warm-up %.1f MB, growth %.2f%%; loss %.4f -> %.4f", float64(base)/1e6, 100*grown, first, last)
	assert.Less(t, grown, 0.05)
	assert.Less(t, last, first, "the loop trains")
}

const math5 = 2.23606797749979 // √5: PyTorch's default a for Conv2d's kaiming_uniform_

// TestCleanupFreesUnscopedTensors leaves 400 MB of unscoped tensors to the
// runtime cleanup, 4 MB at a time, and checks that less than half of that
// ever stays resident.
func TestCleanupFreesUnscopedTensors(t *testing.T) {
	runtime.GC()
	base := memtest.RSS(t)
	peak := base
	for i := range 100 {
		x := Zeros([]int64{1 << 20}, Float32CPU) // 4 MB, touched
		x.AddScalarInPlace(1)
		if i%10 == 9 {
			runtime.GC()
			// Cleanups run on their own goroutine; let them.
			for range 10 {
				runtime.Gosched()
			}
			peak = max(peak, memtest.RSS(t))
		}
	}
	t.Logf("RSS %.1f MB before, peak %.1f MB", float64(base)/1e6, float64(peak)/1e6)
	assert.Less(t, peak-base, int64(200<<20), "unreachable tensors are not being freed")
}

// goid must give the id the runtime prints for the goroutine, different
// goroutines different ids: scopes are found by it.
func TestGoroutineIDs(t *testing.T) {
	fromStack := func() int64 {
		buf := make([]byte, 64)
		buf = buf[:runtime.Stack(buf, false)]
		f := strings.Fields(string(buf)) // "goroutine 7 [running]:"
		require.GreaterOrEqual(t, len(f), 2)
		id, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(t, err)
		return id
	}
	ids := make(chan [2]int64, 8)
	for range 8 {
		go func() { ids <- [2]int64{goid.Get(), fromStack()} }()
	}
	seen := map[int64]bool{}
	for range 8 {
		id := <-ids
		require.Equal(t, id[1], id[0], "goid.Get disagrees with runtime.Stack: scopes would be mixed up")
		require.False(t, seen[id[0]])
		seen[id[0]] = true
	}
	assert.Equal(t, fromStack(), goid.Get())
}
