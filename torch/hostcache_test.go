package torch

import (
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func minorFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return ru.Minflt
}

// remakeFaults makes and frees a tensor of shape, then makes one of the
// same shape again and returns the minor page faults that took.
func remakeFaults(t *testing.T, shape []int64) int64 {
	Ones(shape, Float32CPU).Free()
	before := minorFaults(t)
	x := Ones(shape, Float32CPU)
	after := minorFaults(t)
	assert.Equal(t, float64(x.Numel()), x.Sum().Item(), "a tensor on a reused block holds its own values")
	x.Free()
	return after - before
}

func TestHostCacheReusesBlocks(t *testing.T) {
	shape := []int64{16, 1024, 1024} // 64 MiB of float32
	const pages = 64 << 20 >> 12
	// Where transparent huge pages are always on, the kernel faults a fresh
	// mapping in 2 MiB at a time.
	faultUnit := int64(4 << 10)
	if thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err == nil && strings.Contains(string(thp), "[always]") {
		faultUnit = 2 << 20
	}
	DisableHostCache()
	assert.Greater(t, remakeFaults(t, shape), (64<<20)/faultUnit/2, "libtorch's own allocator maps a 64 MiB block afresh")

	EnableHostCache(1 << 30)
	defer DisableHostCache()
	before := HostCacheStatistics()
	assert.Less(t, remakeFaults(t, shape), int64(pages/16), "the cache hands the freed block out again")
	after := HostCacheStatistics()
	assert.Equal(t, int64(1), after.Hits-before.Hits)
	assert.Equal(t, int64(64<<20), after.Cached)
	assert.Equal(t, int64(1), after.Blocks)
	assert.Equal(t, int64(1<<30), after.Limit)

	EmptyHostCache()
	assert.Zero(t, HostCacheStatistics().Cached)
	DisableHostCache()
	assert.Equal(t, HostCacheStats{Hits: after.Hits, Misses: after.Misses}, HostCacheStatistics())
}

func TestHostCacheLimitAndSizes(t *testing.T) {
	EnableHostCache(10 << 20)
	defer DisableHostCache()
	EmptyHostCache()
	mib := func(n int64) *Tensor { return Zeros([]int64{n, 1 << 18}, Float32CPU) }

	a, b, c := mib(8), mib(8), mib(8)
	a.Free()
	b.Free()
	c.Free()
	s := HostCacheStatistics()
	assert.Equal(t, int64(8<<20), s.Cached, "a second 8 MiB block would pass the 10 MiB limit")
	assert.Equal(t, int64(1), s.Blocks)

	misses := s.Misses
	small := mib(2) // 2 MiB must not take the 8 MiB block
	assert.Equal(t, misses+1, HostCacheStatistics().Misses)
	small.Free()
	tiny := FromSlice([]float32{1, 2, 3}) // below 1 MiB: not cached at all
	tiny.Free()
	s = HostCacheStatistics()
	assert.Equal(t, int64(10<<20), s.Cached)
	assert.Equal(t, int64(2), s.Blocks)

	EnableHostCache(4 << 20) // a lower limit frees the largest blocks first
	s = HostCacheStatistics()
	assert.Equal(t, int64(2<<20), s.Cached)
	assert.Equal(t, int64(1), s.Blocks)
}

func TestHostCacheNegativeLimit(t *testing.T) {
	err := Try(func() { EnableHostCache(-1) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must not be negative")
}

// TestHostCacheConcurrent makes and frees tensors of a few sizes on several
// goroutines at once, some freed on another goroutine than the one that
// made them; run with -race, and the values must survive.
func TestHostCacheConcurrent(t *testing.T) {
	EnableHostCache(64 << 20)
	defer DisableHostCache()
	handoff := make(chan *Tensor, 16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				n := int64(1+(g+i)%3) << 18 // 1, 2 or 3 MiB
				x := Full([]int64{n}, float64(g), Float32CPU)
				if got := x.Sum().Item(); got != float64(n*int64(g)) {
					t.Errorf("goroutine %d: sum %v, want %v", g, got, n*int64(g))
				}
				handoff <- x
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		for x := range handoff {
			x.Free()
		}
		close(done)
	}()
	wg.Wait()
	close(handoff)
	<-done
	s := HostCacheStatistics()
	assert.LessOrEqual(t, s.Cached, int64(64<<20))
	assert.Positive(t, s.Hits)
}
