package torch

/*
#include "edema_torch.h"
*/
import "C"

import "syscall"

// The host cache keeps the memory of freed CPU tensors for later ones.
//
// libtorch's CPU allocator hands every tensor's memory to malloc and back.
// glibc maps each block of 32 MiB or more (and, depending on the heap's
// history, many smaller ones) freshly from the kernel and unmaps it when it
// is freed, so each forward or backward pass of a network page-faults its
// activations in again, and the kernel zeroes every page. On the virtual
// machines of docs/BENCHMARKS.md that was a third to a half of a UNet++
// pass's CPU time. Tuning glibc does not cure it: with large aligned blocks
// its heap can grow without bound instead.
//
// With the cache enabled, tensors of 1 MiB or more take blocks of one
// arena of memory that the cache grows as the tensors need it and keeps,
// as PyTorch's CUDA caching allocator does on the GPU with expandable
// segments: a tensor takes the smallest free block that holds it and splits
// off the rest, a freed block merges with its free neighbours, and when no
// free block holds a tensor the arena grows at its end by what its last
// free block lacks. Growing adds address space, not memory: the new
// tensor's memory is the pages of free blocks, moved in 2 MiB at a time
// (mremap, Linux 5.13 or later) rather than faulted in, so the holes that
// fitting leaves between tensors hold no memory once a larger tensor needs
// it. So the next pass runs in the memory the last one left, whatever its
// tensors' sizes, without a page fault, and the memory held stays close to
// the most that the tensors ever used at once. The arena is backed by
// transparent huge pages where the kernel allows it. Smaller
// tensors, and any the arena's address space cannot hold, go to malloc and
// back as before. The limit is on free resident memory: beyond it the
// cache gives the pages of free blocks back to the kernel, largest block
// first, and they fault in again when a tensor takes them. The edema
// command enables the cache with DefaultHostCacheLimit. The cache is safe
// to use from any goroutine; tensors may be freed on any of them.

// EnableHostCache makes the host cache libtorch's CPU allocator, keeping
// at most limit bytes of free memory, or changes the limit of an enabled
// cache (giving free memory beyond the new limit back to the kernel). Tensors made before keep
// the allocator that made them.
func EnableHostCache(limit int64) {
	check("host_cache_enable", C.et_host_cache_enable(C.int64_t(limit)))
}

// DisableHostCache gives libtorch its own CPU allocator back and gives the
// free memory of the cache back to the kernel. Tensors the cache made keep
// their blocks, and theirs goes back when they are freed.
func DisableHostCache() {
	check("host_cache_disable", C.et_host_cache_disable())
}

// EmptyHostCache gives the cache's free memory back to the kernel and keeps the cache enabled, as
// torch.cuda.empty_cache() does for the GPU's.
func EmptyHostCache() {
	check("host_cache_empty", C.et_host_cache_empty())
}

// HostCacheStats describes the host cache.
type HostCacheStats struct {
	Cached   int64 // resident bytes of the arena that no tensor uses
	Reserved int64 // resident bytes of the arena, in use or not
	Limit    int64 // the most free bytes the cache keeps (0: disabled)
	Blocks   int64 // free blocks
	Hits     int64 // tensors of 1 MiB or more served from free blocks
	Misses   int64 // tensors of 1 MiB or more that grew the arena
	// The most bytes of the arena that tensors have held at once: Reserved
	// beyond it is free memory that the limit lets the arena keep.
	PeakInUse int64
	// Bytes of pages moved from free blocks into new tensors, instead of
	// faulted in (0 where the kernel cannot move them).
	Moved int64
}

// HostCacheStatistics returns the host cache's figures so far.
func HostCacheStatistics() HostCacheStats {
	var out [8]C.int64_t
	check("host_cache_stats", C.et_host_cache_stats(&out[0]))
	return HostCacheStats{Cached: int64(out[0]), Limit: int64(out[1]),
		Hits: int64(out[2]), Misses: int64(out[3]), Blocks: int64(out[4]),
		Reserved: int64(out[5]), PeakInUse: int64(out[6]), Moved: int64(out[7])}
}

// DefaultHostCacheLimit is the limit the edema command gives the host
// cache: three quarters of the machine's memory. A training step at the
// challenge's size (batch 8 of 1024×512) frees nearly all it held at its
// end, and the cache gave what passed the limit back to the kernel, so the
// next step faulted it in again: with a quarter, 3 s of a UNet step's 20 s
// on a 23 GiB machine; with half, UNet++'s 14 GiB step still passed it
// (docs/BENCHMARKS.md, "Training"). Free memory is at most what the
// process's tensors once held together, as with PyTorch's CUDA caching
// allocator, which keeps all of it.
func DefaultHostCacheLimit() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return 1 << 30
	}
	return int64(si.Totalram) * int64(si.Unit) / 4 * 3
}
