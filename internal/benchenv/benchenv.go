// Package benchenv applies the settings that the benchmarks of the models
// and train packages take from the environment, so that scripts/bench_*.sh
// can run the Go and the PyTorch side under the same conditions:
//
//	EDEMA_BENCH_THREADS     libtorch's intra-op threads (default: all CPUs)
//	EDEMA_BENCH_HOST_CACHE  0 to run without the host cache, which the
//	                        edema command enables (torch.EnableHostCache)
//	EDEMA_BENCH_INPUT       the input of the forward benchmarks, NxCxHxW
//	                        (default 8x3x256x128)
//
// and measures what they report beside the time: the page faults, the
// peak resident memory of the process and the host cache's memory.
package benchenv

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// Input returns the shape of EDEMA_BENCH_INPUT, or def when it is unset.
func Input(b *testing.B, def []int64) []int64 {
	b.Helper()
	s := os.Getenv("EDEMA_BENCH_INPUT")
	if s == "" {
		return def
	}
	fields := strings.Split(s, "x")
	shape := make([]int64, len(fields))
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 1 {
			b.Fatalf("EDEMA_BENCH_INPUT=%q: want positive sizes such as 8x3x256x128", s)
		}
		shape[i] = n
	}
	if len(shape) != 4 {
		b.Fatalf("EDEMA_BENCH_INPUT=%q: want four sizes, NxCxHxW", s)
	}
	return shape
}

// Usage is the process's resource usage so far.
func Usage(b *testing.B) syscall.Rusage {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru
}

// CPUTime is the user and system CPU time of the process so far, all
// threads: a machine shared with other work disturbs it less than the
// wall time.
func CPUTime(b *testing.B) time.Duration {
	b.Helper()
	ru := Usage(b)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Snapshot is what ReportMemory measures from: the process's resource
// usage and the host cache's moved pages when the timing started.
type Snapshot struct {
	usage syscall.Rusage
	moved int64
}

// Take takes a Snapshot.
func Take(b *testing.B) Snapshot {
	b.Helper()
	return Snapshot{usage: Usage(b), moved: torch.HostCacheStatistics().Moved}
}

// ReportMemory reports the minor page faults per iteration since before
// and the process's peak resident memory, as faults/op and peak-MiB; with
// the host cache on, also its arena's resident memory at the end, the most
// of it that tensors held at once and the pages it moved into new tensors
// per iteration instead of faulting them in, as arena-MiB, arena-used-MiB
// and moved-MiB/op: the first two differ by the free memory the arena
// keeps.
func ReportMemory(b *testing.B, before Snapshot) {
	b.Helper()
	after := Usage(b)
	b.ReportMetric(float64(after.Minflt-before.usage.Minflt)/float64(b.N), "faults/op")
	b.ReportMetric(float64(after.Maxrss)/1024, "peak-MiB")
	if s := torch.HostCacheStatistics(); s.Limit > 0 {
		b.ReportMetric(float64(s.Reserved)/(1<<20), "arena-MiB")
		b.ReportMetric(float64(s.PeakInUse)/(1<<20), "arena-used-MiB")
		b.ReportMetric(float64(s.Moved-before.moved)/(1<<20)/float64(b.N), "moved-MiB/op")
	}
}
