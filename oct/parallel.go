package oct

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// forEach calls fn(0) … fn(n-1) from up to workers goroutines (all CPUs when
// workers ≤ 0) and returns the error of the lowest index that failed. Once a
// call has failed no new calls start.
func forEach(n, workers int, fn func(i int) error) error {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = min(workers, n)
	var (
		next   atomic.Int64
		failed atomic.Bool
		mu     sync.Mutex
		errIdx = n
		first  error
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if i < errIdx {
						errIdx, first = i, err
					}
					mu.Unlock()
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return first
}
