package torch

import (
	"os"
	"strconv"
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
	assert.Equal(t, after.Reserved, after.Cached, "no tensor holds the segment")
	assert.GreaterOrEqual(t, after.Cached, int64(64<<20))
	assert.Equal(t, int64(1), after.Blocks)
	assert.Equal(t, int64(1<<30), after.Limit)

	EmptyHostCache()
	assert.Zero(t, HostCacheStatistics().Cached)
	DisableHostCache()
	s := HostCacheStatistics()
	assert.Zero(t, s.Limit)
	assert.Zero(t, s.Reserved, "the free memory went back to the kernel")
	assert.Equal(t, after.Hits, s.Hits)
}

// mib makes a float32 tensor of n MiB.
func mib(n int64) *Tensor { return Zeros([]int64{n, 1 << 18}, Float32CPU) }

// The cache's arena grows and counts its memory in chunks of 2 MiB, its
// huge pages, and each block has a header of 64 bytes before its data.
const (
	chunk  = 2 << 20
	header = 64
)

func TestHostCacheSplitsAndMerges(t *testing.T) {
	EnableHostCache(1 << 30)
	defer DisableHostCache()
	EmptyHostCache()
	// An earlier test may have left an arena; its memory is all free now.
	start := HostCacheStatistics()
	require.Zero(t, start.Reserved)

	a := mib(64)
	s := HostCacheStatistics()
	assert.GreaterOrEqual(t, s.PeakInUse, int64(64<<20)+header, "a's block is in use")
	if start.Blocks == 0 {
		assert.Equal(t, int64(66<<20), s.Reserved, "64 MiB and a header, in whole steps")
	}
	a.Free()
	s = HostCacheStatistics()
	assert.Equal(t, s.Reserved, s.Cached)
	assert.Equal(t, int64(1), s.Blocks, "the block merges back into the free rest of the arena")

	// Smaller tensors split the free block between them.
	b, c := mib(16), mib(32)
	s2 := HostCacheStatistics()
	assert.Equal(t, s.Reserved, s2.Reserved, "both fit in the freed memory")
	assert.Equal(t, s.Hits+2, s2.Hits)
	assert.Equal(t, s.Reserved-(48<<20)-2*header, s2.Cached, "what they hold, headers included")
	assert.GreaterOrEqual(t, s2.PeakInUse, s.PeakInUse, "the peak stays when tensors are freed")
	b.Free()
	assert.Equal(t, int64(2), HostCacheStatistics().Blocks, "b's block and the rest after c, apart")
	c.Free()
	s3 := HostCacheStatistics()
	assert.Equal(t, int64(1), s3.Blocks, "the freed blocks merge again")
	assert.Equal(t, s3.Reserved, s3.Cached)

	// A tensor larger than any free block grows the arena by what its
	// free end lacks.
	d := mib(s3.Reserved>>20 + 14)
	s4 := HostCacheStatistics()
	assert.Equal(t, s3.Misses+1, s4.Misses)
	dBytes := d.Numel() * 4
	assert.GreaterOrEqual(t, s4.Reserved, dBytes)
	assert.Less(t, s4.Reserved, dBytes+chunk+2*header, "the arena holds d and less than a step more, not d beside the old block")
	assert.Equal(t, float64(0), d.Sum().Item())
	d.Free()

	// A lower limit gives free blocks back to the kernel, largest first,
	// in whole chunks; blocks in use keep their memory, and so do the
	// chunks they share with free blocks.
	x1, sep1, x2, sep2 := mib(16), mib(2), mib(32), mib(2)
	x1.Free()
	x2.Free()
	s5 := HostCacheStatistics()
	EnableHostCache(s5.Cached - 30<<20)
	s6 := HostCacheStatistics()
	assert.Equal(t, s5.Reserved-15*chunk, s6.Reserved, "the 15 chunks inside x2's block went back, and no other")
	assert.Equal(t, s5.Blocks, s6.Blocks)
	EnableHostCache(0)
	assert.Equal(t, int64(4*chunk), HostCacheStatistics().Reserved, "only the chunks of the blocks in use stay, two each")
	sum := sep1.Add(sep2)
	assert.Equal(t, float64(0), sum.Sum().Item(), "their memory is still their own")
	sum.Free()
	sep1.Free()
	sep2.Free()
	assert.Zero(t, HostCacheStatistics().Reserved)

	// A released block serves tensors again, without growing the arena.
	EnableHostCache(1 << 30)
	s7 := HostCacheStatistics()
	y := mib(40)
	assert.Equal(t, s7.Misses, HostCacheStatistics().Misses)
	assert.Equal(t, int64(21*chunk), HostCacheStatistics().Reserved, "40 MiB and a header, in chunks")
	assert.Equal(t, float64(0), y.Sum().Item())
	y.Free()

	// Tensors below 1 MiB go to malloc.
	s8 := HostCacheStatistics()
	FromSlice([]float32{1, 2, 3}).Free()
	assert.Equal(t, s8, HostCacheStatistics())
}

// TestHostCacheMovesPages frees two tensors between others in use and
// then makes one larger than either hole: the new tensor's memory is the
// holes' pages, moved rather than faulted in, so the arena's memory does
// not grow by it, and the tensors in use keep their values.
func TestHostCacheMovesPages(t *testing.T) {
	EnableHostCache(1 << 30)
	defer DisableHostCache()
	EmptyHostCache()
	a, sep1, b, sep2 := mib(32), Full([]int64{2, 1 << 18}, 1, Float32CPU), mib(32), Full([]int64{2, 1 << 18}, 2, Float32CPU)
	defer sep1.Free()
	defer sep2.Free()
	a.Free()
	b.Free()
	before := HostCacheStatistics()
	c := Full([]int64{48, 1 << 18}, 3, Float32CPU)
	defer c.Free()
	after := HostCacheStatistics()
	if after.Moved == before.Moved && !kernelAtLeast(t, 5, 13) {
		t.Skip("the kernel cannot move pages between mappings (mremap's MREMAP_DONTUNMAP needs Linux 5.13)")
	}
	assert.GreaterOrEqual(t, after.Moved-before.Moved, int64(22*chunk), "the chunks inside c took the holes' pages")
	assert.LessOrEqual(t, after.Reserved, before.Reserved+2*chunk, "the arena's memory grew by c's two end chunks at most")
	assert.Equal(t, float64(48<<18*3), c.Sum().Item())
	assert.Equal(t, float64(2<<18*1), sep1.Sum().Item(), "the tensors beside the holes keep their values")
	assert.Equal(t, float64(2<<18*2), sep2.Sum().Item())

	// Its memory freed and taken again, c needs no moves.
	c.Free()
	again := Full([]int64{48, 1 << 18}, 4, Float32CPU)
	defer again.Free()
	s := HostCacheStatistics()
	assert.Equal(t, after.Moved, s.Moved)
	assert.Equal(t, after.Reserved, s.Reserved)
	assert.Equal(t, float64(48<<18*4), again.Sum().Item())
}

// kernelAtLeast says whether the running Linux kernel's version is at
// least major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	var u syscall.Utsname
	require.NoError(t, syscall.Uname(&u))
	var release []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		release = append(release, byte(c))
	}
	var got [2]int
	for i, f := range strings.SplitN(string(release), ".", 3)[:2] {
		got[i], _ = strconv.Atoi(strings.TrimRightFunc(f, func(r rune) bool { return r < '0' || r > '9' }))
	}
	return got[0] > major || got[0] == major && got[1] >= minor
}

// TestHostCacheKeepsWhatFitsTheLimit frees a tensor beside a block whose
// memory went back to the kernel: the two merge, and the freed tensor's
// memory, within the limit, stays.
func TestHostCacheKeepsWhatFitsTheLimit(t *testing.T) {
	EnableHostCache(1 << 30)
	defer DisableHostCache()
	EmptyHostCache()
	a, b := mib(16), mib(16)
	b.Free()
	EnableHostCache(0) // b's block (and any other free one) goes back
	EnableHostCache(1 << 30)
	before := HostCacheStatistics()
	a.Free()
	after := HostCacheStatistics()
	assert.Equal(t, before.Reserved, after.Reserved, "a's memory stays resident")
	assert.Equal(t, after.Reserved, after.Cached)
	assert.GreaterOrEqual(t, after.Cached, int64(16<<20))
}

// TestHostCacheRepeatedPasses makes and frees the tensors of a "pass" of
// mixed sizes, alive together, three times over, the later passes in
// another order and smaller: after the first, they need no new memory.
func TestHostCacheRepeatedPasses(t *testing.T) {
	EnableHostCache(1 << 30)
	defer DisableHostCache()
	EmptyHostCache()
	pass := func(sizes ...int64) HostCacheStats {
		var live []*Tensor
		for _, n := range sizes {
			live = append(live, mib(n))
		}
		for _, x := range live {
			x.Free()
		}
		return HostCacheStatistics()
	}
	first := pass(24, 40, 8, 56, 3, 3)
	for _, sizes := range [][]int64{{56, 40, 24, 8, 3, 3}, {50, 3, 30, 20, 6, 2}} {
		again := pass(sizes...)
		assert.Equal(t, first.Misses, again.Misses, "no growth: %v", sizes)
		assert.LessOrEqual(t, again.Reserved, first.Reserved, "%v", sizes)
		assert.Equal(t, again.Reserved, again.Cached, "%v", sizes)
	}
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
