// Package benchenv applies the settings that the benchmarks of the models
// and train packages take from the environment, so that scripts/bench_*.sh
// can run the Go and the PyTorch side under the same conditions:
//
//	EDEMA_BENCH_THREADS     libtorch's intra-op threads (default: all CPUs)
//	EDEMA_BENCH_HOST_CACHE  0 to run without the host cache, which the
//	                        edema command enables (torch.EnableHostCache)
package benchenv

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/edema/edema/torch"
)

// Setup applies the settings and returns a function that restores the
// previous ones.
func Setup(b *testing.B) (restore func()) {
	b.Helper()
	threads := runtime.NumCPU()
	if s := os.Getenv("EDEMA_BENCH_THREADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("EDEMA_BENCH_THREADS=%q is not a positive integer", s)
		}
		threads = n
	}
	prev := torch.NumThreads()
	torch.SetNumThreads(threads)
	cache := os.Getenv("EDEMA_BENCH_HOST_CACHE") != "0"
	if cache {
		torch.EnableHostCache(torch.DefaultHostCacheLimit())
	}
	return func() {
		if cache {
			torch.DisableHostCache()
		}
		torch.SetNumThreads(prev)
	}
}
