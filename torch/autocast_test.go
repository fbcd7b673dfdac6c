package torch

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAutocastBFloat16OnTheCPU(t *testing.T) {
	x := Randn([]int64{2, 3, 8, 8}, Float32CPU)
	w := Randn([]int64{4, 3, 3, 3}, Float32CPU)
	conv := func() *Tensor { return Conv2d(x, w, nil, Conv2dOptions{Padding: [2]int64{1, 1}}) }
	plain := conv()

	require.NoError(t, Autocast(CPU, BFloat16, func() {
		on, dtype := AutocastEnabled(CPU)
		assert.True(t, on)
		assert.Equal(t, BFloat16, dtype)
		y := conv()
		assert.Equal(t, BFloat16, y.DType(), "a convolution runs in the lower precision")
		assert.Equal(t, Float32, y.Add(plain).DType(), "a sum with a float32 tensor is float32")
		// As close as bfloat16's 8 bits of mantissa allow.
		diff := y.To(Float32).Sub(plain).Abs().Max().Item()
		assert.Less(t, diff, 0.02*plain.Abs().Max().Item())
		assert.Positive(t, diff, "the products were rounded")
	}))
	on, _ := AutocastEnabled(CPU)
	assert.False(t, on)
	assert.Equal(t, Float32, conv().DType())
}

// TestAutocastHoldsAcrossGoroutineMoves makes many calls inside one
// Autocast, yielding the goroutine between them, from several goroutines
// at once; each call must see autocast on, and no goroutine outside it.
func TestAutocastHoldsAcrossGoroutineMoves(t *testing.T) {
	x := Randn([]int64{1, 2, 4, 4}, Float32CPU)
	w := Randn([]int64{2, 2, 1, 1}, Float32CPU)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if g%2 == 1 { // without autocast, beside the others
					y := Conv2d(x, w, nil, Conv2dOptions{})
					if y.DType() != Float32 {
						t.Errorf("goroutine %d outside autocast: %v", g, y.DType())
					}
					y.Free()
					runtime.Gosched()
					continue
				}
				assert.NoError(t, Autocast(CPU, BFloat16, func() {
					for range 5 {
						runtime.Gosched()
						y := Conv2d(x, w, nil, Conv2dOptions{})
						if y.DType() != BFloat16 {
							t.Errorf("goroutine %d inside autocast: %v", g, y.DType())
						}
						y.Free()
					}
				}))
			}
		}()
	}
	wg.Wait()
}

func TestAutocastNestsAndRestores(t *testing.T) {
	// One thread throughout, so that the checks after each region read
	// the state that region left.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	require.NoError(t, Autocast(CPU, BFloat16, func() {
		require.NoError(t, Autocast(CPU, BFloat16, func() {}))
		on, dtype := AutocastEnabled(CPU)
		assert.True(t, on, "the inner region ends, the outer one goes on")
		assert.Equal(t, BFloat16, dtype)
	}))
	on, _ := AutocastEnabled(CPU)
	assert.False(t, on)
	assert.Panics(t, func() {
		_ = Autocast(CPU, BFloat16, func() { panic("inside") })
	})
	on, _ = AutocastEnabled(CPU)
	assert.False(t, on, "a panic inside ends the region too")
}

func TestAutocastRefusals(t *testing.T) {
	for _, tc := range []struct {
		dev   Device
		dtype DType
		want  string
	}{
		{CPU, Float16, "float16 runs on CUDA only; use bfloat16"},
		{CPU, Float32, "want bfloat16 or float16"},
		{CUDA(0), Int64, "want bfloat16 or float16"},
	} {
		ran := false
		err := Autocast(tc.dev, tc.dtype, func() { ran = true })
		require.Error(t, err, "%v %v", tc.dev, tc.dtype)
		assert.Contains(t, err.Error(), tc.want)
		assert.False(t, ran)
	}
}
