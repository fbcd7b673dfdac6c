package torch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// busy runs grad-requiring operations on n goroutines until stop closes,
// and counts results that wrongly do not require grad.
func busy(n int, x *Tensor, stop <-chan struct{}) (wait func() (ops, wrong int64)) {
	var wg sync.WaitGroup
	var ops, wrong atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				Scoped(func(*Scope) {
					if !x.Mul(x).Sum().RequiresGrad() {
						wrong.Add(1)
					}
				})
				ops.Add(1)
				runtime.Gosched()
			}
		}()
	}
	return func() (int64, int64) { wg.Wait(); return ops.Load(), wrong.Load() }
}

// The grad mode of a no-grad or inference-mode scope holds for everything
// the scope does, although its goroutine yields between operations, and
// never leaks to the goroutines around it.
func TestGradModesHoldAcrossGoroutines(t *testing.T) {
	x := Randn([]int64{16}, Float32CPU).SetRequiresGrad(true)
	for name, mode := range map[string]func(func()){"NoGrad": NoGrad, "InferenceMode": InferenceMode} {
		t.Run(name, func(t *testing.T) {
			stop := make(chan struct{})
			wait := busy(3, x, stop)
			inside := 0
			mode(func() {
				assert.False(t, GradEnabled())
				for range 500 {
					Scoped(func(*Scope) {
						y := x.Mul(x).Exp()
						runtime.Gosched()
						z := y.Add(x).Sum()
						if y.RequiresGrad() || z.RequiresGrad() {
							inside++
						}
					})
					runtime.Gosched()
				}
			})
			close(stop)
			ops, wrong := wait()
			assert.Zero(t, inside, "results inside %s that require grad", name)
			assert.Zero(t, wrong, "results of other goroutines that do not require grad")
			assert.Positive(t, ops)
			assert.True(t, x.MulScalar(2).RequiresGrad(), "the mode is restored on exit")
		})
	}
}

func TestGradModeNestingAndPanics(t *testing.T) {
	x := Ones([]int64{2}, Float32CPU).SetRequiresGrad(true)
	NoGrad(func() {
		assert.False(t, x.MulScalar(2).RequiresGrad())
		WithGradEnabled(true, func() {
			assert.True(t, GradEnabled())
			assert.True(t, x.MulScalar(2).RequiresGrad())
		})
		assert.False(t, GradEnabled())
		assert.False(t, x.MulScalar(2).RequiresGrad())
	})
	err := Try(func() {
		NoGrad(func() { x.Add(Ones([]int64{3}, Float32CPU)) })
	})
	require.Error(t, err)
	assert.True(t, x.MulScalar(2).RequiresGrad(), "a panic inside NoGrad restores the mode")
	err = Try(func() {
		InferenceMode(func() { x.Add(Ones([]int64{3}, Float32CPU)) })
	})
	require.Error(t, err)
	assert.True(t, x.MulScalar(2).RequiresGrad(), "a panic inside InferenceMode restores the mode")

	var made *Tensor
	InferenceMode(func() { made = Ones([]int64{2}, Float32CPU) })
	assert.ErrorContains(t, Try(func() { made.SetRequiresGrad(true) }), "inference tensor",
		"tensors made in inference mode cannot enter autograd later")
}

// SetNumThreads applies on every OS thread, including threads that ran
// parallel operations before the change (libtorch's OpenMP backend would
// otherwise keep their old setting).
func TestNumThreadsOnEveryThread(t *testing.T) {
	orig := NumThreads()
	defer SetNumThreads(orig)
	want := orig + 1

	const workers = 4
	ready, change, done := make(chan struct{}), make(chan struct{}), make(chan int)
	for range workers {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			// A parallel operation fixes this thread's setting.
			Scoped(func(*Scope) { Ones([]int64{1 << 18}, Float32CPU).Exp().Sum() })
			ready <- struct{}{}
			<-change
			done <- NumThreads()
		}()
	}
	for range workers {
		<-ready
	}
	SetNumThreads(want)
	assert.Equal(t, want, NumThreads())
	close(change)
	for range workers {
		assert.Equal(t, want, <-done)
	}
	assert.ErrorContains(t, Try(func() { SetNumThreads(-1) }), "the number of threads must be positive, got -1")
}

// Reading shared tensors from many goroutines is safe: run with -race.
func TestConcurrentReaders(t *testing.T) {
	w := Randn([]int64{8, 3, 3, 3}, Float32CPU).SetRequiresGrad(true)
	x := Randn([]int64{2, 3, 8, 8}, Float32CPU)
	want := Conv2d(x, w, nil, Conv2dOptions{}).Float32s()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				Scoped(func(*Scope) {
					got := Conv2d(x, w, nil, Conv2dOptions{})
					assert.Equal(t, want, got.Float32s())
					assert.Equal(t, []int64{8, 3, 3, 3}, w.Shape())
				})
			}
		}()
	}
	wg.Wait()
}
